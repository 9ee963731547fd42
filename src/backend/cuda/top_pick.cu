// Greedy decoding's pick on the device: for each row of logits, the index of the largest value
// (the first one on ties, as torch.argmax) and its lead over the second largest, exactly as
// the host's top_pick() (backend.h) finds them in the f32 values of the same logits (f32, the
// LM head's output; or 16-bit). A decoding step
// then copies 8 bytes back instead of the vocabulary's logits (1 MB for Gemma's 256 000).
// One block per row: each thread scans its share in increasing index order, then the block
// merges the threads' (top, second, index) triples.
#include <cfloat>
#include <climits>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kThreads = 1024;

struct Top2 {
    float top = -INFINITY, second = -INFINITY;
    int id = INT_MAX;  // none yet

    // The host scan's step: a value larger than the top becomes it (NaNs never do).
    __device__ void see(float v, int i) {
        if (v > top) {
            second = top;
            top = v;
            id = i;
        } else if (v > second) {
            second = v;
        }
    }
};

// The pick over the union of two disjoint index sets: the larger top wins (the lower index on
// a tie), and the second is the largest of everything else.
__device__ inline Top2 merge(Top2 a, Top2 b) {
    if (b.top > a.top || (b.top == a.top && b.id < a.id)) {
        const Top2 t = a;
        a = b;
        b = t;
    }
    a.second = fmaxf(a.second, b.top);
    return a;
}

__device__ inline Top2 warp_merge(Top2 t) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        Top2 other;
        other.top = __shfl_down_sync(0xffffffffu, t.top, o);
        other.second = __shfl_down_sync(0xffffffffu, t.second, o);
        other.id = __shfl_down_sync(0xffffffffu, t.id, o);
        t = merge(t, other);
    }
    return t;
}

template <class T>
__global__ void __launch_bounds__(kThreads) top_pick_kernel(int32_t* ids, float* margins, const T* x, int64_t N,
                                                             bool vec) {
    __shared__ Top2 warps[kThreads / 32];
    const T* row = x + blockIdx.x * N;
    Top2 t;
    if (vec) {
        for (int64_t i = threadIdx.x * int64_t(kVec); i < N; i += int64_t(kThreads) * kVec) {
            float v[8];
            load8(row + i, v);
#pragma unroll
            for (int k = 0; k < 8; ++k) t.see(v[k], static_cast<int>(i + k));
        }
    } else {
        for (int64_t i = threadIdx.x; i < N; i += kThreads) t.see(to_float(row[i]), static_cast<int>(i));
    }
    t = warp_merge(t);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) warps[warp] = t;
    __syncthreads();
    if (warp != 0) return;
    t = warp_merge(warps[lane]);
    if (lane == 0) {
        ids[blockIdx.x] = t.id == INT_MAX ? 0 : t.id;  // no value above -inf: index 0, as the host
        margins[blockIdx.x] = t.top - t.second;
    }
}

}  // namespace

template <class T>
void top_pick(int32_t* ids, float* margins, const T* x, int64_t rows, int64_t N, cudaStream_t stream) {
    if (rows == 0 || N == 0) return;
    const bool vec = N % kVec == 0 && aligned16(x);
    top_pick_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(ids, margins, x, N, vec);
    VIDI_CUDA_CHECK_LAUNCH("top_picks");
}

template void top_pick<float>(int32_t*, float*, const float*, int64_t, int64_t, cudaStream_t);
template void top_pick<bf16>(int32_t*, float*, const bf16*, int64_t, int64_t, cudaStream_t);
template void top_pick<fp16>(int32_t*, float*, const fp16*, int64_t, int64_t, cudaStream_t);

}  // namespace vidi::cuda
