// Tensor-core building blocks shared by the attention kernels (attention_flash.cu,
// attention_cross.cu, attention_cross_step.cu): mma.sync m16n8k16 on 16-bit operands with f32
// accumulation, ldmatrix loads of its fragments from shared memory, and the online softmax of
// a tile of scores.
#pragma once

#include <cstdint>
#include <type_traits>

#include "backend/cuda/common.cuh"

namespace vidi::cuda {

// c += a · b for one 16×8 tile of T operands (mma fragment layouts: PTX ISA, "mma.m16n8k16").
template <class T>
__device__ inline void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    if constexpr (std::is_same_v<T, bf16>)
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
            "{%0,%1,%2,%3};\n"
            : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// c += a · b for one 16×8 tile over 8 of k (m16n8k8): a0 holds row g's columns 2t, 2t + 1, a1
// row g + 8's (the first two registers of m16n8k16's A), b0 the keys' half of its B. A head dim of
// 72 ends in one such step instead of a k16 step over 8 zero dims.
template <class T>
__device__ inline void mma_k8(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
    if constexpr (std::is_same_v<T, bf16>)
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(b0));
    else
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a0), "r"(a1), "r"(b0));
}

using u16 = uint16_t;  // one element of T, as ldmatrix and the copies see it
__device__ inline uint32_t pair_at(const u16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// 8×8 matrices of 16-bit values from shared memory (row i of matrix j at the address of lane 8j + i),
// as is or transposed: lane (g, t) receives row g, columns 2t and 2t+1 of each.
__device__ inline uint32_t smem_addr(const u16* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
__device__ inline void ldmatrix_x1(uint32_t& r0, const u16* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r0) : "r"(smem_addr(row)));
}
__device__ inline void ldmatrix_x2(uint32_t& r0, uint32_t& r1, const u16* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(smem_addr(row)));
}
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const u16* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row)));
}
__device__ inline void ldmatrix_x2_trans(uint32_t& r0, uint32_t& r1, const u16* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r0), "=r"(r1)
                 : "r"(smem_addr(row)));
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const u16* row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(row)));
}

// The outputs of the thread's two rows (g: elements 0, 1; g + 8: 2, 3) times their factors.
template <int NB>
__device__ inline void rescale_rows(float (&o)[NB][4], const float (&alpha)[2]) {
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
        o[nb][0] *= alpha[0];
        o[nb][1] *= alpha[0];
        o[nb][2] *= alpha[1];
        o[nb][3] *= alpha[1];
    }
}

// One tile of raw scores s (NS blocks of 8 keys in mma's C layout: lane (g, t) holds rows g and
// g + 8, keys 8·nb + 2t and + 1) through the online softmax of flash attention: scaled,
// soft-capped, keys from Tk on masked; the thread's two rows' running max m and sum l and their
// outputs o rescaled to the new max (shared by the 4 threads of a row; 0 on the first tile,
// where m = -inf and the tile has a key); s left holding the tile's probabilities.
template <int NS, int NB>
__device__ inline void softmax_scores(float (&s)[NS][4], int64_t k0, int t, float scale, float softcap, int64_t Tk,
                                      float (&m)[2], float (&l)[2], float (&o)[NB][4]) {
    float mx[2] = {m[0], m[1]};
    const bool partial = k0 + NS * 8 > Tk;  // only the last tile has keys past the end
#pragma unroll
    for (int nb = 0; nb < NS; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            float x = s[nb][e] * scale;
            if (softcap > 0.0f) x = soft_cap(x, softcap);
            if (partial && k0 + nb * 8 + 2 * t + (e & 1) >= Tk) x = -INFINITY;
            s[nb][e] = x;
            mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        alpha[r] = __expf(m[r] - mx[r]);
        m[r] = mx[r];
        l[r] *= alpha[r];
    }
    rescale_rows(o, alpha);
#pragma unroll
    for (int nb = 0; nb < NS; ++nb) {
        s[nb][0] = __expf(s[nb][0] - m[0]);
        s[nb][1] = __expf(s[nb][1] - m[0]);
        s[nb][2] = __expf(s[nb][2] - m[1]);
        s[nb][3] = __expf(s[nb][3] - m[1]);
        l[0] += s[nb][0] + s[nb][1];
        l[1] += s[nb][2] + s[nb][3];
    }
}

// softmax_scores, then the probabilities as the A fragments of P·V in steps of 16 keys (keys
// 16·kk.. are blocks 2kk, 2kk + 1).
template <class T, int NS, int NB>
__device__ inline void softmax_tile(float (&s)[NS][4], int64_t k0, int t, float scale, float softcap, int64_t Tk,
                                    float (&m)[2], float (&l)[2], float (&o)[NB][4], uint32_t (&pf)[NS / 2][4]) {
    softmax_scores(s, k0, t, scale, softcap, Tk, m, l, o);
#pragma unroll
    for (int nb = 0; nb < NS; ++nb) {
        pf[nb / 2][(nb % 2) * 2 + 0] = float2_to_pair<T>(s[nb][0], s[nb][1]);
        pf[nb / 2][(nb % 2) * 2 + 1] = float2_to_pair<T>(s[nb][2], s[nb][3]);
    }
}

// 2^x on the special-function unit (what __expf uses after scaling x by log2 e).
__device__ inline float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// softmax_tile without a soft-cap, in fewer instructions a score: the running max m is kept in
// raw scores (a positive scale keeps their order), and each probability is
// 2^(s·scale_log2 − m·scale_log2) with scale_log2 = scale · log2 e: one multiply-add and the
// 2^x, where softmax_tile scales, subtracts and scales again. The same probabilities up to the
// last bits. The towers' unmasked attention (attention_flash.cu) takes it.
template <class T, int NS, int NB>
__device__ inline void softmax_tile_exp2(float (&s)[NS][4], int64_t k0, int t, float scale_log2, int64_t Tk,
                                         float (&m)[2], float (&l)[2], float (&o)[NB][4],
                                         uint32_t (&pf)[NS / 2][4]) {
    float mx[2] = {m[0], m[1]};
    if (k0 + NS * 8 > Tk) {  // only the last tile has keys past the end
#pragma unroll
        for (int nb = 0; nb < NS; ++nb)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (k0 + nb * 8 + 2 * t + (e & 1) >= Tk) s[nb][e] = -INFINITY;
    }
#pragma unroll
    for (int nb = 0; nb < NS; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) mx[e >> 1] = fmaxf(mx[e >> 1], s[nb][e]);
    float alpha[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
        mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
        alpha[r] = ex2((m[r] - mx[r]) * scale_log2);  // 0 on the first tile (m = -inf)
        m[r] = mx[r];
        l[r] *= alpha[r];
        base[r] = -mx[r] * scale_log2;
    }
    rescale_rows(o, alpha);
#pragma unroll
    for (int nb = 0; nb < NS; ++nb) {
        s[nb][0] = ex2(fmaf(s[nb][0], scale_log2, base[0]));
        s[nb][1] = ex2(fmaf(s[nb][1], scale_log2, base[0]));
        s[nb][2] = ex2(fmaf(s[nb][2], scale_log2, base[1]));
        s[nb][3] = ex2(fmaf(s[nb][3], scale_log2, base[1]));
        l[0] += s[nb][0] + s[nb][1];
        l[1] += s[nb][2] + s[nb][3];
        pf[nb / 2][(nb % 2) * 2 + 0] = float2_to_pair<T>(s[nb][0], s[nb][1]);
        pf[nb / 2][(nb % 2) * 2 + 1] = float2_to_pair<T>(s[nb][2], s[nb][3]);
    }
}

}  // namespace vidi::cuda
