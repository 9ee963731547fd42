// The decoder both Vidi families use: a causal LM whose layers also attend to media streams
// through decomposed attention (SPEC.md §6, docs/vidi-7b.md §6). Text tokens attend to
// themselves (RoPE, causal, a sliding window where the family says) and to each media stream
// (visual, audio) through cross-attention without RoPE or mask; their outputs add up before
// o_proj. Media tokens never see text: each one attends only to itself (its output is its own
// value), so per layer their K/V are computed once per video (MediaKV) and reused for every
// question and every step. A family says how a layer's residual stream takes the attention and
// MLP outputs (its norms), which layers are windowed and the embeddings' scale
// (vidi15/gemma2.h, vidi7b/mistral.h).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/common/weights.h"
#include "model/config.h"
#include "model/decoder.h"

namespace vidi::model {

class DattnDecoder : public Decoder {
public:
    const LlmConfig& config() const { return cfg_; }
    Backend& backend() const override { return be_; }
    int64_t vocab() const override { return cfg_.vocab; }
    int64_t max_positions() const override { return cfg_.max_positions; }

    // The media self-update through the layers for tokens [T, D] (the media tokenizer's, before
    // the embedding scale), keeping each layer's K/V (kv_format bits 8 or 4: quantised as
    // media_kv_format() says).
    MediaKV new_media_kv(int64_t tokens, const QuantFormat& kv_format) const override;
    void encode_media_rows(MediaKV& kv, int64_t row0, const Tensor& tokens, int64_t chunk) const override;

    TextCache new_cache(int64_t capacity) const override;
    // Logits (f32, Backend::logits) after the final soft-cap (if the config has one).
    Tensor forward_on_device(const std::vector<int32_t>& ids, TextCache& cache,
                             const std::vector<const MediaKV*>& media, bool all_logits) const override;

    // Several prompts prefilled together: prompt p appended to *caches[p]; returns each prompt's
    // last logits ([1, V] on the device, f32). Each prompt gets the bits forward_on_device gives
    // it alone: its text attention is its own, its linears are shared with its neighbours only
    // where the backend computes each row alike whatever the row count (linear_row_class); the
    // media's cross-attention takes every prompt's queries at once, reading the media K/V once.
    std::vector<Tensor> prefill_rows(const std::vector<std::vector<int32_t>>& prompts,
                                     const std::vector<TextCache*>& caches,
                                     const std::vector<const MediaKV*>& media) const override;

    // One decoding step of B sequences at once (a batch, B ≤ kMaxStepRows): row b appends ids[b]
    // to *caches[b]; returns the logits [B, V] on the device (f32). Every op gives a row the
    // bits the one-row step (forward_on_device of that token) gives it, and the weights and the
    // media K/V are read once for all rows. The step is recorded into `rec` and replayed while
    // the rows' caches are the same; another composition records anew.
    Tensor decode_rows(const std::vector<int32_t>& ids, const std::vector<TextCache*>& caches,
                       const std::vector<const MediaKV*>& media, RecordedRowsStep& rec) const override;

protected:
    // A layer's projections and its norms' weights, in the order the family names them
    // (norms[0]: the input norm, which also gives the media streams' K/V their input).
    struct Layer {
        QTensor q, k, v, o, gate, up, down;
        std::vector<Tensor> norms;
        // With kept FP8 copies: o with the columns of the heads that share a K/V head summed,
        // so that the media tokens' o_proj multiplies v itself, not v repeated for each head
        // (undefined otherwise, or where every head has its own K/V).
        QTensor o_media;
    };
    // Loads the embeddings, the output projection (lm_head when untied and present, else the
    // embeddings), the final norm and every layer's projections and `norm_names`.
    // embed_scale multiplies text and media embeddings; mode is how the norms apply their weight.
    DattnDecoder(const ModelConfig& config, const WeightLoader& root, const std::vector<std::string>& norm_names,
                 float embed_scale, NormWeight mode, Glu mlp);

    // After layer L's attention output o (o_proj applied) on residual stream x (text or media):
    // x updated, returns the MLP's input.
    virtual Tensor after_attention(const Layer& L, Tensor& x, const Tensor& o) const = 0;
    // After the MLP's output y: x updated, returns x's norm with weight w_next (the next
    // layer's input norm, or the final norm).
    virtual Tensor after_mlp(const Layer& L, Tensor& x, const Tensor& y, const Tensor& w_next) const = 0;
    // The sliding window of text self-attention in layer l (0: none).
    virtual int window(int layer) const = 0;

    Tensor norm(const Tensor& x, const Tensor& w) const;
    float eps() const { return static_cast<float>(cfg_.rms_eps); }

    LlmConfig cfg_;
    Backend& be_;

private:
    Tensor mlp(const Layer& L, const Tensor& h) const;
    // The weights the media tokens' pass multiplies in layer L (`last`: the last layer's).
    static std::vector<const QTensor*> media_weights(const Layer& L, bool last);
    // o [D, heads·head_dim] folded over the heads sharing a K/V head: [D, kv_heads·head_dim]
    // (undefined where there is nothing to fold). `select`: the fold's matrix, made once.
    QTensor fold_shared_heads(const QTensor& o, QTensor& select) const;
    // Q, K and V projections of the normalised input h [n, D] ([n, H, hd], [n, KV, hd] twice;
    // no RoPE), one launch for few rows. (`step`, here and below: the rows are a decoding
    // step's, whose parts VIDI_PROFILE=1 times apart; a prompt's ops go unnamed.)
    std::array<Tensor, 3> qkv(const Layer& L, const Tensor& h, bool step) const;
    // K and V projections of the normalised input h [n, D], as [n, KV, hd] (no RoPE), written
    // into `into`'s tensors where they are defined (a 16-bit media K/V cache's rows).
    std::pair<Tensor, Tensor> key_value(const Layer& L, const Tensor& h, std::pair<Tensor, Tensor> into = {}) const;
    // Copies `rows` into the cache tensor starting at row0.
    void store_rows(const Tensor& cache, int64_t row0, const Tensor& rows) const;
    // The same for a media cache, quantising the rows first when the cache is quantised.
    void store_media_rows(const QTensor& cache, int64_t row0, const Tensor& rows, const QuantFormat& format) const;
    // A residual stream (text x, media m) starts as the scaled embeddings converted to the
    // backend's residual_dtype(): f32 with bf16 activations (84 bf16 roundings of the running
    // sum were the largest part of the bf16 pipeline's error, bench/RESULTS.md), f16 in fp16
    // mode as the official model; the sub-layers still read and write the activation dtype.
    Tensor residual(const Tensor& a) const;
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
    // The embeddings of ids (i32 on the backend), scaled, as a residual stream.
    Tensor embed_rows(const Tensor& ids) const;
    // The rest of layer l after its attention heads attn [R, H, hd] (every stream summed) on
    // the residual stream x [R, D]: o_proj, the MLP and both residual updates; returns the next
    // sub-layer's normalised input (after the last layer, the final norm's).
    Tensor finish_layer(int l, Tensor& x, const Tensor& attn, bool step) const;
    // The addresses of every media K/V buffer a step reads (a recording is tied to them).
    static std::vector<const void*> media_buffers(const std::vector<const MediaKV*>& media);
    // The text's own attention parameters (causal; the window is set per layer).
    AttentionParams self_params() const;
    // Layer l's attention of the queries q [R, H, hd] (independent rows, before RoPE) to every
    // media stream, the streams' outputs summed (Backend::cross_attention: each row's bits do
    // not depend on the others); undefined without media.
    // `step`: q holds a decoding step's rows (AttentionParams::step_rows), else a prompt's.
    Tensor media_attention(const Tensor& q, int l, const std::vector<const MediaKV*>& media, bool step) const;
    // A profiled section named `name` for a step's part; unnamed for a prompt's.
    Section step_section(const char* name, bool step) const;

    std::vector<Layer> layers_;
    QTensor embed_, lm_head_;
    Tensor final_norm_;
    float embed_scale_;
    NormWeight norm_mode_;
    Glu mlp_kind_;
};

// The bytes of the FP8 copies a DattnDecoder keeps with LoadOptions::fp8_copies: E4M3 codes and
// an f32 scale a row of the K, V, O and MLP weights the media tokens' pass multiplies (O folded
// over the heads that share a K/V head, where they do).
size_t media_fp8_copy_bytes(const LlmConfig& c);
// The bytes of the 16-bit folds of O kept beside their FP8 copies (act_bytes: a value's).
size_t media_fold_bytes(const LlmConfig& c, size_t act_bytes);
// S [kv_heads·head_dim, heads·head_dim] (host, f32): 1 where column d of head h reads column d of
// K/V head h / (heads / kv_heads) (repeat_kv's order), so that o · Sᵀ sums o's columns over the
// heads sharing each K/V head, and (o · Sᵀ)·v = o · repeat_kv(v).
Tensor shared_heads_fold(int64_t heads, int64_t kv_heads, int64_t head_dim);

}  // namespace vidi::model
