// Tensor-core building blocks shared by the attention kernels (attention_flash.cu,
// attention_cross.cu): mma.sync m16n8k16 on 16-bit operands with f32 accumulation, and
// ldmatrix loads of its fragments from shared memory.
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

using u16 = uint16_t;  // one element of T, as ldmatrix and the copies see it
__device__ inline uint32_t pair_at(const u16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// 8×8 matrices of 16-bit values from shared memory (row i of matrix j at the address of lane 8j + i),
// as is or transposed: lane (g, t) receives row g, columns 2t and 2t+1 of each.
__device__ inline uint32_t smem_addr(const u16* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
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

}  // namespace vidi::cuda
