#include "model/common/dattn_decoder.h"

#include <array>
#include <cmath>

namespace vidi::model {

namespace {
// Whether the media tokens' o_proj is folded over heads that share a K/V head (fold_shared_heads).
bool folds_shared_heads(const LlmConfig& c) { return c.kv_heads > 0 && c.heads % c.kv_heads == 0 && c.heads != c.kv_heads; }
}  // namespace

DattnDecoder::DattnDecoder(const ModelConfig& config, const WeightLoader& root,
                           const std::vector<std::string>& norm_names, float embed_scale, NormWeight mode, Glu mlp)
    : cfg_(config.llm), be_(root.backend()), embed_scale_(embed_scale), norm_mode_(mode), mlp_kind_(mlp) {
    const int64_t D = cfg_.hidden, I = cfg_.intermediate, V = cfg_.vocab;
    const int64_t q_rows = int64_t(cfg_.heads) * cfg_.head_dim, kv_rows = int64_t(cfg_.kv_heads) * cfg_.head_dim;
    embed_ = root.linear("model.embed_tokens.weight", {V, D});
    // Tied: the output projection is embed_tokens; untied, lm_head when present.
    const bool own_head = !cfg_.tie_embeddings && root.has("lm_head.weight");
    lm_head_ = own_head ? root.linear("lm_head.weight", {V, D}) : embed_;
    final_norm_ = root.weight("model.norm.weight", {D});
    QTensor select_shared;  // fold_shared_heads' selection, made at its first use
    for (int i = 0; i < cfg_.layers; ++i) {
        WeightLoader w = root.sub("model.layers." + std::to_string(i) + ".");
        Layer L{w.linear("self_attn.q_proj.weight", {q_rows, D}), w.linear("self_attn.k_proj.weight", {kv_rows, D}),
                w.linear("self_attn.v_proj.weight", {kv_rows, D}), w.linear("self_attn.o_proj.weight", {D, q_rows}),
                w.linear("mlp.gate_proj.weight", {I, D}),         w.linear("mlp.up_proj.weight", {I, D}),
                w.linear("mlp.down_proj.weight", {D, I}),         {}, {}};
        for (const std::string& n : norm_names) L.norms.push_back(w.weight(n + ".weight", {D}));
        if (root.options().fp8_copies) {  // the media layers' weights (media_fp8_copy_bytes counts them)
            if (i + 1 < cfg_.layers) L.o_media = fold_shared_heads(L.o, select_shared);
            root.keep_fp8_copies(media_weights(L, i + 1 == cfg_.layers));
        }
        layers_.push_back(std::move(L));
    }
}

std::vector<const QTensor*> DattnDecoder::media_weights(const Layer& L, bool last) {
    // The media tokens' attention is diagonal (no q); the last layer only gives them K/V.
    if (last) return {&L.k, &L.v};
    return {&L.k, &L.v, L.o_media.defined() ? &L.o_media : &L.o, &L.gate, &L.up, &L.down};
}

QTensor DattnDecoder::fold_shared_heads(const QTensor& o, QTensor& select) const {
    const int64_t hd = cfg_.head_dim, H = cfg_.heads, KV = cfg_.kv_heads;
    if (o.quantized() || !folds_shared_heads(cfg_) || !be_.fp8_supported()) return {};
    // o · Sᵀ (shared_heads_fold): one GEMM sums each group in f32 and rounds once.
    if (!select.defined()) select = QTensor(be_.weight(shared_heads_fold(H, KV, hd)));
    return QTensor(be_.linear(o.values, select));
}

Tensor shared_heads_fold(int64_t heads, int64_t kv_heads, int64_t head_dim) {
    VIDI_CHECK(heads > 0 && kv_heads > 0 && heads % kv_heads == 0 && head_dim > 0, "shared_heads_fold: ", heads,
               " heads over ", kv_heads, " K/V heads of ", head_dim);
    const int64_t H = heads * head_dim, rep = heads / kv_heads;
    Tensor s = Tensor::zeros({kv_heads * head_dim, H}, DType::f32);
    float* sel = s.data<float>();
    for (int64_t c = 0; c < H; ++c) sel[(c / head_dim / rep * head_dim + c % head_dim) * H + c] = 1.0f;
    return s;
}

size_t media_fp8_copy_bytes(const LlmConfig& c) {
    // Each weight media_weights() names.
    const auto copy = fp8_copy_bytes_of;
    const int64_t D = c.hidden, I = c.intermediate;
    const int64_t q_rows = int64_t(c.heads) * c.head_dim, kv_rows = int64_t(c.kv_heads) * c.head_dim;
    const size_t o = folds_shared_heads(c) ? copy(D, kv_rows) : copy(D, q_rows);
    const size_t kv = 2 * copy(kv_rows, D), rest = o + 2 * copy(I, D) + copy(D, I);
    return c.layers > 0 ? static_cast<size_t>(c.layers) * kv + static_cast<size_t>(c.layers - 1) * rest : 0;
}

size_t media_fold_bytes(const LlmConfig& c, size_t act_bytes) {
    if (!folds_shared_heads(c) || c.layers < 1) return 0;
    return static_cast<size_t>(c.layers - 1) * static_cast<size_t>(c.hidden) * static_cast<size_t>(c.kv_heads) *
           static_cast<size_t>(c.head_dim) * act_bytes;
}

Tensor DattnDecoder::norm(const Tensor& x, const Tensor& w) const { return be_.rms_norm(x, w, eps(), norm_mode_); }

std::array<Tensor, 3> DattnDecoder::qkv(const Layer& L, const Tensor& h, bool step) const {
    const Section s = step_section("step: q k v", step);
    const int64_t n = h.dim(0);
    std::array<Tensor, 3> out{be_.act({n, cfg_.heads, cfg_.head_dim}), be_.act({n, cfg_.kv_heads, cfg_.head_dim}),
                              be_.act({n, cfg_.kv_heads, cfg_.head_dim})};
    be_.linear_into_({&out[0], &out[1], &out[2]}, h, {&L.q, &L.k, &L.v});
    return out;
}

std::pair<Tensor, Tensor> DattnDecoder::key_value(const Layer& L, const Tensor& h, std::pair<Tensor, Tensor> into) const {
    const int64_t n = h.dim(0);
    for (Tensor* t : {&into.first, &into.second})
        if (!t->defined()) *t = be_.act({n, cfg_.kv_heads, cfg_.head_dim});
    be_.linear_into_({&into.first, &into.second}, h, {&L.k, &L.v});  // (an FP8 encode converts h once)
    return into;
}

void DattnDecoder::store_rows(const Tensor& cache, int64_t row0, const Tensor& rows) const {
    Tensor dst = cache.rows(row0, row0 + rows.dim(0));
    be_.copy_(dst, rows);
}

void DattnDecoder::store_media_rows(const QTensor& cache, int64_t row0, const Tensor& rows,
                                   const QuantFormat& format) const {
    if (!cache.quantized()) return store_rows(cache.values, row0, rows);
    // Scales shared by a block of rows (4-bit keys) need whole blocks, bar the cache's last.
    const int64_t B = cache.block, n = rows.dim(0);
    VIDI_CHECK(row0 % B == 0 && (n % B == 0 || row0 + n == cache.dim(0)), "media K/V rows ", row0, "..", row0 + n,
               " do not start and end on blocks of ", B, " tokens");
    QTensor q = be_.quantize(rows, format);
    store_rows(cache.values, row0, q.values);
    store_rows(cache.scales, row0 / B, q.scales);
    if (cache.zeros.defined()) store_rows(cache.zeros, row0 / B, q.zeros);
}

Tensor DattnDecoder::mlp(const Layer& L, const Tensor& h) const {
    return be_.glu_mlp(h, L.gate, L.up, L.down, mlp_kind_);
}

Tensor DattnDecoder::residual(const Tensor& a) const {
    if (a.dtype() == be_.residual_dtype()) return a;
    Tensor x = be_.empty(a.shape(), be_.residual_dtype());
    be_.copy_(x, a);
    return x;
}

MediaKV DattnDecoder::new_media_kv(int64_t tokens, const QuantFormat& kv_format) const {
    const Shape shape{tokens, cfg_.kv_heads, cfg_.head_dim};
    const MediaKvFormat f = media_kv_format(kv_format.bits, cfg_.head_dim);
    std::vector<std::pair<Shape, QuantFormat>> parts;
    for (int l = 0; l < cfg_.layers; ++l) parts.insert(parts.end(), {{shape, f.key}, {shape, f.value}});
    const std::vector<QTensor> caches = be_.empty_together(parts);  // one block for every layer
    MediaKV kv;
    kv.tokens = tokens;
    for (int l = 0; l < cfg_.layers; ++l) {
        kv.k.push_back(caches[2 * l]);
        kv.v.push_back(caches[2 * l + 1]);
    }
    return kv;
}

void DattnDecoder::encode_media_rows(MediaKV& kv, int64_t row0, const Tensor& tokens, int64_t chunk) const {
    const int64_t T = tokens.dim(0);
    const int hd = cfg_.head_dim, H = cfg_.heads;
    VIDI_CHECK(row0 >= 0 && row0 + T <= kv.tokens && static_cast<int>(kv.k.size()) == cfg_.layers,
               "encode_media_rows: rows ", row0, "..", row0 + T, " do not fit media K/V of ", kv.tokens, " tokens");
    const MediaKvFormat format = media_kv_format(kv.k.empty() ? 16 : kv.k[0].bits, hd);
    for (int64_t r0 = 0; r0 < T; r0 += chunk) {
        int64_t r1 = std::min(T, r0 + chunk), n = r1 - r0;
        const Section whole = be_.section("media layers");
        // FP8 matrix work where it is on (--compute fp8): every linear of the media layers. The
        // towers take FP8 in their normed linears only (Backend::layer_norm_linears: the LayerNorm
        // writes the E4M3 codes itself); their o_proj and fc2 stay 16-bit, which measured faster
        // than FP8 with the input's conversion (bench/RESULTS.md, 2026-12-06).
        const EncodeScope encode = be_.encode_scope();
        Tensor src = tokens.rows(r0, r1);
        if (src.device() != be_.device()) src = be_.upload(src);
        Tensor scaled = be_.act(src.shape());  // a fresh copy: the caller's tokens stay as they are
        be_.copy_(scaled, src);
        if (embed_scale_ != 1.0f) be_.scale_(scaled, embed_scale_);
        Tensor m = residual(scaled);
        scaled = Tensor();  // kept only where it is the residual itself (activations in the residual dtype)
        Tensor h = norm(m, layers_[0].norms[0]);
        for (int l = 0; l < cfg_.layers; ++l) {
            const Layer& L = layers_[l];
            // 16-bit media K/V on this device: k and v land in their cache rows (no copy).
            const bool in_place = !kv.k[l].quantized() && !kv.v[l].quantized() &&
                                  kv.k[l].device() == be_.device() && kv.v[l].device() == be_.device();
            auto [k, v] = key_value(L, h, in_place ? std::pair{kv.k[l].values.rows(row0 + r0, row0 + r1),
                                                               kv.v[l].values.rows(row0 + r0, row0 + r1)}
                                                   : std::pair<Tensor, Tensor>{});
            h = Tensor();  // not needed past k and v: its memory serves the rest of the layer
            if (!in_place) {
                store_media_rows(kv.k[l], row0 + r0, k, format.key);
                store_media_rows(kv.v[l], row0 + r0, v, format.value);
            }
            if (l + 1 == cfg_.layers) break;  // the last update feeds nothing
            // Diagonal attention: each token's attention output is its own value, repeated
            // for the heads that share it (or o folded over them: the same sum, one GEMM half as long).
            Tensor o = L.o_media.defined() ? be_.linear(v.reshape({n, int64_t(cfg_.kv_heads) * hd}), L.o_media)
                                           : be_.linear(be_.repeat_kv(v, H).reshape({n, int64_t(H) * hd}), L.o);
            h = after_attention(L, m, o);
            Tensor out;
            {
                const Section s = be_.section("media.mlp");
                out = mlp(L, h);
            }
            h = after_mlp(L, m, out, layers_[l + 1].norms[0]);
        }
    }
}

TextCache DattnDecoder::new_cache(int64_t capacity) const {
    TextCache c;
    c.capacity = capacity;
    const Shape shape{capacity, cfg_.kv_heads, cfg_.head_dim};
    const std::vector<QTensor> caches =  // one block for every layer
        be_.empty_together(std::vector<std::pair<Shape, QuantFormat>>(2 * size_t(cfg_.layers), {shape, {}}));
    for (int l = 0; l < cfg_.layers; ++l) {
        c.k.push_back(caches[2 * l].values);
        c.v.push_back(caches[2 * l + 1].values);
    }
    return c;
}

Tensor DattnDecoder::forward_on_device(const std::vector<int32_t>& ids, TextCache& cache,
                                       const std::vector<const MediaKV*>& media, bool all_logits) const {
    const int64_t T = static_cast<int64_t>(ids.size()), pos0 = cache.length;
    VIDI_CHECK(T > 0, "forward() needs at least one token");
    if (pos0 + T > cache.capacity)
        fail("the prompt and answer need ", pos0 + T, " text positions but the context holds ", cache.capacity);
    check_token_ids(ids.data(), T, cfg_.vocab, "forward", pos0);  // a GPU's embed cannot check them
    Tensor logits;
    if (T == 1) {
        logits = decode_step(ids[0], cache, media);
    } else {
        const Tensor dev_ids = be_.upload(Tensor::from_vector(ids));
        const Tensor pos = be_.upload(Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(pos0)}));
        logits = queue_forward(dev_ids, pos, pos0, false, cache, media, all_logits);
    }
    cache.length = pos0 + T;
    return logits;
}

Tensor DattnDecoder::decode_step(int32_t id, TextCache& cache, const std::vector<const MediaKV*>& media) const {
    RecordedStep& s = cache.step;
    if (!s.id.defined()) {
        s.id = be_.empty({1}, DType::i32);
        s.pos = be_.empty({1}, DType::i32);
    }
    // The recording reads the media K/V where they were: other buffers need another recording.
    std::vector<const void*> where = media_buffers(media);
    if (where != s.media) {
        s.recording.reset();
        s.media = std::move(where);
    }
    be_.run_step(s.recording, {{s.id, id}, {s.pos, static_cast<int32_t>(cache.length)}},
                 [&] { s.logits = queue_forward(s.id, s.pos, cache.length, true, cache, media, false); });
    return s.logits;
}

std::vector<const void*> DattnDecoder::media_buffers(const std::vector<const MediaKV*>& media) {
    std::vector<const void*> where;
    for (const MediaKV* m : media)
        if (m && m->tokens > 0)
            for (const auto* side : {&m->k, &m->v})
                for (const QTensor& t : *side) where.insert(where.end(), {t.values.raw(), t.scales.raw(), t.zeros.raw()});
    return where;
}

AttentionParams DattnDecoder::self_params() const {
    AttentionParams self;
    self.scale = static_cast<float>(1.0 / std::sqrt(cfg_.query_pre_attn_scalar));
    self.softcap = static_cast<float>(cfg_.attn_softcap);
    self.causal = true;
    return self;
}

Tensor DattnDecoder::embed_rows(const Tensor& ids) const {
    Tensor embedded = be_.embed(embed_, ids);
    if (embed_scale_ != 1.0f) be_.scale_(embedded, embed_scale_);
    return residual(embedded);
}

Tensor DattnDecoder::finish_layer(int l, Tensor& x, const Tensor& attn, bool step) const {
    const Section s = step_section("step: o_proj, MLP", step);
    const Layer& L = layers_[l];
    // o_proj is linear without bias, so one projection of the summed head outputs serves all
    // streams. Each residual update also gives the next sub-layer's normalised input (the last
    // one the final norm's).
    const Tensor o = be_.linear(attn.reshape({attn.dim(0), int64_t(cfg_.heads) * cfg_.head_dim}), L.o);
    const Tensor h = after_attention(L, x, o);
    return after_mlp(L, x, mlp(L, h), l + 1 < cfg_.layers ? layers_[l + 1].norms[0] : final_norm_);
}

Tensor DattnDecoder::decode_rows(const std::vector<int32_t>& ids, const std::vector<TextCache*>& caches,
                                 const std::vector<const MediaKV*>& media, RecordedRowsStep& rec) const {
    const int64_t B = static_cast<int64_t>(ids.size());
    VIDI_CHECK(B >= 1 && B <= kMaxStepRows && caches.size() == ids.size(), "decode_rows: ", ids.size(), " ids for ",
               caches.size(), " caches (1 to ", kMaxStepRows, " rows)");
    check_token_ids(ids.data(), B, cfg_.vocab, "decode_rows");
    std::vector<int32_t> positions;
    std::vector<const void*> rows;
    for (const TextCache* c : caches) {
        VIDI_CHECK(c && c->length < c->capacity, "decode_rows: a row's cache is full (", c ? c->length : 0, " of ",
                   c ? c->capacity : 0, " positions)");
        positions.push_back(static_cast<int32_t>(c->length));
        rows.push_back(c->k[0].raw());
    }
    RecordedStep& s = rec.step;
    std::vector<const void*> where = media_buffers(media);
    // A recording serves these rows in this order over these media only.
    if (!s.id.defined() || s.id.numel() != B || rows != rec.caches || where != s.media) {
        s.recording.reset();
        s.id = be_.empty({B}, DType::i32);
        s.pos = be_.empty({B}, DType::i32);
        s.media = std::move(where);
        rec.caches = std::move(rows);
    }
    be_.run_step(s.recording, {{s.id, ids}, {s.pos, positions}},
                 [&] { s.logits = queue_rows(s.id, s.pos, caches, media); });
    for (TextCache* c : caches) ++c->length;
    return s.logits;
}

std::vector<Tensor> DattnDecoder::prefill_rows(const std::vector<std::vector<int32_t>>& prompts,
                                               const std::vector<TextCache*>& caches,
                                               const std::vector<const MediaKV*>& media) const {
    const size_t P = prompts.size();
    VIDI_CHECK(P >= 1 && caches.size() == P, "prefill_rows: ", P, " prompts for ", caches.size(), " caches");
    const int H = cfg_.heads, KV = cfg_.kv_heads, hd = cfg_.head_dim;
    struct Prompt {
        int64_t T = 0, pos0 = 0, row0 = 0;  // tokens, first position, first row among all queries
        Tensor pos;
    };
    // Consecutive prompts whose linears the backend computes row by row alike
    // (Backend::linear_row_class) share them: one GEMM reads the weights for all their rows.
    // Any other prompt is a group of its own.
    struct Group {
        size_t first = 0, end = 0;
        int64_t row0 = 0, rows = 0;
        int row_class = -1;
        Tensor x, h;  // residual stream and normalised input of the group's rows
    };
    std::vector<Prompt> ps(P);
    std::vector<Group> groups;
    int64_t total = 0;
    for (size_t i = 0; i < P; ++i) {
        Prompt& p = ps[i];
        const TextCache& c = *caches[i];
        p.T = static_cast<int64_t>(prompts[i].size());
        p.pos0 = c.length;
        p.row0 = total;
        total += p.T;
        VIDI_CHECK(p.T > 0, "prefill_rows: an empty prompt");
        if (p.pos0 + p.T > c.capacity)
            fail("the prompt and answer need ", p.pos0 + p.T, " text positions but the context holds ", c.capacity);
        check_token_ids(prompts[i].data(), p.T, cfg_.vocab, "prefill_rows", p.pos0);
        const int cls = be_.linear_row_class(p.T);
        if (!groups.empty() && cls >= 0 && groups.back().row_class == cls &&
            be_.linear_row_class(groups.back().rows + p.T) == cls) {
            groups.back().end = i + 1;
            groups.back().rows += p.T;
        } else {
            groups.push_back({i, i + 1, p.row0, p.T, cls, {}, {}});
        }
    }
    // Each prompt's ops are those of queue_forward() for it alone (see there).
    AttentionParams self = self_params();
    for (Prompt& p : ps) p.pos = be_.upload(Tensor::from_vector(std::vector<int32_t>{static_cast<int32_t>(p.pos0)}));
    for (Group& g : groups) {
        std::vector<int32_t> ids;
        for (size_t i = g.first; i < g.end; ++i) ids.insert(ids.end(), prompts[i].begin(), prompts[i].end());
        g.x = embed_rows(be_.upload(Tensor::from_vector(ids)));
        g.h = norm(g.x, layers_[0].norms[0]);
    }
    for (int l = 0; l < cfg_.layers; ++l) {
        const Layer& L = layers_[l];
        Tensor q = be_.act({total, H, hd});  // every prompt's queries, for the media at once
        std::vector<Tensor> ks(groups.size()), vs(groups.size());
        for (size_t gi = 0; gi < groups.size(); ++gi) {
            const Group& g = groups[gi];
            Tensor qg = q.rows(g.row0, g.row0 + g.rows);
            ks[gi] = be_.act({g.rows, KV, hd});
            vs[gi] = be_.act({g.rows, KV, hd});
            be_.linear_into_({&qg, &ks[gi], &vs[gi]}, g.h, {&L.q, &L.k, &L.v});
        }
        Tensor attn = media_attention(q, l, media, false);
        const bool text_only = !attn.defined();
        if (text_only) attn = be_.act({total, H, hd});
        self.window = window(l);
        for (size_t gi = 0; gi < groups.size(); ++gi) {
            Group& g = groups[gi];
            for (size_t i = g.first; i < g.end; ++i) {
                const Prompt& p = ps[i];
                TextCache& c = *caches[i];
                const int64_t r0 = p.row0 - g.row0;
                Tensor qi = q.rows(p.row0, p.row0 + p.T), ki = ks[gi].rows(r0, r0 + p.T), vi = vs[gi].rows(r0, r0 + p.T);
                be_.rope_and_cache_kv_(qi, ki, vi, c.k[l], c.v[l], p.pos, cfg_.rope_theta);
                self.q_pos0 = p.pos0;
                const QTensor keys(c.k[l].rows(0, p.pos0 + p.T)), values(c.v[l].rows(0, p.pos0 + p.T));
                Tensor out = attn.rows(p.row0, p.row0 + p.T);
                if (!text_only) {
                    be_.attention_add_(out, qi, keys, values, self);
                } else {
                    const Tensor alone = be_.attention(qi, keys, values, self);
                    be_.copy_(out, alone);
                }
            }
            g.h = finish_layer(l, g.x, attn.rows(g.row0, g.row0 + g.rows), false);
        }
    }
    std::vector<Tensor> logits;
    for (const Group& g : groups)
        for (size_t i = g.first; i < g.end; ++i) {
            const int64_t last = ps[i].row0 - g.row0 + ps[i].T - 1;
            logits.push_back(be_.logits(g.h.rows(last, last + 1), lm_head_, static_cast<float>(cfg_.final_softcap)));
            caches[i]->length = ps[i].pos0 + ps[i].T;
        }
    return logits;
}

Tensor DattnDecoder::media_attention(const Tensor& q, int l, const std::vector<const MediaKV*>& media,
                                     bool step) const {
    const Section s = step_section("step: media attention", step);
    AttentionParams cross = self_params();
    cross.causal = false;
    cross.step_rows = step;
    Tensor attn;
    for (const MediaKV* m : media)
        if (m && m->tokens > 0) {
            if (attn.defined()) be_.cross_attention_add_(attn, q, m->k[l], m->v[l], cross);
            else attn = be_.cross_attention(q, m->k[l], m->v[l], cross);
        }
    return attn;
}

Section DattnDecoder::step_section(const char* name, bool step) const {
    return step ? be_.section(name) : Section(nullptr, name);
}

Tensor DattnDecoder::queue_rows(const Tensor& ids, const Tensor& pos, const std::vector<TextCache*>& caches,
                                const std::vector<const MediaKV*>& media) const {
    const int64_t B = ids.numel();
    const int H = cfg_.heads, hd = cfg_.head_dim;
    const AttentionParams self = self_params();

    // The ops of queue_forward()'s step, each row through the ops a one-row step uses: the
    // linears, norms and the media's cross-attention take the rows together (each row
    // computed as alone), each row's RoPE, cache and text attention go through its own cache,
    // at its own position.
    Tensor x = embed_rows(ids);
    Tensor h = norm(x, layers_[0].norms[0]);
    for (int l = 0; l < cfg_.layers; ++l) {
        auto [q, k, v] = qkv(layers_[l], h, true);
        Tensor attn = media_attention(q, l, media, true);
        const bool text_only = !attn.defined();
        if (text_only) attn = be_.act({B, H, hd});
        std::vector<Tensor*> k_caches, v_caches;
        for (TextCache* c : caches) {
            k_caches.push_back(&c->k[l]);
            v_caches.push_back(&c->v[l]);
        }
        be_.rope_and_cache_kv_rows_(q, k, v, k_caches, v_caches, pos, cfg_.rope_theta);
        AttentionParams step = self;
        step.window = window(l);
        const Section text = step_section("step: text attention", true);
        if (text_only) {
            for (int64_t b = 0; b < B; ++b) {
                TextCache& c = *caches[static_cast<size_t>(b)];
                Tensor ab = attn.rows(b, b + 1);
                step.step_pos = pos.rows(b, b + 1);
                const QTensor keys(c.k[l].rows(0, c.capacity)), values(c.v[l].rows(0, c.capacity));
                be_.copy_(ab, be_.attention(q.rows(b, b + 1), keys, values, step));
            }
        } else {
            std::vector<QTensor> keys, values;
            for (TextCache* c : caches) {
                keys.emplace_back(c->k[l].rows(0, c->capacity));
                values.emplace_back(c->v[l].rows(0, c->capacity));
            }
            step.step_pos = pos;
            be_.step_attention_add_(attn, q, keys, values, step);
        }
        h = finish_layer(l, x, attn, true);
    }
    const Section s = step_section("step: logits", true);
    return be_.logits(h, lm_head_, static_cast<float>(cfg_.final_softcap));
}

Tensor DattnDecoder::queue_forward(const Tensor& ids, const Tensor& pos, int64_t pos0, bool step, TextCache& cache,
                                   const std::vector<const MediaKV*>& media, bool all_logits) const {
    const int64_t T = ids.numel();
    AttentionParams self = self_params();
    // A step sees the cache up to its position, read on the device; a prompt its own rows.
    const int64_t self_keys = step ? cache.capacity : pos0 + T;
    if (step) self.step_pos = pos;
    else self.q_pos0 = pos0;

    Tensor x = embed_rows(ids);
    Tensor h = norm(x, layers_[0].norms[0]);
    for (int l = 0; l < cfg_.layers; ++l) {
        auto [q, k, v] = qkv(layers_[l], h, step);
        // Cross-attention uses the query before RoPE; the streams' outputs add up.
        Tensor attn = media_attention(q, l, media, step);
        {
            const Section text = step_section("step: text attention", step);
            be_.rope_and_cache_kv_(q, k, v, cache.k[l], cache.v[l], pos, cfg_.rope_theta);
            self.window = window(l);
            const QTensor keys(cache.k[l].rows(0, self_keys)), values(cache.v[l].rows(0, self_keys));
            if (attn.defined()) be_.attention_add_(attn, q, keys, values, self);
            else attn = be_.attention(q, keys, values, self);
        }
        h = finish_layer(l, x, attn, step);
    }
    // In f32 from the LM head's accumulator on every backend (SPEC §9): the greedy pick and
    // every reported logit read these.
    const Section s = step_section("step: logits", step);
    return be_.logits(all_logits ? h : h.rows(T - 1, T), lm_head_, static_cast<float>(cfg_.final_softcap));
}

}  // namespace vidi::model
