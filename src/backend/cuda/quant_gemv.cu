// Fused dequantise-and-multiply for few activation rows (decoding): y = x · dequant(w)ᵀ
// with int8 or int4 weights, reading each packed weight byte once. This case is memory
// bound, so the weight stream is all that matters; the math runs on tensor cores
// (mma.sync m16n8k16 bf16 -> f32) with the weights as the 16-row A operand and the (up to
// 8 per column tile) activation rows as the 8-column B operand ("swap AB").
//
// - Block: 16 weight rows, 8 warps splitting K between them (interleaved k-tiles of 64
//   values), then a shared-memory sum over the warps.
// - Thread (g = lane/4, t = lane%4) owns weight rows g and g+8 and values [16t, 16t+16) of
//   every k-tile: one 16-byte load (int8) or 8-byte load (int4) per row per tile, several
//   tiles in flight. A dot product does not care about the order of k, so the fragment's k
//   slots are mapped onto these contiguous values, and x is read in the same order (two
//   16-byte loads per row and tile, through L1: x is shared by every block).
// - Codes become bf16 exactly (|q| ≤ 127), the 4 mma k-steps of a tile accumulate, and the
//   tile's f32 partial is multiplied by its group's scale (groups are multiples of 64, so a
//   tile never straddles two).
#include <cuda_runtime.h>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kTileK = 64;  // values of one k-tile: 4 mma k-steps
constexpr int kRows = 16;   // weight rows per block (the mma's M)

struct GemvArgs {
    bf16* y;
    const bf16* x;
    const uint8_t* codes;
    const float* scales;
    const bf16* bias;
    int64_t M, N, K;
    int group;
};

__device__ inline void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Per thread, per row and k-tile: 16 codes. int8: 4 words of 4 values; int4: 2 words of 8.
template <int BITS>
struct Codes {
    static constexpr int kWords = BITS == 8 ? 4 : 2;
    uint32_t w[kWords];
};

template <int BITS>
__device__ inline Codes<BITS> load_codes(const uint8_t* p) {
    Codes<BITS> c;
    if constexpr (BITS == 8) {
        const uint4 v = __ldcs(reinterpret_cast<const uint4*>(p));  // streamed once: keep L1 for x
        c.w[0] = v.x, c.w[1] = v.y, c.w[2] = v.z, c.w[3] = v.w;
    } else {
        const uint2 v = __ldcs(reinterpret_cast<const uint2*>(p));
        c.w[0] = v.x, c.w[1] = v.y;
    }
    return c;
}

// The two bf16x2 words of values 4s..4s+3 of a thread's 16 codes: (4s, 4s+1), (4s+2, 4s+3).
template <int BITS>
__device__ inline void codes_bf16(const Codes<BITS>& c, int s, uint32_t& lo, uint32_t& hi) {
    if constexpr (BITS == 8) {
        float f[4];
        i8x4_to_float(c.w[s], f);
        lo = float2_to_bf16x2(f[0], f[1]);
        hi = float2_to_bf16x2(f[2], f[3]);
    } else {
        // Byte b holds values (b & 15) and (b >> 4), each q + 8. 0x4300 | n is the bf16 128 + n
        // (exact: ulp 1 in [128, 256)); subtracting 136 leaves q exactly.
        const uint32_t w = c.w[s >> 1] >> ((s & 1) * 16);
        const uint32_t p0 = (w & 0x0Fu) | ((w & 0xF0u) << 12) | 0x43004300u;
        const uint32_t p1 = ((w >> 8) & 0x0Fu) | ((w & 0xF000u) << 4) | 0x43004300u;
        constexpr uint32_t k136x2 = 0x43084308u;  // bf16 136.0 in both halves
        __nv_bfloat162 bias, h0, h1;
        memcpy(&bias, &k136x2, 4);
        memcpy(&h0, &p0, 4);
        memcpy(&h1, &p1, 4);
        h0 = __hsub2(h0, bias);
        h1 = __hsub2(h1, bias);
        memcpy(&lo, &h0, 4);
        memcpy(&hi, &h1, 4);
    }
}

// MT column tiles of 8 activation rows each (M ≤ 8·MT).
template <int BITS, int MT>
__global__ void __launch_bounds__(kThreads) quant_gemv_kernel(GemvArgs a) {
    constexpr int kUnroll = BITS == 8 ? 4 : 8;  // k-tiles in flight per warp
    constexpr int kCodeBytes = BITS == 8 ? 16 : 8;
    __shared__ float red[kWarps][MT * 8][kRows];

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int64_t n0 = int64_t(blockIdx.x) * kRows;
    const int64_t rA = n0 + g, rB = n0 + g + 8;
    const bool okA = rA < a.N, okB = rB < a.N;
    const int64_t row_bytes = BITS == 8 ? a.K : a.K / 2;
    const int64_t groups = a.K / a.group;
    const int tiles_per_group = a.group / kTileK;
    const uint8_t* wA = a.codes + (okA ? rA : 0) * row_bytes + t * kCodeBytes;
    const uint8_t* wB = a.codes + (okB ? rB : 0) * row_bytes + t * kCodeBytes;
    const float* sA = a.scales + (okA ? rA : 0) * groups;
    const float* sB = a.scales + (okB ? rB : 0) * groups;
    const int64_t ktiles = a.K / kTileK;

    float acc[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[mt][i] = 0.0f;

    for (int64_t kt0 = warp; kt0 < ktiles; kt0 += int64_t(kWarps) * kUnroll) {
        Codes<BITS> cA[kUnroll], cB[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t kt = kt0 + int64_t(u) * kWarps;
            cA[u] = Codes<BITS>{};
            cB[u] = Codes<BITS>{};
            if (kt < ktiles) {
                if (okA) cA[u] = load_codes<BITS>(wA + kt * (kTileK * BITS / 8));
                if (okB) cB[u] = load_codes<BITS>(wB + kt * (kTileK * BITS / 8));
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int64_t kt = kt0 + int64_t(u) * kWarps;
            if (kt >= ktiles) break;  // warp-uniform
            const int64_t k0 = kt * kTileK + t * 16;
            uint32_t afrag[4][4];  // per k-step: rows g / g+8, values (4s, 4s+1) / (4s+2, 4s+3)
#pragma unroll
            for (int s = 0; s < 4; ++s) {
                codes_bf16<BITS>(cA[u], s, afrag[s][0], afrag[s][2]);
                codes_bf16<BITS>(cB[u], s, afrag[s][1], afrag[s][3]);
            }
            const float scA = okA ? __ldg(sA + kt / tiles_per_group) : 0.0f;
            const float scB = okB ? __ldg(sB + kt / tiles_per_group) : 0.0f;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                const int64_t m = int64_t(mt) * 8 + g;  // this thread's B column: activation row
                uint4 x0 = make_uint4(0, 0, 0, 0), x1 = make_uint4(0, 0, 0, 0);
                if (m < a.M) {
                    const uint4* xp = reinterpret_cast<const uint4*>(a.x + m * a.K + k0);
                    x0 = __ldg(xp);
                    x1 = __ldg(xp + 1);
                }
                const uint32_t xw[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
                float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                for (int s = 0; s < 4; ++s) mma_bf16(d, afrag[s], xw[2 * s], xw[2 * s + 1]);
                acc[mt][0] = fmaf(d[0], scA, acc[mt][0]);
                acc[mt][1] = fmaf(d[1], scA, acc[mt][1]);
                acc[mt][2] = fmaf(d[2], scB, acc[mt][2]);
                acc[mt][3] = fmaf(d[3], scB, acc[mt][3]);
            }
        }
    }

    // D fragment: d0, d1 at (row g, columns 2t, 2t+1), d2, d3 at (row g+8, same columns).
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int i = 0; i < 4; ++i) red[warp][mt * 8 + 2 * t + (i & 1)][g + (i >> 1) * 8] = acc[mt][i];
    __syncthreads();
    for (int idx = threadIdx.x; idx < MT * 8 * kRows; idx += kThreads) {
        const int m = idx / kRows, r = idx % kRows;
        const int64_t n = n0 + r;
        if (m >= a.M || n >= a.N) continue;
        float sum = 0.0f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w) sum += red[w][m][r];
        if (a.bias) sum += __bfloat162float(a.bias[n]);
        a.y[int64_t(m) * a.N + n] = __float2bfloat16_rn(sum);
    }
}

template <int BITS>
void launch(const GemvArgs& args, cudaStream_t stream) {
    const unsigned blocks = static_cast<unsigned>((args.N + kRows - 1) / kRows);
    if (args.M <= 8)
        quant_gemv_kernel<BITS, 1><<<blocks, kThreads, 0, stream>>>(args);
    else
        quant_gemv_kernel<BITS, 2><<<blocks, kThreads, 0, stream>>>(args);
    VIDI_CUDA_CHECK_LAUNCH("quantised linear (fused)");
}

}  // namespace

bool quant_gemv_supported(const QuantView& w, const bf16* x, int64_t M) {
    const int code_align = w.bits == 8 ? 16 : 8;
    return M >= 1 && M <= kQuantGemvMaxRows && (w.bits == 8 || w.bits == 4) && w.K % kTileK == 0 &&
           w.group % kTileK == 0 && reinterpret_cast<uintptr_t>(w.codes) % code_align == 0 && aligned16(x);
}

void quant_gemv(bf16* y, const bf16* x, const QuantView& w, const bf16* bias, int64_t M, int64_t N,
                cudaStream_t stream) {
    if (M == 0 || N == 0) return;
    const GemvArgs args{y, x, static_cast<const uint8_t*>(w.codes), w.scales, bias, M, N, w.K, w.group};
    if (w.bits == 8)
        launch<8>(args, stream);
    else
        launch<4>(args, stream);
}

}  // namespace vidi::cuda
