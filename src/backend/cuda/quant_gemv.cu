// Fused dequantise-and-multiply for few activation rows (decoding): y = x · dequant(w)ᵀ
// with int8 or int4 weights (or plain 16-bit ones, bits 16), reading each weight byte once.
// Activations, bias and 16-bit weights are of one type T (bf16 or fp16); y is T, or f32 for
// the LM head's logits.
//
// Layout: tensor cores with the operands swapped. mma.sync m16n8k16 computes a 16×8 tile
// C += A·B; here A is 16 weight rows and B's 8 columns are activation rows, so one mma does 16
// rows × up to 8 rows of x (two n-tiles for M up to 16), and the math is no longer the bound at
// M = 16 while M = 1 streams weights as a plain GEMV does.
// - A block of kWarps warps owns one tile of 16 weight rows (of one segment) and splits K
//   between its warps: each row is cut into 16-byte chunks of codes (8, 16 or 32 values at
//   bits 16, 8, 4), and chunk c belongs to warp (c / 4) % kWarps, lane t = c % 4 of it. Lane
//   (g = lane / 4, t) loads chunk c of weight rows g and g + 8 (streamed, __ldcs), and the
//   matching values of x rows g (n-tile 0) and 8 + g (n-tile 1) through L1, kInFlight chunks
//   deep before any is used. No shared memory on the way in. Launched early (early_launch.h):
//   the first weight chunks are requested before the kernel waits for x.
// - The order of k inside a dot product is free as long as A and B use the same one. mma's
//   fragments (PTX ISA, m16n8k16): lane (g, t) holds A (row g, k 2t..2t+1), (row g + 8, same),
//   (row g, k 2t+8..2t+9), (row g + 8, same) and B (k 2t..2t+1, col g), (k 2t+8..2t+9, col g).
//   So a lane's chunk feeds mma k-steps straight from registers: step s takes values 4s..4s+1
//   of the chunk as "k 2t..2t+1" and 4s+2..4s+3 as "k 2t+8..2t+9", in A (both rows) and in B
//   (its x row) alike. C then holds (row g, x rows 2t, 2t+1) and (row g + 8, same).
// - Quantised codes become T in registers with the group's scale folded in: T(code · scale),
//   rounded as dequantize_rows (quantize.cu) rounds, so a decoding step multiplies by the very
//   weights the prefill's dequantise-then-GEMM path uses (a token's logits do not depend on
//   which path served it beyond the summation order). The extra rounding of the weight to T is
//   what that path has always had; the kernel's tests bound it. A chunk never straddles a
//   group (groups are whole chunks, quant_gemv_supported).
// - Each warp's partial tile goes to shared memory and the block sums the warps in a fixed
//   order, then adds the bias and applies the GLU. The k-partition and that order depend on K
//   only, and an mma's output column depends only on its own B column, so a row of x gets the
//   same bits alone (M = 1) or among 16 rows (tests/cuda/row_invariance_test.cpp).
// Paired with a second weight of the same shape (an MLP's gate and up projections), the block
// computes both (sharing the x loads) and writes the GLU act(gate)·up (GeGLU's gelu_tanh or
// SwiGLU's silu), each product rounded to T first as when the two linears and glu run apart:
// two launches and a pass fewer.
// Several weights of one input (attention's q, k and v) go in one launch as segments: the
// blocks past segment 0's tiles take segment 1's, and so on.
#include <cuda_runtime.h>

#include <climits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/early_launch.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace vidi::cuda {
namespace {

constexpr int kTileRows = 16;  // weight rows of a block (mma's M); also the most x rows (two n-tiles)
constexpr int kWarps = 8;      // warps of a block, each a share of K
constexpr int kThreads = kWarps * 32;
constexpr int kLanesPerRow = 4;                       // lanes t = 0..3 of a warp read one row's chunks
constexpr int kChunkStride = kWarps * kLanesPerRow;   // a block's chunks of a row per load

template <int BITS>
constexpr int kChunkValues = 128 / BITS;  // values in a 16-byte chunk of codes

// Chunks per lane loaded before any is used. A warp's load of one chunk is 16 rows × 64
// contiguous bytes (1 KB), so bits 16 keeps 4 KB per warp in flight, 32 KB per block of 8
// warps (two blocks an SM at ≤ 128 registers). Quantised chunks pair with 2-4× their bytes of
// x, held in registers too: at most 48 registers of x (more spills on sm_89), and GLU's two
// weights share the depth. int4 at M > 8 is left with 1 KB per warp.
template <int BITS, int NT, int W>
constexpr int kInFlight = std::max(1, std::min(4, 48 / (NT * kChunkValues<BITS> / 2)) / W);

// One weight and its output y[M, N].
struct Segment {
    void* y;
    const uint8_t* codes;
    const float* scales;
    int64_t N;
};

template <class T>
struct GemvArgs {
    Segment seg[kGemvMaxOutputs];  // blocks 0.. take seg[0]'s tiles of 16 rows, then seg[1]'s, ...
    int segments;
    const T* x;
    const uint8_t* up_codes;  // non-null (one segment): y = act(x·wᵀ) ⊙ (x·upᵀ)
    const float* up_scales;
    bool silu;                // act: silu, else gelu_tanh
    const T* bias;            // one segment only
    bool y_f32;               // y is f32 (one segment, no up)
    int M, K, group;
};

__device__ inline uint32_t word_of(const uint4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// A 16-byte chunk of codes -> its values as T pairs (values 2i, 2i + 1 in p[i], the first in the
// low half), each T(code · scale) as dequantize_rows rounds it; bits 16 are T values already.
template <int BITS, class T>
__device__ inline void decode_chunk(const uint4& c, float scale, uint32_t (&p)[kChunkValues<BITS> / 2]) {
    if constexpr (BITS == 16) {
#pragma unroll
        for (int i = 0; i < 4; ++i) p[i] = word_of(c, i);
    } else if constexpr (BITS == 8) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            float f[4];
            i8x4_to_float(word_of(c, i), f);
            p[2 * i] = float2_to_pair<T>(__fmul_rn(f[0], scale), __fmul_rn(f[1], scale));
            p[2 * i + 1] = float2_to_pair<T>(__fmul_rn(f[2], scale), __fmul_rn(f[3], scale));
        }
    } else {
        // Word i holds values 8i..8i+7, low nibble first: masking gives the even values in its
        // bytes, shifting first the odd ones, and a byte becomes an exact float as in i8x4_to_float.
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t w = word_of(c, i), even = w & 0x0F0F0F0Fu, odd = (w >> 4) & 0x0F0F0F0Fu;
#pragma unroll
            for (int b = 0; b < 4; ++b) {
                const float lo = __uint_as_float(__byte_perm(even, 0x4B000000u, 0x7650u + b)) - 8388616.0f;
                const float hi = __uint_as_float(__byte_perm(odd, 0x4B000000u, 0x7650u + b)) - 8388616.0f;
                p[4 * i + b] = float2_to_pair<T>(__fmul_rn(lo, scale), __fmul_rn(hi, scale));
            }
        }
    }
}

// BITS: the weights' format; NT: n-tiles of x rows (1: M ≤ 8, 2: M ≤ 16); W: weights (2: gate
// and up of the fused GLU).
template <int BITS, int NT, int W, class T>
__global__ void __launch_bounds__(kThreads, 2) quant_gemv_kernel(GemvArgs<T> a) {
    constexpr int V = kChunkValues<BITS>, X = V / 8;  // values of a chunk; 16-byte vectors of x they meet
    constexpr int U = kInFlight<BITS, NT, W>;
    __shared__ float partial[W][kWarps][kTileRows * kTileRows];  // a warp's tile, [x row][weight row]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    dependents_may_start();

    // This block's tile: rows n0.. of one segment (every segment's tiles are whole blocks).
    int64_t tile = blockIdx.x;
    Segment out = a.seg[0];
    for (int s = 1; s < a.segments; ++s) {
        const int64_t tiles = (out.N + kTileRows - 1) / kTileRows;
        if (tile < tiles) break;
        tile -= tiles;
        out = a.seg[s];
    }
    const int64_t n0 = tile * kTileRows;
    const int rows = out.N - n0 < kTileRows ? static_cast<int>(out.N - n0) : kTileRows;
    const int chunks = a.K / V, groups = a.K / a.group, chunks_per_group = a.group / V;
    const int64_t row_bytes = int64_t(a.K) * BITS / 8;

    // Lane (g, t)'s weight rows g and g + 8 (none past the tile's rows) and x rows g and 8 + g
    // (none past M): rows it does not have are never read, their operands are zeros.
    const uint8_t* codes[2] = {out.codes, a.up_codes};
    const float* scales[2] = {out.scales, a.up_scales};
    const uint4* wrow[W][2] = {};
    const float* srow[W][2] = {};
    const bool has_row[2] = {g < rows, g + 8 < rows};
#pragma unroll
    for (int wi = 0; wi < W; ++wi)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int64_t r = n0 + g + 8 * h;
            if (!has_row[h]) continue;
            wrow[wi][h] = reinterpret_cast<const uint4*>(codes[wi] + r * row_bytes);
            if (BITS != 16) srow[wi][h] = scales[wi] + r * groups;
        }
    const uint4* xrow[NT] = {};
    bool has_x[NT];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
        has_x[nt] = 8 * nt + g < a.M;
        if (has_x[nt]) xrow[nt] = reinterpret_cast<const uint4*>(a.x + int64_t(8 * nt + g) * a.K);
    }

    float acc[W][NT][4] = {};
    // The weights' first round is requested before the input is waited for (early launch:
    // the kernel before may still be writing x), every later round's weights and x together.
    bool waited = false;
    // The loop bound is the warp's (not the lane's): every lane takes part in every mma.
    for (int c0 = kLanesPerRow * warp; c0 < chunks; c0 += kChunkStride * U) {
        uint4 wc[U][W][2], xc[U][NT][X];
        float sc[U][W][2];
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c = c0 + t + kChunkStride * u;
            const bool in_k = c < chunks;
            const int group = BITS == 16 || !in_k ? 0 : c / chunks_per_group;
#pragma unroll
            for (int wi = 0; wi < W; ++wi)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const bool ok = in_k && has_row[h];
                    wc[u][wi][h] = ok ? __ldcs(wrow[wi][h] + c) : make_uint4(0, 0, 0, 0);  // streamed once
                    sc[u][wi][h] = BITS != 16 && ok ? __ldg(srow[wi][h] + group) : 0.0f;  // 0: a zero chunk
                }
        }
        if (!waited) {
            dependency_wait();
            waited = true;
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c = c0 + t + kChunkStride * u;
            const bool in_k = c < chunks;
#pragma unroll
            for (int nt = 0; nt < NT; ++nt)
#pragma unroll
                for (int v = 0; v < X; ++v)
                    // Coherent loads (not the read-only path, __ldg): with an early launch the
                    // kernel before wrote x while this one already ran (the wait made it visible).
                    xc[u][nt][v] = in_k && has_x[nt] ? __ldca(xrow[nt] + int64_t(c) * X + v) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < U; ++u) {
            // A round past K for the whole warp adds nothing: skipped, so the sequence of mma
            // (and the bits) is the same at every depth U (which M and GLU choose).
            if (c0 + kChunkStride * u >= chunks) break;
#pragma unroll
            for (int wi = 0; wi < W; ++wi) {
                uint32_t lo[V / 2], hi[V / 2];  // rows g and g + 8
                decode_chunk<BITS, T>(wc[u][wi][0], sc[u][wi][0], lo);
                decode_chunk<BITS, T>(wc[u][wi][1], sc[u][wi][1], hi);
#pragma unroll
                for (int s = 0; s < V / 4; ++s) {
                    const uint32_t af[4] = {lo[2 * s], hi[2 * s], lo[2 * s + 1], hi[2 * s + 1]};
#pragma unroll
                    for (int nt = 0; nt < NT; ++nt)
                        mma<T>(acc[wi][nt], af, word_of(xc[u][nt][s / 2], 2 * (s % 2)),
                               word_of(xc[u][nt][s / 2], 2 * (s % 2) + 1));
                }
            }
        }
    }

    if (!waited) dependency_wait();  // a warp with no chunk still writes y below
    // C fragment: lane (g, t) has (weight row g, x rows 8nt + 2t, + 1) in c0, c1 and row g + 8 in c2, c3.
#pragma unroll
    for (int wi = 0; wi < W; ++wi)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                partial[wi][warp][(8 * nt + 2 * t + (e & 1)) * kTileRows + g + 8 * (e >> 1)] = acc[wi][nt][e];
    __syncthreads();
    for (int i = threadIdx.x; i < kTileRows * kTileRows; i += kThreads) {
        const int m = i / kTileRows, r = i % kTileRows;
        if (m >= a.M || r >= rows) continue;
        float sum[W];
#pragma unroll
        for (int wi = 0; wi < W; ++wi) {
            sum[wi] = partial[wi][0][i];
            for (int w = 1; w < kWarps; ++w) sum[wi] += partial[wi][w][i];  // fixed order: any M, same bits
        }
        const int64_t n = n0 + r;
        float value = sum[0] + (a.bias ? to_float(a.bias[n]) : 0.0f);
        if constexpr (W == 2) {
            const float gate = round_to<T>(value);
            value = (a.silu ? silu(gate) : gelu_tanh(gate)) * round_to<T>(sum[1]);
        }
        if (a.y_f32) static_cast<float*>(out.y)[m * out.N + n] = value;
        else store_float(static_cast<T*>(out.y) + m * out.N + n, value);
    }
}

template <int BITS, int NT, class T>
void launch(const GemvArgs<T>& args, cudaStream_t stream) {
    int64_t tiles = 0;
    for (int s = 0; s < args.segments; ++s) tiles += (args.seg[s].N + kTileRows - 1) / kTileRows;
    const unsigned blocks = static_cast<unsigned>(tiles);
    if (args.up_codes)
        launch_early(quant_gemv_kernel<BITS, NT, 2, T>, blocks, kThreads, 0, stream, args);
    else
        launch_early(quant_gemv_kernel<BITS, NT, 1, T>, blocks, kThreads, 0, stream, args);
    VIDI_CUDA_CHECK_LAUNCH("linear (few rows)");
}

template <class T>
void launch_gemv(const GemvArgs<T>& args, int bits, cudaStream_t stream) {
    const bool two = args.M > 8;  // x rows 8..15: a second n-tile
    if (bits == 16)
        two ? launch<16, 2>(args, stream) : launch<16, 1>(args, stream);
    else if (bits == 8)
        two ? launch<8, 2>(args, stream) : launch<8, 1>(args, stream);
    else
        two ? launch<4, 2>(args, stream) : launch<4, 1>(args, stream);
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
    return M >= 1 && M <= max_rows && w.K % chunk == 0 && w.K <= INT32_MAX && w.group % chunk == 0 &&
           reinterpret_cast<uintptr_t>(w.codes) % 16 == 0 && aligned16(x);
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
    args.M = static_cast<int>(M);
    args.K = static_cast<int>(w.K);
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
    args.M = static_cast<int>(M);
    args.K = static_cast<int>(outs[0].w.K);
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
