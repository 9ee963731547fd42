// The dense attention path's own kernels (CudaBackend::attention routes unmasked attention
// of many query rows here: the towers). The scores and the weighted sum are batched cuBLAS
// GEMMs on tensor cores; between them a row softmax turns the f32 scores into 16-bit
// probabilities (the activations' type) in place.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

// One thread per problem: problem g = sequence g / H, head g % H (KV head (g % H) / (H / KV)).
__global__ void fill_pointers_kernel(AttentionArgs a, float* scores, int64_t first, int count, void** table) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= count) return;
    const int64_t g = first + e, seq = g / a.H;
    const int h = static_cast<int>(g % a.H), kvh = h / (a.H / a.KV);
    const int64_t q_off = seq * a.Tq * a.H * a.hd + int64_t(h) * a.hd;
    const int64_t kv_off = seq * a.Tk * a.KV * a.hd + int64_t(kvh) * a.hd;
    float* s = scores + int64_t(e) * a.Tq * a.Tk;
    auto at = [](const void* base, int64_t off) {  // 2-byte elements
        return const_cast<uint16_t*>(static_cast<const uint16_t*>(base) + off);
    };
    table[0 * count + e] = at(a.q, q_off);
    table[1 * count + e] = at(a.k, kv_off);
    table[2 * count + e] = s;
    table[3 * count + e] = s;
    table[4 * count + e] = at(a.v, kv_off);
    table[5 * count + e] = at(a.out, q_off);
}

__device__ inline float capped(float s, float cap) { return cap > 0.0f ? soft_cap(s, cap) : s; }

// One warp per row: a pass for the running max and sum (online), a pass that writes the
// probabilities. Row r's T output starts where its f32 scores start; a lane writes only
// bytes that the warp has already read (__syncwarp between the read and the write).
template <class T>
__global__ void softmax_rows_kernel(float* s, int64_t rows, int64_t cols, float cap) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
    for (int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
        float* row = s + r * cols;
        float m = -INFINITY, l = 0.0f;
        for (int64_t j = lane; j < cols; j += 32) {
            const float x = capped(row[j], cap);
            const float m2 = fmaxf(m, x);
            l = l * __expf(m - m2) + __expf(x - m2);
            m = m2;
        }
        const float M = warp_max(m);
        l = warp_sum(m == -INFINITY ? 0.0f : l * __expf(m - M));
        const float inv = 1.0f / l;
        T* p = reinterpret_cast<T*>(row);
        for (int64_t base = 0; base < cols; base += 32) {
            const int64_t j = base + lane;
            const float x = j < cols ? capped(row[j], cap) : 0.0f;
            __syncwarp();
            if (j < cols) store_float(p + j, __expf(x - M) * inv);
        }
    }
}

}  // namespace

void dense_attention_pointers(const AttentionArgs& a, float* scores, int64_t first, int count, void** table,
                              cudaStream_t stream) {
    fill_pointers_kernel<<<(count + 127) / 128, 128, 0, stream>>>(a, scores, first, count, table);
    VIDI_CUDA_CHECK_LAUNCH("fill_pointers");
}

template <class T>
void softmax_rows_inplace(float* s, int64_t rows, int64_t cols, float softcap, cudaStream_t stream) {
    constexpr int kThreads = 256;
    softmax_rows_kernel<T><<<grid_for(rows * 32, kThreads), kThreads, 0, stream>>>(s, rows, cols, softcap);
    VIDI_CUDA_CHECK_LAUNCH("softmax_rows");
}

template void softmax_rows_inplace<bf16>(float*, int64_t, int64_t, float, cudaStream_t);
template void softmax_rows_inplace<fp16>(float*, int64_t, int64_t, float, cudaStream_t);

}  // namespace vidi::cuda
