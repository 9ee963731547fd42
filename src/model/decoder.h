// The decoder of a model family, as the runtime sees it: a causal LM over text tokens
// whose layers also attend to media streams through decomposed attention. Media tokens
// never see text, so per layer their K/V are computed once per video (MediaKV) and reused
// for every question and every step. A family implements it (model/vidi15/gemma2.h).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/backend.h"

namespace vidi::model {

// The most sequences one batched decoding step takes (Decoder::decode_rows): the backends'
// few-row linears compute up to this many rows each as if alone.
constexpr int64_t kMaxStepRows = 16;

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

// A decoding step of several sequences as the backend recorded it (Decoder::decode_rows):
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

class Decoder {
public:
    virtual ~Decoder() = default;

    virtual Backend& backend() const = 0;
    virtual int64_t vocab() const = 0;
    virtual int64_t max_positions() const = 0;  // the context: prompt and answer together

    // --- media: tokens [T, D] as the family's media tokenizer gives them ---------------
    // Room for the K/V of `tokens` media tokens; kv_format bits 8 or 4 keep them quantised
    // (media_kv_format: int8 one scale per token and head; int4 keys per channel over blocks
    // of kMediaKeyBlock tokens, values per token in groups).
    virtual MediaKV new_media_kv(int64_t tokens, const QuantFormat& kv_format = {}) const = 0;
    // Rows row0.. of it from `tokens`, put through the layers `chunk` rows at a time (the
    // tokens are independent of each other; 4-bit keys: row0 and the rows' count multiples of
    // kMediaKeyBlock, bar the last rows).
    virtual void encode_media_rows(MediaKV& kv, int64_t row0, const Tensor& tokens,
                                   int64_t chunk = kMediaKvChunk) const = 0;
    // Both at once.
    MediaKV encode_media(const Tensor& tokens, const QuantFormat& kv_format = {}, int64_t chunk = kMediaKvChunk) const;

    // --- text --------------------------------------------------------------------------
    virtual TextCache new_cache(int64_t capacity) const = 0;
    // Appends `ids` to the cache and returns the logits of every new position ([T, V]) or of
    // the last one ([1, V]), left on the backend's device in f32 (Backend::logits; greedy
    // decoding reads only their top pick: Backend::top_picks). One token (T = 1) is a
    // decoding step, which a GPU backend records once and replays.
    virtual Tensor forward_on_device(const std::vector<int32_t>& ids, TextCache& cache,
                                     const std::vector<const MediaKV*>& media, bool all_logits) const = 0;
    // The same as host f32.
    Tensor forward(const std::vector<int32_t>& ids, TextCache& cache, const std::vector<const MediaKV*>& media,
                   bool all_logits) const;

    // --- batches (runtime::BatchGeneration) ------------------------------------------------
    // Several prompts prefilled together: prompt p appended to *caches[p]; returns each
    // prompt's last logits ([1, V] on the device, f32), each the bits forward_on_device gives
    // it alone. By default one forward_on_device a prompt; a family may read the media K/V once
    // for all (DattnDecoder: both Vidi families).
    virtual std::vector<Tensor> prefill_rows(const std::vector<std::vector<int32_t>>& prompts,
                                             const std::vector<TextCache*>& caches,
                                             const std::vector<const MediaKV*>& media) const;
    // One decoding step of B ≤ kMaxStepRows sequences: row b appends ids[b] to *caches[b];
    // returns the logits [B, V] on the device (f32), each row the bits of its one-row step. By
    // default one step a row (each through its cache's own recording); a family may step the
    // rows together, recorded into `rec` and replayed while the rows' caches are the same.
    virtual Tensor decode_rows(const std::vector<int32_t>& ids, const std::vector<TextCache*>& caches,
                               const std::vector<const MediaKV*>& media, RecordedRowsStep& rec) const;
};

}  // namespace vidi::model
