// Shared by the attention kernels (attention.cu: tiles through shared memory for many query
// rows; attention_decode.cu: warps streaming keys for few rows): the problem with its split-K
// workspace and the visibility rules.
#pragma once

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {

// The most slices a key range is split into (the merge kernel keeps a weight per slice).
constexpr int kAttentionMaxSplits = 1024;

struct Problem {
    AttentionArgs a;
    int splits;
    float* part_o;   // [splits, KV, rows, hd] unnormalised outputs (splits > 1)
    float* part_ml;  // [splits, KV, rows, 2] running max and sum (splits > 1)
};

// The problem of `a` in `splits` slices whose partials go to `workspace`
// (attention_workspace_bytes: the outputs, then the running max and sum).
inline Problem split_problem(const AttentionArgs& a, int splits, void* workspace) {
    Problem pb{a, splits, nullptr, nullptr};
    if (splits > 1) {
        const size_t slots = size_t(splits) * a.KV * size_t(a.Tq) * (a.H / a.KV);
        pb.part_o = static_cast<float*>(workspace);
        pb.part_ml = pb.part_o + slots * a.hd;
    }
    return pb;
}

// The key interval [lo, end) that query positions pos_lo..pos_hi can see.
__host__ __device__ inline void visible_keys(const AttentionArgs& a, int64_t pos_lo, int64_t pos_hi, int64_t& lo,
                                             int64_t& end) {
    lo = 0;
    end = a.Tk;
    if (a.causal) end = pos_hi + 1 < a.Tk ? pos_hi + 1 : a.Tk;
    if (a.window > 0 && pos_lo - a.window > 0) lo = pos_lo - a.window;
    if (end < lo) end = lo;
}

__device__ inline bool visible(const AttentionArgs& a, int64_t pos, int64_t j) {
    return (!a.causal || j <= pos) && (a.window <= 0 || pos - j <= a.window);
}

// Stores the result v at out[idx] (T: the activations' type, a.act): v, or with `accumulate`
// out's value plus v rounded to T (what attention() followed by add_() gives).
template <class T>
__device__ inline void attention_out(const AttentionArgs& a, int64_t idx, float v) {
    T* out = static_cast<T*>(a.out) + idx;
    store_float(out, a.accumulate ? to_float(*out) + round_to<T>(v) : v);
}

// Whether the current device gives a block `bytes` of shared memory (its opt-in).
inline bool block_fits(size_t bytes) {
    int device = 0, optin = 0;
    VIDI_CUDA_CHECK(cudaGetDevice(&device));
    VIDI_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return bytes <= static_cast<size_t>(optin);
}

// How many blocks of `kernel` (threads a block, `smem` bytes of dynamic shared memory) one SM
// holds, its shared-memory opt-in set on the first call (once per kernel instance).
template <auto kernel>
int resident_blocks_of(int threads, size_t smem) {
    static const int blocks = [&] {
        VIDI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
        int n = 0;
        VIDI_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem));
        return n > 1 ? n : 1;
    }();
    return blocks;
}

// Value d of row `row` (of KV head kvh, slice `split`) of problem `a` (pb.a, or one row's problem
// of a step) once a block has merged its warps: the output, normalised by the sum, when the keys
// were one slice; else the slice's unnormalised partial in pb's workspace and, at d = 0, its max
// and sum, for merge_attention_splits.
template <class T>
__device__ inline void write_merged_row(const AttentionArgs& a, const Problem& pb, int kvh, int split, int64_t row,
                                        int d, float acc, float mm, float ll) {
    const int G = a.H / a.KV;
    if (pb.splits == 1) {
        const int64_t base = ((row / G) * a.H + int64_t(kvh) * G + row % G) * a.hd;
        attention_out<T>(a, base + d, ll > 0.0f ? acc / ll : 0.0f);
        return;
    }
    const int64_t slot = (int64_t(split) * a.KV + kvh) * (a.Tq * G) + row;
    pb.part_o[slot * a.hd + d] = acc;
    if (d == 0) {
        pb.part_ml[slot * 2] = mm;
        pb.part_ml[slot * 2 + 1] = ll;
    }
}

// Merges the slices' partials of pb (pb.splits > 1) into the output, adding into it with
// a.accumulate (attention.cu); every split-K kernel writes its partials in pb's layout.
void merge_attention_splits(const Problem& pb, cudaStream_t stream);

// Few rows (query, head pairs per KV head) over many keys: decoding and short prompts.
inline bool few_rows(const AttentionArgs& a) { return a.Tq * (a.H / a.KV) <= kDecodeMaxRows; }
// With `rows` (attention_step_rows), a block of grid z takes row z's problem.
void attention_decode(const Problem& pb, cudaStream_t stream, const StepRows* rows = nullptr);
// Slices of the key range for attention_decode on `sm_count` SMs.
int attention_decode_splits(const AttentionArgs& a, int sm_count);

// A decoding step's rows (a.step_rows) over 16-bit K/V on tensor cores, for cross_attention
// (attention_cross_step.cu): its split count (a function of the keys only) and the kernel,
// which writes pb's partials when pb.splits > 1.
int step_cross_attention_splits(const AttentionArgs& a, int sm_count);
void step_cross_attention(const Problem& pb, cudaStream_t stream);

}  // namespace vidi::cuda
