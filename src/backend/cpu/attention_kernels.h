// The two CPU attention kernels behind CpuBackend::attention (same contract, see
// backend.h; K/V may be f32 or bf16). Both stream over keys, so memory stays
// O(threads · Tk) at most, never [H, Tq, Tk].
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/backend.h"

namespace vidi::cpu {

struct AttentionShape {
    int64_t Tq, Tk, H, KVH, hd;
    int64_t rep() const { return H / KVH; }
};

// The visible key range [lo, hi] of a query at absolute position pos (empty if hi < lo).
inline void visible_keys(const AttentionParams& p, int64_t pos, int64_t Tk, int64_t* lo, int64_t* hi) {
    *lo = 0;
    *hi = Tk - 1;
    if (p.causal) *hi = std::min(*hi, pos);
    if (p.window > 0) *lo = std::max<int64_t>(0, pos - p.window);
}

inline float load(const float* p, int64_t i) { return p[i]; }
inline float load(const uint16_t* p, int64_t i) {  // bf16
    uint32_t u = static_cast<uint32_t>(p[i]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Few queries (decoding): one (query, KV group) per task, the group's query heads share
// each key/value row as it streams past. Memory-bound by design.
template <class KV>
void attention_rows(const float* q, const KV* k, const KV* v, float* out, const AttentionShape& s,
                    const AttentionParams& p, int threads);

// Many queries (prefill, vision/audio towers): per KV group, blocks of queries against
// chunks of keys with sgemm and an online (running-max) softmax.
template <class KV>
void attention_blocked(const float* q, const KV* k, const KV* v, float* out, const AttentionShape& s,
                       const AttentionParams& p, int threads);

}  // namespace vidi::cpu
