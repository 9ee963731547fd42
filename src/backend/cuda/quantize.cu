// Quantised rows in and out of 16-bit floats T (bf16 or fp16; layouts of core/qtensor.h):
// - dequantize_rows: weight rows -> T, for the slabs of the large-M linear and for
//   embedding gathers. Memory bound: 8 values per thread (one 16-byte store) when rows and
//   groups allow it, one value per thread otherwise.
// - quantize_rows: T activations (media K/V), or bf16 checkpoint weights, -> codes and
//   scales, one warp per group, with the host's arithmetic (core/quantize.cpp) step by step
//   so the codes are identical: IEEE division for the scale and its inverse, x·inv rounded
//   half to even, then clamped; for int4 the host's search over five scales, evaluated by
//   one lane in the same order (each rounded to f16 first when the scales are f16).
// - quantize_column_blocks: 4-bit media keys per channel over blocks of tokens, with zero
//   points: one thread per block and pair of channels (the pair shares a byte of codes).
#include <cuda_runtime.h>

#include <climits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kThreads = 256;

// The weight row that output row r comes from; -1 for an id outside the table (a zero row).
__device__ inline int64_t source_row(const int32_t* ids, int64_t id_rows, int64_t row0, int64_t r) {
    if (!ids) return row0 + r;
    const int64_t id = ids[r];
    return id >= 0 && id < id_rows ? id : -1;
}

__device__ inline float code_value(const QuantView& w, int64_t row, int64_t k) {
    if (w.bits == 8) return static_cast<float>(static_cast<const int8_t*>(w.codes)[row * w.K + k]);
    const uint8_t b = static_cast<const uint8_t*>(w.codes)[row * (w.K / 2) + k / 2];
    return static_cast<float>(static_cast<int>((k & 1) ? (b >> 4) : (b & 15)) - 8);
}

// One element per thread: any K, group and alignment.
template <class T>
__global__ void dequantize_scalar_kernel(T* out, QuantView w, int64_t row0, const int32_t* ids, int64_t id_rows,
                                         int64_t R) {
    const int64_t groups = w.K / w.group;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < R * w.K; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / w.K, k = e % w.K, src = source_row(ids, id_rows, row0, r);
        store_float(out + e, src < 0 ? 0.0f : __fmul_rn(code_value(w, src, k), w.scales[src * groups + k / w.group]));
    }
}

// Eight elements per thread (K and group multiples of 8, codes and out aligned).
template <int BITS, class T>
__global__ void dequantize_vec_kernel(T* out, QuantView w, int64_t row0, const int32_t* ids, int64_t id_rows,
                                      int64_t R) {
    const int64_t groups = w.K / w.group, chunks = w.K / 8;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < R * chunks; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / chunks, k0 = (e % chunks) * 8, src = source_row(ids, id_rows, row0, r);
        float f[8];
        if (src < 0) {
#pragma unroll
            for (int i = 0; i < 8; ++i) f[i] = 0.0f;
            store8(out + r * w.K + k0, f);
            continue;
        }
        const float s = w.scales[src * groups + k0 / w.group];
        if constexpr (BITS == 8) {
            const uint2 c = *reinterpret_cast<const uint2*>(static_cast<const int8_t*>(w.codes) + src * w.K + k0);
            i8x4_to_float(c.x, f);
            i8x4_to_float(c.y, f + 4);
        } else {
            const uint32_t c = *reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(w.codes) +
                                                                  src * (w.K / 2) + k0 / 2);
#pragma unroll
            for (int i = 0; i < 8; ++i) f[i] = static_cast<float>(static_cast<int>((c >> (4 * i)) & 15u) - 8);
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) f[i] = __fmul_rn(f[i], s);
        store8(out + r * w.K + k0, f);
    }
}

// Warp reduction of the host's int4 "extreme": the value of largest magnitude, the first
// (lowest index) one on ties, as the host's strict '>' scan picks it.
__device__ inline void warp_extreme(float& value, float& mag, int& index) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float v2 = __shfl_xor_sync(0xffffffffu, value, o);
        const float m2 = __shfl_xor_sync(0xffffffffu, mag, o);
        const int i2 = __shfl_xor_sync(0xffffffffu, index, o);
        if (m2 > mag || (m2 == mag && i2 < index)) {
            value = v2;
            mag = m2;
            index = i2;
        }
    }
}

// A group's scale stored f32 or f16 (f16: already rounded by round_scale_f16).
__device__ inline void store_scale(void* scales, int64_t i, float s, bool f16) {
    if (f16) static_cast<fp16*>(scales)[i] = __float2half_rn(s);
    else static_cast<float*>(scales)[i] = s;
}

template <int BITS, class T>
__global__ void quantize_kernel(void* codes, void* scales, const T* x, int64_t rows, int64_t K, int group,
                                bool f16_scales) {
    const int lane = threadIdx.x & 31;
    const int64_t groups = K / group, total = rows * groups;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
    for (int64_t gi = blockIdx.x * int64_t(blockDim.x / 32) + threadIdx.x / 32; gi < total; gi += warps) {
        const int64_t r = gi / groups, j = gi % groups;
        const T* xg = x + r * K + j * group;
        if constexpr (BITS == 8) {
            float amax = 0.0f;
            for (int i = lane; i < group; i += 32) amax = fmaxf(amax, fabsf(to_float(xg[i])));
            amax = warp_max(amax);
            const float scale = __fdiv_rn(amax, 127.0f), inv = scale > 0.0f ? __fdiv_rn(1.0f, scale) : 0.0f;
            int8_t* q = static_cast<int8_t*>(codes) + r * K + j * group;
            for (int i = lane; i < group; i += 32) {
                const float c = fminf(fmaxf(rintf(__fmul_rn(to_float(xg[i]), inv)), -127.0f), 127.0f);
                q[i] = static_cast<int8_t>(c);
            }
            if (lane == 0) store_scale(scales, gi, scale, f16_scales);
        } else {
            float value = 0.0f, mag = 0.0f;
            int index = INT_MAX;
            for (int i = lane; i < group; i += 32) {
                const float v = to_float(xg[i]);
                if (fabsf(v) > mag) {  // a lane's indices ascend: the first of equal magnitudes stays
                    value = v;
                    mag = fabsf(v);
                    index = i;
                }
            }
            warp_extreme(value, mag, index);
            // The host's scale search (core/quantize.cpp): the squared error of each candidate
            // summed in index order by one lane, unfused, so the choice is the host's exactly.
            float scale = 0.0f;
            if (lane == 0) {
                auto sse = [xg, group](float s) {
                    const float inv_s = s != 0.0f ? __fdiv_rn(1.0f, s) : 0.0f;
                    float err = 0.0f;
                    for (int i = 0; i < group; ++i) {
                        const float v = to_float(xg[i]);
                        const float c = fminf(fmaxf(rintf(__fmul_rn(v, inv_s)), -8.0f), 7.0f);
                        const float d = __fsub_rn(v, __fmul_rn(c, s));
                        err = __fadd_rn(err, __fmul_rn(d, d));
                    }
                    return err;
                };
                auto stored = [f16_scales](float s) { return f16_scales ? round_scale_f16(s) : s; };
                scale = stored(__fdiv_rn(value, -8.0f));
                float best = sse(scale);
                const float factors[4] = {0.96f, 0.92f, 0.88f, 0.84f};
                for (int t = 0; t < 4; ++t) {
                    const float s = stored(__fdiv_rn(__fmul_rn(factors[t], value), -8.0f)), err = sse(s);
                    if (err < best) best = err, scale = s;
                }
            }
            scale = __shfl_sync(0xffffffffu, scale, 0);
            const float inv = scale != 0.0f ? __fdiv_rn(1.0f, scale) : 0.0f;
            uint8_t* q = static_cast<uint8_t*>(codes) + r * (K / 2) + j * (group / 2);
            auto code = [inv](float v) {
                return static_cast<unsigned>(fminf(fmaxf(rintf(__fmul_rn(v, inv)), -8.0f), 7.0f) + 8.0f);
            };
            for (int p = lane; p < group / 2; p += 32)
                q[p] = static_cast<uint8_t>(code(to_float(xg[2 * p])) | (code(to_float(xg[2 * p + 1])) << 4));
            if (lane == 0) store_scale(scales, gi, scale, f16_scales);
        }
    }
}

// One thread per (block of rows, pair of channels): the pair's minimum and maximum over the
// block, scale (max − min)/15 and zero min rounded to f16, then c = clamp(rint((x − zero)·inv),
// 0, 15) for every row, as the host computes them (core/quantize.cpp).
template <class T>
__global__ void quantize_column_blocks_kernel(uint8_t* codes, fp16* scales, fp16* zeros, const T* x, int64_t rows,
                                              int64_t C, int block) {
    const int64_t pairs = C / 2, blocks = (rows + block - 1) / block;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < blocks * pairs;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t b = e / pairs, p = e % pairs, c = 2 * p;
        const int64_t t0 = b * block, t1 = min(rows, t0 + block);
        float lo[2], hi[2], scale[2], zero[2], inv[2];
        for (int i = 0; i < 2; ++i) lo[i] = hi[i] = to_float(x[t0 * C + c + i]);
        for (int64_t t = t0 + 1; t < t1; ++t)
            for (int i = 0; i < 2; ++i) {
                const float v = to_float(x[t * C + c + i]);
                lo[i] = fminf(lo[i], v);
                hi[i] = fmaxf(hi[i], v);
            }
        for (int i = 0; i < 2; ++i) {
            scale[i] = round_scale_f16(__fdiv_rn(__fsub_rn(hi[i], lo[i]), 15.0f));
            zero[i] = round_scale_f16(lo[i]);
            inv[i] = scale[i] != 0.0f ? __fdiv_rn(1.0f, scale[i]) : 0.0f;
            scales[b * C + c + i] = __float2half_rn(scale[i]);
            zeros[b * C + c + i] = __float2half_rn(zero[i]);
        }
        for (int64_t t = t0; t < t1; ++t) {
            unsigned q[2];
            for (int i = 0; i < 2; ++i) {
                const float v = __fmul_rn(__fsub_rn(to_float(x[t * C + c + i]), zero[i]), inv[i]);
                q[i] = static_cast<unsigned>(fminf(fmaxf(rintf(v), 0.0f), 15.0f));
            }
            codes[t * pairs + p] = static_cast<uint8_t>(q[0] | (q[1] << 4));
        }
    }
}

}  // namespace

template <class T>
void dequantize_rows(T* out, const QuantView& w, int64_t row0, const int32_t* ids, int64_t id_rows, int64_t R,
                     cudaStream_t stream) {
    if (R == 0 || w.K == 0) return;
    const int code_align = w.bits == 8 ? 8 : 4;
    const bool vec = w.K % 8 == 0 && w.group % 8 == 0 && aligned16(out) &&
                     reinterpret_cast<uintptr_t>(w.codes) % code_align == 0;
    if (vec) {
        const int64_t n = R * (w.K / 8);
        if (w.bits == 8)
            dequantize_vec_kernel<8, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(out, w, row0, ids, id_rows, R);
        else
            dequantize_vec_kernel<4, T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(out, w, row0, ids, id_rows, R);
    } else {
        dequantize_scalar_kernel<<<grid_for(R * w.K, kThreads), kThreads, 0, stream>>>(out, w, row0, ids, id_rows, R);
    }
    VIDI_CUDA_CHECK_LAUNCH("dequantize rows");
}

template <class T>
void quantize_rows(void* codes, void* scales, const T* x, int64_t rows, int64_t K, int bits, int group,
                   cudaStream_t stream, bool f16_scales) {
    const int64_t total = rows * (K / group);
    if (total == 0) return;
    constexpr int kWarpsPerBlock = kThreads / 32;
    const unsigned blocks = grid_for(total, kWarpsPerBlock);
    if (bits == 8)
        quantize_kernel<8, T><<<blocks, kThreads, 0, stream>>>(codes, scales, x, rows, K, group, f16_scales);
    else
        quantize_kernel<4, T><<<blocks, kThreads, 0, stream>>>(codes, scales, x, rows, K, group, f16_scales);
    VIDI_CUDA_CHECK_LAUNCH("quantize");
}

template <class T>
void quantize_column_blocks(uint8_t* codes, fp16* scales, fp16* zeros, const T* x, int64_t rows, int64_t C,
                            int block, cudaStream_t stream) {
    const int64_t threads = (rows + block - 1) / block * (C / 2);
    if (threads == 0) return;
    constexpr int kBlockThreads = 128;  // few threads per block: an hour's chunk has ~32k of them
    quantize_column_blocks_kernel<T>
        <<<grid_for(threads, kBlockThreads), kBlockThreads, 0, stream>>>(codes, scales, zeros, x, rows, C, block);
    VIDI_CUDA_CHECK_LAUNCH("quantize column blocks");
}

#define VIDI_QUANTIZE(T)                                                                                    \
    template void dequantize_rows<T>(T*, const QuantView&, int64_t, const int32_t*, int64_t, int64_t,     \
                                     cudaStream_t);                                                         \
    template void quantize_rows<T>(void*, void*, const T*, int64_t, int64_t, int, int, cudaStream_t, bool); \
    template void quantize_column_blocks<T>(uint8_t*, fp16*, fp16*, const T*, int64_t, int64_t, int, cudaStream_t);
VIDI_QUANTIZE(bf16)
VIDI_QUANTIZE(fp16)

}  // namespace vidi::cuda
