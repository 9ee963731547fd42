// The CPU implementation of Backend: f32 activations in host memory, OpenBLAS for the
// GEMMs, OpenMP for everything element-wise. Weights stay in their checkpoint dtype
// (usually memory-mapped bf16) and are converted tile by tile inside linear().
#pragma once

#include "backend/backend.h"

namespace vidi::cpu {

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads);

    std::string name() const override { return "cpu"; }
    Device device() const override { return Device::cpu; }
    DType act_dtype() const override { return DType::f32; }
    int threads() const { return threads_; }

    Tensor empty(const Shape& shape, DType dtype) override;
    Tensor weight(const Tensor& host) override;
    QTensor linear_weight(const QTensor& host) override;
    QTensor quantize(const Tensor& x, const QuantFormat& format) override;
    Tensor upload(const Tensor& host) override;
    Tensor to_host(const Tensor& t) override;
    void copy_(Tensor& dst, const Tensor& src) override;

    Tensor linear(const Tensor& x, const QTensor& w, const Tensor& bias) override;

    void add_(Tensor& x, const Tensor& y) override;
    void add_broadcast_(Tensor& x, const Tensor& y) override;
    void scale_(Tensor& x, float s) override;
    void gelu_(Tensor& x, Gelu kind) override;
    void softcap_(Tensor& x, float cap) override;
    Tensor glu(const Tensor& gate, const Tensor& up, Glu kind) override;
    Tensor rms_norm(const Tensor& x, const Tensor& w, float eps, NormWeight mode) override;
    Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) override;

    void rope_(Tensor& x, int64_t pos0, double theta) override;
    Tensor attention(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p) override;
    Tensor repeat_kv(const Tensor& v, int heads) override;

    using Backend::embed;
    Tensor embed(const QTensor& table, const Tensor& ids) override;
    Tensor transpose2d(const Tensor& x) override;
    Tensor im2col_1d(const Tensor& x, int k, int stride, int pad) override;
    Tensor im2col_2d(const Tensor& x, int k, int stride) override;
    Tensor patchify(const Tensor& pixels, int p) override;
    Tensor space_to_depth(const Tensor& x, int p) override;
    Tensor pad_grid(const Tensor& x, int bottom, int right) override;
    Tensor resize_bilinear(const Tensor& x, int oh, int ow, bool align_corners = false) override;
    Tensor frames_to_pixels(const Tensor& rgb, int size) override;
    Tensor log_mel(const Tensor& pcm, int n_mels) override;
    Tensor sinusoid(const std::vector<double>& positions, int64_t dim) override;

private:
    int threads_;
};

// Shared checks and helpers of the CPU kernels (cpu_backend.cpp).
void require_f32_host(const Tensor& t, const char* op, const char* what);
void require_float_host(const Tensor& t, const char* op, const char* what);
// Rows [r0, r0+n) of a float or quantised weight [N, K] as f32 into out (n·K floats).
void weight_rows_f32(const QTensor& w, int64_t r0, int64_t n, float* out);
// A float tensor as contiguous f32: the same storage when already f32, else a converted copy.
Tensor as_f32(const Tensor& t);

}  // namespace vidi::cpu
