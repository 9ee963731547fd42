// Host-side quantisation in the QTensor formats (qtensor.h): used to quantise weights at
// load time and by `vidi quantize`, and as the reference the device kernels are tested
// against. Rows are independent, so the work is spread over OpenMP threads.
#pragma once

#include "core/qtensor.h"

namespace vidi {

// A float host tensor [..., K] -> host QTensor in `format` (K must satisfy format.fits). A
// group holding NaN or infinity gets a NaN scale (and zero point).
QTensor quantize(const Tensor& x, const QuantFormat& format);
// Rows of a host QTensor (viewed as [rows, K]) back to f32, with its strides and scale
// positions worked out once (the CPU's linear and attention read many rows).
class DequantRows {
public:
    explicit DequantRows(const QTensor& q);
    int64_t K() const { return K_; }
    void row(int64_t r, float* out) const;  // K floats

private:
    const uint8_t* codes_;
    const void* scales_;
    const void* zeros_;
    bool f16_scales_;
    int bits_;
    int64_t K_, group_, block_, inner_;
};
// Row r back to f32: K floats into out (DequantRows(q).row(r, out)).
void dequantize_row(const QTensor& q, int64_t r, float* out);
// The whole tensor back to f32 (host).
Tensor dequantize(const QTensor& q);
// A scale (or zero point) as stored in `scale_dtype`: f32 as it is; f16 rounded to nearest
// and saturated at ±65504 (so a huge value clamps instead of becoming infinite).
float round_scale(float s, DType scale_dtype);

}  // namespace vidi
