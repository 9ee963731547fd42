// Gemma2 decoder with Vidi's decomposed attention (SPEC.md §6).
//
// Text tokens attend to themselves (RoPE, causal, sliding window on even layers) and to
// each media stream (visual, audio) through cross-attention without RoPE or mask. Media
// tokens never see text: each one attends only to itself, so per layer its K/V can be
// computed once per video (MediaKV) and reused for every question and every step.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "io/config.h"
#include "model/weights.h"

namespace vidi::model {

// Media tokens go through the layers this many rows at a time (a GEMM of 4096 rows runs at
// the card's rate; the memory planner sizes the working set by it). Whole blocks of 4-bit keys.
constexpr int64_t kMediaKvChunk = 4096;
static_assert(kMediaKvChunk % kMediaKeyBlock == 0);

// Per-layer K/V of one media stream: k[l], v[l] are [T, KV, hd] on the backend, in the
// activation dtype or quantised as media_kv_format() says (int8, int4).
struct MediaKV {
    std::vector<QTensor> k, v;
    int64_t tokens = 0;
    size_t bytes() const;
};

// A decoding step as the backend recorded it (Backend::run_step): its inputs (the token id
// and its position, i32 [1] on the backend), its output and the media K/V it read.
struct RecordedStep {
    Tensor id, pos, logits;
    std::vector<const void*> media;  // every media K/V buffer's address, in order
    std::unique_ptr<StepRecording> recording;
};

// Per-layer K/V of the text so far (RoPE applied to k), with room for `capacity` tokens.
struct TextCache {
    std::vector<Tensor> k, v;  // [capacity, KV, hd]
    int64_t length = 0;
    int64_t capacity = 0;
    RecordedStep step;
};

class Gemma2 {
public:
    Gemma2(const io::ModelConfig& config, const WeightLoader& root);

    const io::LlmConfig& config() const { return cfg_; }

    // Runs the media self-update through the layers for tokens [T, D] (after
    // mm_rand_llm_norm, before the sqrt(D) scaling) and keeps each layer's K/V.
    // Tokens are independent of each other, so they go through in chunks of `chunk` rows.
    // kv_format bits 8 or 4: the K/V are kept quantised (media_kv_format).
    MediaKV encode_media(const Tensor& tokens, const QuantFormat& kv_format = {},
                         int64_t chunk = kMediaKvChunk) const;
    // The same in pieces, as the tokens arrive: room for `tokens` rows, then rows row0.. of it
    // (4-bit keys: row0 and the rows' count multiples of kMediaKeyBlock, bar the last rows).
    MediaKV new_media_kv(int64_t tokens, const QuantFormat& kv_format = {}) const;
    void encode_media_rows(MediaKV& kv, int64_t row0, const Tensor& tokens,
                           int64_t chunk = kMediaKvChunk) const;

    TextCache new_cache(int64_t capacity) const;

    // Appends `ids` to the cache and returns logits (host f32, after the final soft-cap)
    // for every new position ([T, V]) or only the last one ([1, V]).
    Tensor forward(const std::vector<int32_t>& ids, TextCache& cache, const std::vector<const MediaKV*>& media,
                   bool all_logits) const;
    // The same with the logits left on the backend's device, in f32 (Backend::logits; greedy
    // decoding reads only their top pick: Backend::top_picks).
    Tensor forward_on_device(const std::vector<int32_t>& ids, TextCache& cache,
                             const std::vector<const MediaKV*>& media, bool all_logits) const;
    Backend& backend() const { return be_; }

private:
    struct Layer {
        QTensor q, k, v, o, gate, up, down;
        Tensor norm_in, norm_post_attn, norm_pre_ff, norm_post_ff;
    };
    Tensor mlp(const Layer& L, const Tensor& h) const;
    // K and V projections of the normalised input h [n, D], as [n, KV, hd] (no RoPE).
    std::pair<Tensor, Tensor> key_value(const Layer& L, const Tensor& h) const;
    // Copies `rows` into the cache tensor starting at row0.
    void store_rows(const Tensor& cache, int64_t row0, const Tensor& rows) const;
    // The same for a media cache, quantising the rows first when the cache is quantised.
    void store_media_rows(const QTensor& cache, int64_t row0, const Tensor& rows, const QuantFormat& format) const;
    Tensor norm(const Tensor& x, const Tensor& w) const;
    // A residual stream (text x, media m) starts as the scaled embeddings converted to the
    // backend's residual_dtype(): f32 with bf16 activations (84 bf16 roundings of the running
    // sum were the largest part of the bf16 pipeline's error, bench/RESULTS.md), f16 in fp16
    // mode as the official model; the sub-layers still read and write the activation dtype.
    Tensor residual(const Tensor& a) const;
    // x += norm(y) with weight w (a residual update); returns the next sub-layer's input,
    // norm(x) with weight w_next.
    Tensor add_norm(Tensor& x, const Tensor& y, const Tensor& w, const Tensor& w_next) const;
    // One token through the layers as a recorded step (logits [1, V] on the device).
    Tensor decode_step(int32_t id, TextCache& cache, const std::vector<const MediaKV*>& media) const;
    // forward_on_device()'s ops, queued, for T tokens `ids` (i32 [T] on the backend) at
    // positions pos[0].. (i32 [1]). A step (T = 1) reads its position only from `pos` and
    // attends over the whole cache, so that its recording replays at every position; a
    // prompt attends over the rows 0..pos0+T-1 it fills.
    Tensor queue_forward(const Tensor& ids, const Tensor& pos, int64_t pos0, bool step, TextCache& cache,
                         const std::vector<const MediaKV*>& media, bool all_logits) const;

    io::LlmConfig cfg_;
    Backend& be_;
    std::vector<Layer> layers_;
    QTensor embed_, lm_head_;
    Tensor final_norm_;
    float embed_scale_;
};

}  // namespace vidi::model
