// Shared by the attention kernels (attention.cu: tiles through shared memory for many query
// rows; attention_decode.cu: warps streaming keys for few rows): the problem with its split-K
// workspace and the visibility rules.
#pragma once

#include "backend/cuda/common.cuh"
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

// Merges the slices' partials of pb (pb.splits > 1) into the output, adding into it with
// a.accumulate (attention.cu); every split-K kernel writes its partials in pb's layout.
void merge_attention_splits(const Problem& pb, cudaStream_t stream);

// Few rows (query, head pairs per KV head) over many keys: decoding and short prompts.
inline bool few_rows(const AttentionArgs& a) { return a.Tq * (a.H / a.KV) <= kDecodeMaxRows; }
// With `rows` (attention_step_rows), a block of grid z takes row z's problem.
void attention_decode(const Problem& pb, cudaStream_t stream, const StepRows* rows = nullptr);
// Slices of the key range for attention_decode on `sm_count` SMs.
int attention_decode_splits(const AttentionArgs& a, int sm_count);

}  // namespace vidi::cuda
