#include "backend/cpu/cpu_backend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "core/quantize.h"

namespace vidi::cpu {

void require_f32_host(const Tensor& t, const char* op, const char* what) {
    VIDI_CHECK(t.defined(), op, ": ", what, " is undefined");
    VIDI_CHECK(t.on_host(), op, ": ", what, " ", t.describe(), " is not in host memory");
    VIDI_CHECK(t.dtype() == DType::f32, op, ": ", what, " must be f32, got ", t.describe());
}

void require_float_host(const Tensor& t, const char* op, const char* what) {
    VIDI_CHECK(t.defined(), op, ": ", what, " is undefined");
    VIDI_CHECK(t.on_host(), op, ": ", what, " ", t.describe(), " is not in host memory");
    VIDI_CHECK(dtype_is_float(t.dtype()), op, ": ", what, " must be a float tensor, got ", t.describe());
}

Tensor as_f32(const Tensor& t) { return t.dtype() == DType::f32 ? t : t.to_f32(); }

CpuBackend::CpuBackend(int threads) : threads_(threads > 0 ? threads : omp_get_num_procs()) {
    // Past the cores, threads only take turns; tens of thousands made OpenMP fail or crash.
    const int most = std::max(256, 4 * omp_get_num_procs());
    VIDI_CHECK(threads_ <= most, "threads: ", threads, " is more than this machine's ", omp_get_num_procs(),
               " cores can use: at most ", most, ", or 0 for one per core");
    // All threading is OpenMP; OpenBLAS runs single-threaded inside our parallel tasks
    // (its own spinning pool taking turns with OpenMP's was several times slower).
    openblas_set_num_threads(1);
}

Tensor CpuBackend::empty(const Shape& shape, DType dtype) { return Tensor::empty(shape, dtype); }

Tensor CpuBackend::weight(const Tensor& host) {
    VIDI_CHECK(host.defined() && host.on_host(), "cpu weight(): expected a host tensor, got ",
               host.describe());
    return host;  // stays memory-mapped; linear()/embed() convert tiles as they go
}

QTensor CpuBackend::linear_weight(const QTensor& host) {
    if (!host.quantized()) return weight(host.values);
    VIDI_CHECK(host.values.on_host() && host.scales.on_host(), "cpu linear_weight(): expected host tensors, got ",
               host.describe());
    return host;
}

QTensor CpuBackend::quantize(const Tensor& x, const QuantFormat& format) { return vidi::quantize(x, format); }

void weight_rows_f32(const QTensor& w, int64_t r0, int64_t n, float* out) {
    const int64_t K = w.dim(-1);
    if (w.quantized()) {
        const DequantRows reader(w);
        for (int64_t r = 0; r < n; ++r) reader.row(r0 + r, out + r * K);
        return;
    }
    const size_t esize = dtype_size(w.values.dtype());
    convert_to_f32(static_cast<const char*>(w.values.raw()) + static_cast<size_t>(r0 * K) * esize, w.values.dtype(),
                   out, static_cast<size_t>(n * K));
}

Tensor CpuBackend::upload(const Tensor& host) {
    VIDI_CHECK(host.defined() && host.on_host(), "cpu upload(): expected a host tensor");
    return dtype_is_float(host.dtype()) ? host.to_f32().clone() : host.clone();
}

Tensor CpuBackend::to_host(const Tensor& t) {
    VIDI_CHECK(t.defined() && t.on_host(), "cpu to_host(): expected a host tensor");
    return dtype_is_float(t.dtype()) ? t.to_f32().clone() : t.clone();
}

void CpuBackend::copy_(Tensor& dst, const Tensor& src) {
    VIDI_CHECK(dst.defined() && src.defined() && dst.on_host() && src.on_host(), "cpu copy_: host tensors expected");
    VIDI_CHECK(dst.numel() == src.numel(), "copy_: ", src.describe(), " into ", dst.describe(),
               " (element counts differ)");
    if (dst.dtype() == src.dtype()) {
        std::memcpy(dst.raw(), src.raw(), src.nbytes());
        return;
    }
    VIDI_CHECK(dtype_is_float(dst.dtype()) && dtype_is_float(src.dtype()), "copy_: cannot convert ",
               src.describe(), " to ", dst.describe());
    Tensor f = as_f32(src);
    convert_from_f32(f.data<float>(), dst.dtype(), dst.raw(), static_cast<size_t>(f.numel()));
}

}  // namespace vidi::cpu

namespace vidi {
std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<cpu::CpuBackend>(threads); }
}  // namespace vidi
