// Argument checks and pointer helpers shared by CudaBackend's op files (cuda_ops.cpp,
// attention_ops.cpp, quant_ops.cpp): each failure is a vidi::Error naming the op and tensor.
#pragma once

#include <cstdint>

#include "backend/cuda/kernels.h"
#include "vidi/error.h"
#include "vidi/tensor.h"

namespace vidi::cuda {

// t is a tensor of `dtype` on the GPU (the activation dtype, or f32 where an op takes it).
inline void require_dtype(const Tensor& t, DType dtype, const char* op, const char* what) {
    VIDI_CHECK(t.defined(), op, ": ", what, " is undefined");
    VIDI_CHECK(t.device() == Device::cuda, op, ": ", what, " ", t.describe(),
               " is in host memory (use upload()/weight() first)");
    VIDI_CHECK(t.dtype() == dtype, op, ": ", what, " must be ", dtype_name(dtype), " on the GPU, got ", t.describe());
}

// A GEMM's bias argument: none where the tensor is undefined.
inline const void* bias_or_null(const Tensor& bias) { return bias.defined() ? bias.raw() : nullptr; }

// Calls f.template operator()<T>() with T the C++ type of dtype: bf16 or fp16 (f16), and with
// kF32 also float. Ops templated on the element type dispatch through it.
template <bool kF32 = false, class F>
decltype(auto) with_type(DType dtype, F&& f) {
    if (dtype == DType::f16) return f.template operator()<fp16>();
    if constexpr (kF32)
        if (dtype == DType::f32) return f.template operator()<float>();
    VIDI_CHECK(dtype == DType::bf16, "CUDA backend: ", dtype_name(dtype), " is not a compute dtype here");
    return f.template operator()<bf16>();
}

inline void require_rank(const Tensor& t, int rank, const char* op, const char* what) {
    VIDI_CHECK(t.rank() == rank, op, ": ", what, " must have rank ", rank, ", got ", t.describe());
}

template <class T>
T* ptr(const Tensor& t) {
    return static_cast<T*>(t.raw());
}

// A position the kernel reads as it runs (a recorded step's): i32 [1] on the GPU.
inline const int32_t* step_pos_ptr(const Tensor& pos, const char* op) {
    VIDI_CHECK(pos.defined() && pos.device() == Device::cuda && pos.dtype() == DType::i32 && pos.numel() == 1, op,
               ": the position must be i32 [1] on the GPU, got ", pos.describe());
    return static_cast<const int32_t*>(pos.raw());
}

// An op's output shape: its input's with the last dimension replaced (linear and the like).
inline Shape with_last(Shape s, int64_t last) {
    s.back() = last;
    return s;
}

}  // namespace vidi::cuda
