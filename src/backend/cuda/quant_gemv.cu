// Fused dequantise-and-multiply for few activation rows (decoding): y = x · dequant(w)ᵀ
// with int8 or int4 weights (or plain 16-bit ones, bits 16), reading each weight byte once.
// Activations, bias and 16-bit weights are of one type T (bf16 or fp16); y is T, or f32 for
// the LM head's logits.
// This case is memory bound: what matters is streaming the codes at full bandwidth, so the
// layout is the plain GEMV one (llama.cpp-style): one warp per weight row, each lane reading
// 16-byte chunks (16 int8, 32 int4 or 8 16-bit values) so a warp instruction covers 512
// contiguous bytes, several chunks in flight per lane; codes become floats with exact bit
// tricks, each chunk's dot product with every activation row is scaled by its group's scale,
// and a warp shuffle sums the lanes. Activation rows are read through L1 (every warp of the
// grid shares them).
// Paired with a second weight of the same shape (an MLP's gate and up projections), a warp
// computes row n of both and writes the GLU act(gate)·up (GeGLU's gelu_tanh or SwiGLU's silu),
// each product rounded to T first as when the two linears and glu run apart: two launches
// and a pass fewer.
// Several weights of one input (attention's q, k and v) go in one launch as segments of one
// row range: a warp finds which weight its row belongs to and writes that weight's output.
#include <cuda_runtime.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kWarps = 8;  // weight rows per block
constexpr int kThreads = kWarps * 32;
constexpr int kInFlight = 4;  // 16-byte chunks per lane loaded before any is used

// One weight and its output y[M, N].
struct Segment {
    void* y;
    const uint8_t* codes;
    const float* scales;
    int64_t N;
};

template <class T>
struct GemvArgs {
    Segment seg[kGemvMaxOutputs];  // rows 0..N0-1 are seg[0]'s, the next N1 seg[1]'s, ...
    int segments;
    const T* x;
    const uint8_t* up_codes;  // non-null (one segment): y = act(x·wᵀ) ⊙ (x·upᵀ)
    const float* up_scales;
    bool silu;                // act: silu, else gelu_tanh
    const T* bias;            // one segment only
    bool y_f32;               // y is f32 (one segment, no up)
    int64_t M, K;
    int group;
};

template <int BITS>
constexpr int kChunkValues = 128 / BITS;

// 16 bytes of codes -> their values q (exact small integers as floats; bits 16: T values).
template <int BITS, class T>
__device__ inline void decode_chunk(const uint4& c, float* q) {
    const uint32_t w[4] = {c.x, c.y, c.z, c.w};
    if constexpr (BITS == 16) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = pair_to_float2<T>(w[i]);
            q[2 * i] = f.x;
            q[2 * i + 1] = f.y;
        }
    } else if constexpr (BITS == 8) {
#pragma unroll
        for (int i = 0; i < 4; ++i) i8x4_to_float(w[i], q + 4 * i);
    } else {
        // Nibble i of a word is value i (low nibble first); 2^23 + n is exact, minus 2^23 + 8 gives q.
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j)
                q[8 * i + j] = __uint_as_float(0x4B000000u | ((w[i] >> (4 * j)) & 15u)) - 8388616.0f;
    }
}

// Dot product of n values q with x (n a multiple of 8, x 16-byte aligned).
template <int N, class T>
__device__ inline float dot_x(const float* q, const T* x) {
    const uint4* xp = reinterpret_cast<const uint4*>(x);
    float d = 0.0f;
#pragma unroll
    for (int v = 0; v < N / 8; ++v) {
        const uint4 xv = __ldg(xp + v);
        const uint32_t xw[4] = {xv.x, xv.y, xv.z, xv.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 xf = pair_to_float2<T>(xw[i]);
            d = fmaf(q[8 * v + 2 * i], xf.x, d);
            d = fmaf(q[8 * v + 2 * i + 1], xf.y, d);
        }
    }
    return d;
}

template <int BITS, int MAXM, class T>
__global__ void __launch_bounds__(kThreads) quant_gemv_kernel(GemvArgs<T> a) {
    constexpr int V = kChunkValues<BITS>;
    const int lane = threadIdx.x & 31;
    int64_t n = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
    Segment out = a.seg[0];
    for (int s = 1; s < kGemvMaxOutputs && s < a.segments && n >= out.N; ++s) {
        n -= out.N;
        out = a.seg[s];
    }
    if (n >= out.N) return;  // whole warps only: no shuffle below misses a lane
    const int64_t chunks = a.K / V, groups = a.K / a.group;
    const int64_t chunks_per_group = a.group / V;
    const int64_t row_bytes = a.K * BITS / 8;

    // acc[m] += x[m] · row n of the weight (codes, scales).
    auto dot_row = [&](const uint8_t* codes, const float* scales, float (&acc)[MAXM]) {
        const uint4* w = reinterpret_cast<const uint4*>(codes + n * row_bytes);
        const float* s = BITS == 16 ? nullptr : scales + n * groups;
        for (int64_t c0 = lane; c0 < chunks; c0 += 32 * kInFlight) {
            uint4 c[kInFlight];
#pragma unroll
            for (int u = 0; u < kInFlight; ++u) {
                const int64_t ci = c0 + 32 * u;
                c[u] = ci < chunks ? __ldcs(w + ci) : make_uint4(0, 0, 0, 0);  // streamed once
            }
#pragma unroll
            for (int u = 0; u < kInFlight; ++u) {
                const int64_t ci = c0 + 32 * u;
                if (ci >= chunks) break;
                float q[V];
                decode_chunk<BITS, T>(c[u], q);
                const float scale = BITS == 16 ? 1.0f : __ldg(s + ci / chunks_per_group);
#pragma unroll
                for (int m = 0; m < MAXM; ++m) {
                    if (m >= a.M) break;
                    acc[m] = fmaf(dot_x<V>(q, a.x + m * a.K + ci * V), scale, acc[m]);
                }
            }
        }
    };

    float acc[MAXM], up[MAXM];
#pragma unroll
    for (int m = 0; m < MAXM; ++m) acc[m] = up[m] = 0.0f;
    dot_row(out.codes, out.scales, acc);
    if (a.up_codes) dot_row(a.up_codes, a.up_scales, up);
#pragma unroll
    for (int m = 0; m < MAXM; ++m) {
        if (m >= a.M) break;
        const float sum = warp_sum(acc[m]) + (a.bias ? to_float(a.bias[n]) : 0.0f);
        float value = sum;
        if (a.up_codes) {
            const float g = round_to<T>(sum);
            value = (a.silu ? silu(g) : gelu_tanh(g)) * round_to<T>(warp_sum(up[m]));
        }
        if (lane == 0) {
            if (a.y_f32) static_cast<float*>(out.y)[m * out.N + n] = value;
            else store_float(static_cast<T*>(out.y) + m * out.N + n, value);
        }
    }
}

template <int BITS, class T>
void launch(const GemvArgs<T>& args, cudaStream_t stream) {
    int64_t rows = 0;
    for (int s = 0; s < args.segments; ++s) rows += args.seg[s].N;
    const unsigned blocks = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
    if (args.M == 1)
        quant_gemv_kernel<BITS, 1, T><<<blocks, kThreads, 0, stream>>>(args);
    else if (args.M <= 4)
        quant_gemv_kernel<BITS, 4, T><<<blocks, kThreads, 0, stream>>>(args);
    else if (args.M <= 8)
        quant_gemv_kernel<BITS, 8, T><<<blocks, kThreads, 0, stream>>>(args);
    else
        quant_gemv_kernel<BITS, 16, T><<<blocks, kThreads, 0, stream>>>(args);
    VIDI_CUDA_CHECK_LAUNCH("linear (few rows)");
}

template <class T>
void launch_gemv(const GemvArgs<T>& args, int bits, cudaStream_t stream) {
    if (bits == 16)
        launch<16>(args, stream);
    else if (bits == 8)
        launch<8>(args, stream);
    else
        launch<4>(args, stream);
}

Segment segment(void* y, const QuantView& w, int64_t N) {
    return {y, static_cast<const uint8_t*>(w.codes), w.scales, N};
}

}  // namespace

bool quant_gemv_supported(const QuantView& w, const void* x, int64_t M) {
    // Rows of whole 16-byte chunks, groups of whole chunks, 16-byte aligned codes and x rows.
    if (w.bits != 16 && w.bits != 8 && w.bits != 4) return false;
    const int chunk = 128 / w.bits;
    const int64_t max_rows = w.bits == 16 ? kFloatGemvMaxRows : kQuantGemvMaxRows;
    return M >= 1 && M <= max_rows && w.K % chunk == 0 &&
           w.group % chunk == 0 && reinterpret_cast<uintptr_t>(w.codes) % 16 == 0 && aligned16(x);
}

template <class T>
void quant_gemv(void* y, bool y_f32, const T* x, const QuantView& w, const T* bias, int64_t M, int64_t N,
                cudaStream_t stream, const QuantView* up, bool silu) {
    if (M == 0 || N == 0) return;
    VIDI_CHECK(!(y_f32 && up), "quant_gemv: the fused GLU writes activations, not f32");
    GemvArgs<T> args{};
    args.y_f32 = y_f32;
    args.seg[0] = segment(y, w, N);
    args.segments = 1;
    args.x = x;
    args.up_codes = up ? static_cast<const uint8_t*>(up->codes) : nullptr;
    args.up_scales = up ? up->scales : nullptr;
    args.silu = silu;
    args.bias = bias;
    args.M = M;
    args.K = w.K;
    args.group = w.group;
    launch_gemv(args, w.bits, stream);
}

template <class T>
void quant_gemv_many(const GemvOutput* outs, int count, const T* x, int64_t M, cudaStream_t stream) {
    VIDI_CHECK(count >= 1 && count <= kGemvMaxOutputs, "quant_gemv_many: ", count, " outputs (1..",
               kGemvMaxOutputs, ")");
    if (M == 0) return;
    GemvArgs<T> args{};
    for (int i = 0; i < count; ++i) args.seg[i] = segment(outs[i].y, outs[i].w, outs[i].N);
    args.segments = count;
    args.x = x;
    args.M = M;
    args.K = outs[0].w.K;
    args.group = outs[0].w.group;
    launch_gemv(args, outs[0].w.bits, stream);
}

#define VIDI_GEMV(T)                                                                                           \
    template void quant_gemv<T>(void*, bool, const T*, const QuantView&, const T*, int64_t, int64_t, cudaStream_t, \
                                const QuantView*, bool);                                                       \
    template void quant_gemv_many<T>(const GemvOutput*, int, const T*, int64_t, cudaStream_t);
VIDI_GEMV(bf16)
VIDI_GEMV(fp16)

}  // namespace vidi::cuda
