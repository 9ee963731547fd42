// Element-wise kernels on 16-bit floats (bf16 or fp16; the unary ones also on f32: logits, the
// positional MLPs) with f32 math. Each kernel walks the tensor in vectors of 8 elements (one
// 16-byte access, two for f32) when every pointer is 16-byte aligned, then finishes the tail
// (or everything, for unaligned views) one element at a time.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kThreads = 256;

struct Scale {
    float s;
    __device__ float operator()(float x) const { return x * s; }
};
struct GeluTanh {
    __device__ float operator()(float x) const { return gelu_tanh(x); }
};
struct GeluErf {
    __device__ float operator()(float x) const { return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f)); }
};
struct Softcap {
    float cap, inv_cap;
    __device__ float operator()(float x) const { return cap * tanhf(x * inv_cap); }
};
struct Add {
    __device__ float operator()(float a, float b) const { return a + b; }
};
struct GegluOp {
    __device__ float operator()(float gate, float up) const { return GeluTanh{}(gate)*up; }
};
struct SwigluOp {
    __device__ float operator()(float gate, float up) const { return silu(gate) * up; }
};

template <class T, class Op>
__global__ void unary_kernel(T* x, int64_t n, Op op, bool vec) {
    const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    int64_t done = 0;
    if (vec) {
        const int64_t n8 = n / kVec;
        for (int64_t i = tid; i < n8; i += stride) {
            float f[8];
            load8(x + i * kVec, f);
#pragma unroll
            for (int k = 0; k < 8; ++k) f[k] = op(f[k]);
            store8(x + i * kVec, f);
        }
        done = n8 * kVec;
    }
    for (int64_t i = done + tid; i < n; i += stride) store_float(x + i, op(to_float(x[i])));
}

// out[i] = op(a[i], b[i]); out may be a.
template <class T, class Op>
__global__ void binary_kernel(T* out, const T* a, const T* b, int64_t n, Op op, bool vec) {
    const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    int64_t done = 0;
    if (vec) {
        const int64_t n8 = n / kVec;
        for (int64_t i = tid; i < n8; i += stride) {
            float fa[8], fb[8];
            load8(a + i * kVec, fa);
            load8(b + i * kVec, fb);
#pragma unroll
            for (int k = 0; k < 8; ++k) fa[k] = op(fa[k], fb[k]);
            store8(out + i * kVec, fa);
        }
        done = n8 * kVec;
    }
    for (int64_t i = done + tid; i < n; i += stride)
        store_float(out + i, op(to_float(a[i]), to_float(b[i])));
}

template <class T, class Op>
void launch_unary(T* x, int64_t n, Op op, cudaStream_t stream) {
    if (n == 0) return;
    unary_kernel<<<grid_for(n / kVec + 1, kThreads), kThreads, 0, stream>>>(x, n, op, aligned16(x));
    VIDI_CUDA_CHECK_LAUNCH("unary");
}

// x[r, :] += y[yr(r), :] for the rows r of x viewed as [xs0, xs1, xs2, D]; `vec` when D is a
// multiple of 8 and both tensors are 16-byte aligned (so every row starts aligned).
template <class T>
__global__ void add_broadcast_kernel(T* x, const T* y, int64_t xs1, int64_t xs2, int64_t ys0, int64_t ys1,
                                     int64_t ys2, int64_t D, int64_t n, bool vec) {
    const int64_t tid = blockIdx.x * int64_t(blockDim.x) + threadIdx.x, stride = int64_t(gridDim.x) * blockDim.x;
    const int step = vec ? kVec : 1;
    for (int64_t e = tid * step; e < n; e += stride * step) {
        const int64_t r = e / D, d = e % D;
        const int64_t a = r / (xs1 * xs2), b = (r / xs2) % xs1, c = r % xs2;
        const int64_t yr = ((ys0 == 1 ? 0 : a) * ys1 + (ys1 == 1 ? 0 : b)) * ys2 + (ys2 == 1 ? 0 : c);
        const T* yp = y + yr * D + d;
        if (vec) {
            float fx[8], fy[8];
            load8(x + e, fx);
            load8(yp, fy);
#pragma unroll
            for (int k = 0; k < 8; ++k) fx[k] += fy[k];
            store8(x + e, fx);
        } else {
            store_float(x + e, to_float(x[e]) + to_float(*yp));
        }
    }
}

}  // namespace

template <class T>
void scale_inplace(T* x, int64_t n, float s, cudaStream_t stream) {
    launch_unary(x, n, Scale{s}, stream);
}

template <class T>
void gelu_inplace(T* x, int64_t n, bool tanh_form, cudaStream_t stream) {
    if (tanh_form)
        launch_unary(x, n, GeluTanh{}, stream);
    else
        launch_unary(x, n, GeluErf{}, stream);
}

template <class T>
void softcap_inplace(T* x, int64_t n, float cap, cudaStream_t stream) {
    launch_unary(x, n, Softcap{cap, 1.0f / cap}, stream);
}

template <class T>
void add_inplace(T* x, const T* y, int64_t n, cudaStream_t stream) {
    if (n == 0) return;
    binary_kernel<<<grid_for(n / kVec + 1, kThreads), kThreads, 0, stream>>>(x, x, y, n, Add{},
                                                                             aligned16(x) && aligned16(y));
    VIDI_CUDA_CHECK_LAUNCH("add_");
}

template <class T>
void glu(T* out, const T* gate, const T* up, int64_t n, bool silu, cudaStream_t stream) {
    if (n == 0) return;
    const bool vec = aligned16(out) && aligned16(gate) && aligned16(up);
    const dim3 grid = grid_for(n / kVec + 1, kThreads);
    if (silu) binary_kernel<<<grid, kThreads, 0, stream>>>(out, gate, up, n, SwigluOp{}, vec);
    else binary_kernel<<<grid, kThreads, 0, stream>>>(out, gate, up, n, GegluOp{}, vec);
    VIDI_CUDA_CHECK_LAUNCH("glu");
}

template <class T>
void add_broadcast_inplace(T* x, const T* y, const int64_t xs[3], const int64_t ys[3], int64_t D,
                           cudaStream_t stream) {
    const int64_t n = xs[0] * xs[1] * xs[2] * D;
    if (n == 0) return;
    const bool vec = D % kVec == 0 && aligned16(x) && aligned16(y);
    add_broadcast_kernel<<<grid_for(vec ? n / kVec : n, kThreads), kThreads, 0, stream>>>(
        x, y, xs[1], xs[2], ys[0], ys[1], ys[2], D, n, vec);
    VIDI_CUDA_CHECK_LAUNCH("add_broadcast_");
}

#define VIDI_UNARY(T)                                                        \
    template void scale_inplace<T>(T*, int64_t, float, cudaStream_t);       \
    template void gelu_inplace<T>(T*, int64_t, bool, cudaStream_t);        \
    template void softcap_inplace<T>(T*, int64_t, float, cudaStream_t);
#define VIDI_BINARY(T)                                                               \
    template void add_inplace<T>(T*, const T*, int64_t, cudaStream_t);              \
    template void glu<T>(T*, const T*, const T*, int64_t, bool, cudaStream_t);      \
    template void add_broadcast_inplace<T>(T*, const T*, const int64_t[3], const int64_t[3], int64_t, \
                                           cudaStream_t);
VIDI_UNARY(bf16)
VIDI_UNARY(fp16)
VIDI_UNARY(float)
VIDI_BINARY(bf16)
VIDI_BINARY(fp16)

}  // namespace vidi::cuda
