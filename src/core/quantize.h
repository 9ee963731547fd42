// Host-side quantisation in the QTensor formats (qtensor.h): used to quantise weights at
// load time and by `vidi quantize`, and as the reference the device kernels are tested
// against. Rows are independent, so the work is spread over OpenMP threads.
#pragma once

#include "core/qtensor.h"

namespace vidi {

// A float host tensor [..., K] -> host QTensor in `format` (K must satisfy format.fits).
QTensor quantize(const Tensor& x, const QuantFormat& format);
// Row r (of the values viewed as [rows, ...]) back to f32: K floats into out.
void dequantize_row(const QTensor& q, int64_t r, float* out);
// The whole tensor back to f32 (host).
Tensor dequantize(const QTensor& q);

}  // namespace vidi
