// Frames to vision-tower pixels on the GPU: Pillow's fixed-point bicubic resampling
// (core/pil_resize.h) in integer arithmetic, so the bytes equal the host's, then SigLIP's
// normalisation rounded once to f32 as on the host, stored in the activations' 16-bit type.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "core/pil_resize.h"

namespace vidi::cuda {
namespace {

constexpr int32_t kHalf = 1 << (kResamplePrecisionBits - 1);

__device__ inline int clip8(int32_t acc) { return min(max(acc >> kResamplePrecisionBits, 0), 255); }

// One thread per output byte of tmp[n, rows, ow, 3].
__global__ void resample_rows_kernel(uint8_t* tmp, const uint8_t* rgb, int64_t n, int h, int w, int row0, int rows,
                                     ResampleTaps ax) {
    const int64_t total = n * rows * ax.out * 3;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int c = static_cast<int>(i % 3);
        const int xx = static_cast<int>((i / 3) % ax.out);
        const int64_t r = (i / 3 / ax.out) % rows, f = i / (int64_t(3) * ax.out * rows);
        const uint8_t* in = rgb + ((f * h + row0 + r) * w + ax.first[xx]) * 3 + c;
        const int32_t* k = ax.taps + int64_t(xx) * ax.ksize;
        int32_t acc = kHalf;
        for (int x = 0; x < ax.count[xx]; ++x) acc += int32_t(in[x * 3]) * k[x];
        tmp[i] = static_cast<uint8_t>(clip8(acc));
    }
}

// One thread per output value of out[n, 3, oh, ow] (planar, so the writes coalesce).
template <class T>
__global__ void resample_cols_normalize_kernel(T* out, const uint8_t* tmp, int64_t n, int row0, int rows, int ow,
                                               ResampleTaps ax) {
    const int64_t total = n * 3 * ax.out * int64_t(ow);
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int x = static_cast<int>(i % ow);
        const int y = static_cast<int>((i / ow) % ax.out);
        const int c = static_cast<int>((i / ow / ax.out) % 3);
        const int64_t f = i / (int64_t(ow) * ax.out * 3);
        const uint8_t* in = tmp + ((f * rows + ax.first[y] - row0) * ow + x) * 3 + c;
        const int32_t* k = ax.taps + int64_t(y) * ax.ksize;
        int32_t acc = kHalf;
        for (int j = 0; j < ax.count[y]; ++j) acc += int32_t(in[int64_t(j) * ow * 3]) * k[j];
        const double v = clip8(acc);
        store_float(out + i, static_cast<float>((v / 255.0 - 0.5) / 0.5));
    }
}

}  // namespace

void resample_rows(uint8_t* tmp, const uint8_t* rgb, int64_t n, int h, int w, int row0, int rows,
                   const ResampleTaps& cols, cudaStream_t stream) {
    constexpr int kThreads = 256;
    resample_rows_kernel<<<grid_for(n * rows * cols.out * 3, kThreads), kThreads, 0, stream>>>(tmp, rgb, n, h, w, row0,
                                                                                               rows, cols);
    VIDI_CUDA_CHECK_LAUNCH("resample_rows");
}

template <class T>
void resample_cols_normalize(T* out, const uint8_t* tmp, int64_t n, int row0, int rows, int ow,
                             const ResampleTaps& rows_axis, cudaStream_t stream) {
    constexpr int kThreads = 256;
    resample_cols_normalize_kernel<<<grid_for(n * 3 * rows_axis.out * int64_t(ow), kThreads), kThreads, 0, stream>>>(
        out, tmp, n, row0, rows, ow, rows_axis);
    VIDI_CUDA_CHECK_LAUNCH("resample_cols_normalize");
}

#define VIDI_PIXELS(T)                                                                                  \
    template void resample_cols_normalize<T>(T*, const uint8_t*, int64_t, int, int, int, const ResampleTaps&, \
                                             cudaStream_t);
VIDI_PIXELS(bf16)
VIDI_PIXELS(fp16)

}  // namespace vidi::cuda
