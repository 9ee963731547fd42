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

// The most sequences one batched decoding step takes (Gemma2::decode_rows): the backends'
// few-row linears compute up to this many rows each as if alone.
constexpr int64_t kMaxStepRows = 16;

// Media tokens go through the layers this many rows at a time (a GEMM of 4096 rows runs at
// the card's rate; the memory planner sizes the working set by it).
constexpr int64_t kMediaKvChunk = 4096;

// Per-layer K/V of one media stream: k[l], v[l] are [T, KV, hd] on the backend, in the
// activation dtype or int8 with one scale per (token, head).
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

// A decoding step of several sequences as the backend recorded it (Gemma2::decode_rows):
// inputs i32 [B] (token ids, positions), logits [B, V], and the caches it was recorded for.
struct RecordedRowsStep {
    RecordedStep step;
    std::vector<const void*> caches;  // each row's first K cache buffer, in row order
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
    // kv_format int8: the K/V are kept in 8 bits (one scale per token and head).
    MediaKV encode_media(const Tensor& tokens, const QuantFormat& kv_format = {},
                         int64_t chunk = kMediaKvChunk) const;
    // The same in pieces, as the tokens arrive: room for `tokens` rows, then rows row0.. of it.
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

    // Several prompts prefilled together: prompt p appended to *caches[p]; returns each prompt's
    // last logits ([1, V] on the device, f32). Each prompt gets the bits forward_on_device gives
    // it alone (its linears and its text attention are its own); the media's cross-attention
    // takes every prompt's queries at once, reading the media K/V once.
    std::vector<Tensor> prefill_rows(const std::vector<std::vector<int32_t>>& prompts,
                                     const std::vector<TextCache*>& caches,
                                     const std::vector<const MediaKV*>& media) const;

    // One decoding step of B sequences at once (a batch, B ≤ 16): row b appends ids[b] to
    // *caches[b]; returns the logits [B, V] on the device (f32). Every op gives a row the bits
    // the one-row step (forward_on_device of that token) gives it, and the weights and the
    // media K/V are read once for all rows. The step is recorded into `rec` and replayed while
    // the rows' caches are the same; another composition records anew.
    Tensor decode_rows(const std::vector<int32_t>& ids, const std::vector<TextCache*>& caches,
                       const std::vector<const MediaKV*>& media, RecordedRowsStep& rec) const;

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
    // The same for a media cache, quantising the rows first when the cache is 8-bit.
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
    // decode_rows()'s ops, queued: ids and positions i32 [B] on the backend.
    Tensor queue_rows(const Tensor& ids, const Tensor& pos, const std::vector<TextCache*>& caches,
                      const std::vector<const MediaKV*>& media) const;
    // The addresses of every media K/V buffer a step reads (a recording is tied to them).
    static std::vector<const void*> media_buffers(const std::vector<const MediaKV*>& media);
    // The text's own attention parameters (causal; the window is set per layer).
    AttentionParams self_params() const;
    // Layer l's attention of the queries q [R, H, hd] (independent rows, before RoPE) to every
    // media stream, the streams' outputs summed (Backend::cross_attention: each row's bits do
    // not depend on the others); undefined without media.
    Tensor media_attention(const Tensor& q, int l, const std::vector<const MediaKV*>& media) const;

    io::LlmConfig cfg_;
    Backend& be_;
    std::vector<Layer> layers_;
    QTensor embed_, lm_head_;
    Tensor final_norm_;
    float embed_scale_;
};

}  // namespace vidi::model
