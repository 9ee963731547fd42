// The two CPU attention kernels behind CpuBackend::attention (same contract, see
// backend.h; K/V may be f32, bf16 or quantised, read through KvRows). Both stream over keys,
// so memory stays O(threads · Tk) at most, never [H, Tq, Tk].
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>

#include "backend/backend.h"
#include "core/quantize.h"

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

// Keys or values [Tk, KV, hd] as the kernels read them: row (j, g) — token j, KV head g — as
// hd floats. f32 rows are read in place; bf16 rows are widened and quantised ones (media K/V)
// dequantised into the caller's scratch as they stream past, so no f32 copy of a cache exists.
class KvRows {
public:
    explicit KvRows(const QTensor& t);
    // f32 storage: its base (row (j, g) at (j·KV + g)·hd), else null.
    const float* f32() const { return f32_; }
    // Row (j, g): in place for f32, else converted into scratch (hd floats).
    const float* row(int64_t j, int64_t g, float* scratch) const {
        const int64_t r = j * kv_ + g;
        if (f32_) return f32_ + r * hd_;
        if (quant_) quant_->row(r, scratch);
        else convert_to_f32(bf16_ + r * hd_, DType::bf16, scratch, static_cast<size_t>(hd_));
        return scratch;
    }

private:
    const float* f32_ = nullptr;
    const uint16_t* bf16_ = nullptr;
    std::optional<DequantRows> quant_;
    int64_t kv_, hd_;
};

// Few queries (decoding): one (query, KV group) per task, the group's query heads share
// each key/value row as it streams past. Memory-bound by design.
void attention_rows(const float* q, const KvRows& k, const KvRows& v, float* out, const AttentionShape& s,
                    const AttentionParams& p, int threads);

// Many queries (prefill, vision/audio towers): per KV group, blocks of queries against
// chunks of keys with sgemm and an online (running-max) softmax.
void attention_blocked(const float* q, const KvRows& k, const KvRows& v, float* out, const AttentionShape& s,
                       const AttentionParams& p, int threads);

}  // namespace vidi::cpu
