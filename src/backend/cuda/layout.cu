// Gathers and re-layouts: one thread per output element (grid-stride), reading whatever
// input element it maps to. These run once per frame or per layer and are memory-bound;
// only transpose2d uses a shared-memory tile, since its naive form reads with a stride.
// All but resize_bilinear move 2-byte elements as they are (u16: bf16 or fp16 alike).
#include <cuda_runtime.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kThreads = 256;
using u16 = uint16_t;

#define VIDI_GRID_STRIDE(e, n) \
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < (n); e += int64_t(gridDim.x) * blockDim.x)

// ids come from device memory (a recorded step's input): one outside the table gives zeros.
__global__ void embed_kernel(u16* out, const u16* table, const int32_t* ids, int64_t T, int64_t V, int64_t D) {
    VIDI_GRID_STRIDE(e, T * D) {
        const int64_t t = e / D, d = e % D, id = ids[t];
        out[e] = id >= 0 && id < V ? table[id * D + d] : u16(0);
    }
}

// 32×32 tile through shared memory (+1 column against bank conflicts): reads and writes
// are both coalesced.
template <class T>
__global__ void transpose_kernel(T* out, const T* in, int64_t A, int64_t B) {
    __shared__ T tile[32][33];
    const int64_t a0 = int64_t(blockIdx.y) * 32, b0 = int64_t(blockIdx.x) * 32;
    for (int r = threadIdx.y; r < 32; r += blockDim.y) {
        const int64_t a = a0 + r, b = b0 + threadIdx.x;
        if (a < A && b < B) tile[r][threadIdx.x] = in[a * B + b];
    }
    __syncthreads();
    for (int r = threadIdx.y; r < 32; r += blockDim.y) {
        const int64_t b = b0 + r, a = a0 + threadIdx.x;
        if (a < A && b < B) out[b * A + a] = tile[threadIdx.x][r];
    }
}

__global__ void im2col_kernel(u16* out, const u16* x, int64_t T, int64_t C, int k, int stride, int pad,
                              int64_t T_out) {
    const int64_t width = C * k;
    VIDI_GRID_STRIDE(e, T_out * width) {
        const int64_t t = e / width, ck = e % width, c = ck / k, j = ck % k;
        const int64_t src = t * stride + j - pad;
        out[e] = (src >= 0 && src < T) ? x[src * C + c] : u16(0);
    }
}

// x[F, H, W, C] -> [F, Ho, Wo, C·k·k], element c·k·k + ky·k + kx of a cell reading
// x[f, oy·stride + ky, ox·stride + kx, c].
__global__ void im2col_2d_kernel(u16* out, const u16* x, int64_t F, int64_t H, int64_t W, int64_t C, int k,
                                 int stride, int64_t Ho, int64_t Wo) {
    const int64_t width = C * k * k;
    VIDI_GRID_STRIDE(e, F * Ho * Wo * width) {
        const int64_t j = e % width, cell = e / width, ox = cell % Wo, oy = (cell / Wo) % Ho, f = cell / (Wo * Ho);
        const int64_t c = j / (k * k), ky = (j / k) % k, kx = j % k;
        out[e] = x[((f * H + oy * stride + ky) * W + ox * stride + kx) * C + c];
    }
}

__global__ void patchify_kernel(u16* out, const u16* px, int64_t N, int64_t C, int64_t S, int p) {
    const int64_t g = S / p, width = C * p * p, per_image = g * g * width;
    VIDI_GRID_STRIDE(e, N * per_image) {
        const int64_t n = e / per_image, rem = e % per_image, patch = rem / width, f = rem % width;
        const int64_t py = patch / g, pxi = patch % g, c = f / (p * p), ky = (f / p) % p, kx = f % p;
        out[e] = px[((n * C + c) * S + py * p + ky) * S + pxi * p + kx];
    }
}

__global__ void space_to_depth_kernel(u16* out, const u16* x, int64_t F, int64_t H, int64_t W, int64_t C, int p) {
    const int64_t oh = H / p, ow = W / p, width = C * p * p;
    VIDI_GRID_STRIDE(e, F * oh * ow * width) {
        const int64_t f = e % width, cell = e / width;
        const int64_t ox = cell % ow, oy = (cell / ow) % oh, fr = cell / (ow * oh);
        const int64_t c = f / (p * p), dy = (f / p) % p, dx = f % p;
        out[e] = x[((fr * H + oy * p + dy) * W + ox * p + dx) * C + c];
    }
}

__global__ void pad_grid_kernel(u16* out, const u16* x, int64_t F, int64_t H, int64_t W, int64_t C, int64_t OH,
                                int64_t OW) {
    VIDI_GRID_STRIDE(e, F * OH * OW * C) {
        const int64_t c = e % C, cell = e / C, ox = cell % OW, oy = (cell / OW) % OH, f = cell / (OW * OH);
        out[e] = (oy < H && ox < W) ? x[((f * H + oy) * W + ox) * C + c] : u16(0);
    }
}

// PyTorch's source index: align_corners=false (dst + 0.5)·in/out − 0.5, clamped at 0;
// true dst·(in − 1)/(out − 1) (`scale` is that ratio).
__device__ inline void source_index(int64_t dst, int64_t in, float scale, bool align_corners, int64_t& i0,
                                    int64_t& i1, float& frac) {
    const float src = align_corners ? static_cast<float>(dst) * scale
                                    : fmaxf((static_cast<float>(dst) + 0.5f) * scale - 0.5f, 0.0f);
    i0 = min(static_cast<int64_t>(src), in - 1);
    i1 = min(i0 + 1, in - 1);
    frac = src - static_cast<float>(i0);
}

__device__ inline float source_scale(int64_t in, int out, bool align_corners) {
    if (!align_corners) return static_cast<float>(in) / static_cast<float>(out);
    return out > 1 ? static_cast<float>(in - 1) / static_cast<float>(out - 1) : 0.0f;
}

template <class T>
__global__ void resize_bilinear_kernel(T* out, const T* x, int64_t F, int64_t H, int64_t W, int64_t C, int oh,
                                       int ow, bool align_corners) {
    const float sy = source_scale(H, oh, align_corners), sx = source_scale(W, ow, align_corners);
    VIDI_GRID_STRIDE(e, F * oh * ow * C) {
        const int64_t c = e % C, cell = e / C, ox = cell % ow, oy = (cell / ow) % oh, f = cell / (int64_t(ow) * oh);
        int64_t y0, y1, x0, x1;
        float ly, lx;
        source_index(oy, H, sy, align_corners, y0, y1, ly);
        source_index(ox, W, sx, align_corners, x0, x1, lx);
        const T* img = x + f * H * W * C + c;
        auto at = [&](int64_t yy, int64_t xx) { return to_float(img[(yy * W + xx) * C]); };
        const float top = (1.0f - lx) * at(y0, x0) + lx * at(y0, x1);
        const float bottom = (1.0f - lx) * at(y1, x0) + lx * at(y1, x1);
        store_float(out + e, (1.0f - ly) * top + ly * bottom);
    }
}

__global__ void repeat_kv_kernel(u16* out, const u16* v, int64_t T, int64_t KV, int64_t H, int64_t hd) {
    const int64_t group = H / KV;
    VIDI_GRID_STRIDE(e, T * H * hd) {
        const int64_t d = e % hd, h = (e / hd) % H, t = e / (hd * H);
        out[e] = v[(t * KV + h / group) * hd + d];
    }
}

}  // namespace

void embed(void* out, const void* table, const int32_t* ids, int64_t T, int64_t V, int64_t D, cudaStream_t stream) {
    if (T * D == 0) return;
    embed_kernel<<<grid_for(T * D, kThreads), kThreads, 0, stream>>>(static_cast<u16*>(out),
                                                                     static_cast<const u16*>(table), ids, T, V, D);
    VIDI_CUDA_CHECK_LAUNCH("embed");
}

void transpose2d(void* out, const void* in, int64_t A, int64_t B, size_t elem_size, cudaStream_t stream) {
    if (A * B == 0) return;
    const dim3 block(32, 8), grid(static_cast<unsigned>((B + 31) / 32), static_cast<unsigned>((A + 31) / 32));
    if (elem_size == 2)
        transpose_kernel<<<grid, block, 0, stream>>>(static_cast<uint16_t*>(out), static_cast<const uint16_t*>(in), A, B);
    else
        transpose_kernel<<<grid, block, 0, stream>>>(static_cast<uint32_t*>(out), static_cast<const uint32_t*>(in), A, B);
    VIDI_CUDA_CHECK_LAUNCH("transpose2d");
}

void im2col_1d(void* out, const void* x, int64_t T, int64_t C, int k, int stride, int pad, int64_t T_out,
               cudaStream_t stream) {
    const int64_t n = T_out * C * k;
    if (n == 0) return;
    im2col_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<u16*>(out), static_cast<const u16*>(x),
                                                                  T, C, k, stride, pad, T_out);
    VIDI_CUDA_CHECK_LAUNCH("im2col_1d");
}

void patchify(void* out, const void* pixels, int64_t N, int64_t C, int64_t S, int p, cudaStream_t stream) {
    const int64_t n = N * C * S * S;
    if (n == 0) return;
    patchify_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<u16*>(out),
                                                                    static_cast<const u16*>(pixels), N, C, S, p);
    VIDI_CUDA_CHECK_LAUNCH("patchify");
}

void space_to_depth(void* out, const void* x, int64_t F, int64_t H, int64_t W, int64_t C, int p,
                    cudaStream_t stream) {
    const int64_t n = F * H * W * C;
    if (n == 0) return;
    space_to_depth_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<u16*>(out),
                                                                          static_cast<const u16*>(x), F, H, W, C, p);
    VIDI_CUDA_CHECK_LAUNCH("space_to_depth");
}

void pad_grid(void* out, const void* x, int64_t F, int64_t H, int64_t W, int64_t C, int bottom, int right,
              cudaStream_t stream) {
    const int64_t OH = H + bottom, OW = W + right, n = F * OH * OW * C;
    if (n == 0) return;
    pad_grid_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<u16*>(out), static_cast<const u16*>(x),
                                                                    F, H, W, C, OH, OW);
    VIDI_CUDA_CHECK_LAUNCH("pad_grid");
}

void im2col_2d(void* out, const void* x, int64_t F, int64_t H, int64_t W, int64_t C, int k, int stride,
               cudaStream_t stream) {
    const int64_t Ho = (H - k) / stride + 1, Wo = (W - k) / stride + 1, n = F * Ho * Wo * C * k * k;
    if (n == 0) return;
    im2col_2d_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<u16*>(out),
                                                                     static_cast<const u16*>(x), F, H, W, C, k,
                                                                     stride, Ho, Wo);
    VIDI_CUDA_CHECK_LAUNCH("im2col_2d");
}

template <class T>
void resize_bilinear(T* out, const T* x, int64_t F, int64_t H, int64_t W, int64_t C, int oh, int ow,
                     bool align_corners, cudaStream_t stream) {
    const int64_t n = F * int64_t(oh) * ow * C;
    if (n == 0) return;
    resize_bilinear_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(out, x, F, H, W, C, oh, ow, align_corners);
    VIDI_CUDA_CHECK_LAUNCH("resize_bilinear");
}

void repeat_kv(void* out, const void* v, int64_t T, int64_t KV, int64_t H, int64_t hd, cudaStream_t stream) {
    const int64_t n = T * H * hd;
    if (n == 0) return;
    repeat_kv_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<u16*>(out), static_cast<const u16*>(v),
                                                                     T, KV, H, hd);
    VIDI_CUDA_CHECK_LAUNCH("repeat_kv");
}

template void resize_bilinear<bf16>(bf16*, const bf16*, int64_t, int64_t, int64_t, int64_t, int, int, bool,
                                    cudaStream_t);
template void resize_bilinear<fp16>(fp16*, const fp16*, int64_t, int64_t, int64_t, int64_t, int, int, bool,
                                    cudaStream_t);

}  // namespace vidi::cuda
