#include "model/common/media_glue.h"

#include <algorithm>
#include <numeric>

namespace vidi::model {

namespace {

constexpr float kGlueEps = 1e-5f;  // every mm_rand_* RMSNorm

WeightLoader glue(const WeightLoader& root, const std::string& module) { return root.at("model." + module); }

std::vector<int64_t> first(int64_t n) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    std::iota(v.begin(), v.end(), 0);
    return v;
}

}  // namespace

MediaGlue::MediaGlue(const ModelConfig& config, const WeightLoader& root, int64_t image_in, int64_t audio_pool_out)
    : be_(root.backend()),
      mm_(config.mm),
      dim_(config.llm.hidden),
      pos_h_(glue(root, "mm_rand_pos_h."), config.llm.hidden, be_),
      pos_w_(glue(root, "mm_rand_pos_w."), config.llm.hidden, be_),
      pos_t_(glue(root, "mm_rand_pos_t."), config.llm.hidden, be_) {
    const int64_t D = dim_, A = config.audio.d_model, k = mm_.audio_pool;
    VIDI_CHECK(k > 0, config.dir, ": mm_audio_pool_size ", k, " must be positive");
    VIDI_CHECK(mm_.projector_type == "mlp2x_gelu", config.dir, ": mm_projector_type '", mm_.projector_type,
               "' is not supported (only mlp2x_gelu)");
    img_proj_ = projector(glue(root, "mm_rand_img_projector.model."), image_in);
    aud_proj_ = projector(glue(root, "mm_rand_aud_projector.model."), audio_pool_out);
    WeightLoader g = glue(root, "");
    img_norm_ = g.weight("mm_rand_img_norm.weight", {D});
    aud_norm_ = g.weight("mm_rand_aud_norm.weight", {D});
    llm_norm_ = g.weight("mm_rand_llm_norm.weight", {D});
    // Conv1d(kernel k, stride k, no bias) as a GEMM over im2col rows.
    aud_pool_ = g.weight("mm_rand_aud_pool.weight", {audio_pool_out, A, k}).reshape({audio_pool_out, A * k});
}

MediaGlue::Projector MediaGlue::projector(const WeightLoader& w, int64_t in) const {
    return {w.linear("0.weight", {dim_, in}), w.weight("0.bias", {dim_}), w.linear("2.weight", {dim_, dim_}),
            w.weight("2.bias", {dim_})};
}

Tensor MediaGlue::project(const Projector& p, const Tensor& x) const {
    Tensor h = be_.linear(x, p.w0, p.b0);
    be_.gelu_(h, Gelu::erf);
    return be_.linear(h, p.w2, p.b2);
}

Tensor MediaGlue::norm(const Tensor& x, const Tensor& w) const {
    return be_.rms_norm(x, w, kGlueEps, NormWeight::plain);
}

Tensor MediaGlue::image_tokens(const Tensor& grid, int64_t pos_n, const std::vector<int64_t>& frame_positions,
                               int64_t total_frames) const {
    VIDI_CHECK(grid.rank() == 4 && grid.dim(0) == static_cast<int64_t>(frame_positions.size()),
               "image_tokens: ", frame_positions.size(), " frame positions for a grid ", grid.describe());
    const int64_t n = grid.dim(0), h = grid.dim(1), w = grid.dim(2), D = dim_;
    Tensor x;
    {
        const Section s = be_.section("image glue.projector");
        x = norm(project(img_proj_, grid.reshape({n * h * w, grid.dim(3)})), img_norm_).reshape({n, h, w, D});
    }
    const Section s = be_.section("image glue.positions");
    const ImagePositions pos = image_positions(pos_n, h, w, total_frames);
    be_.add_broadcast_(x, pos.rows.reshape({1, h, 1, D}));
    be_.add_broadcast_(x, pos.cols.reshape({1, 1, w, D}));
    // The batch's frames: consecutive ones are a view, others are gathered (embed).
    const int64_t f0 = n > 0 ? frame_positions.front() : 0;
    bool consecutive = true;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t f = frame_positions[static_cast<size_t>(i)];
        VIDI_CHECK(f >= 0 && f < total_frames, "image_tokens: frame position ", f, " outside 0..", total_frames - 1);
        consecutive = consecutive && f == f0 + i;
    }
    const Tensor times =
        consecutive ? pos.times.rows(f0, f0 + n)
                    : be_.embed(QTensor(pos.times), std::vector<int32_t>(frame_positions.begin(), frame_positions.end()));
    be_.add_broadcast_(x, times.reshape({n, 1, 1, D}));
    return norm(x.reshape({n * h * w, D}), llm_norm_);
}

MediaGlue::ImagePositions MediaGlue::image_positions(int64_t pos_n, int64_t h, int64_t w, int64_t total_frames) const {
    VIDI_CHECK(total_frames >= 0, "image_tokens: ", total_frames, " frames");
    ImagePositions& p = positions_;
    if (p.pos_n != pos_n || p.h != h || p.w != w || p.frames != total_frames) {
        p = {};  // a failure below leaves nothing half made
        ImagePositions fresh{pos_n, h, w, total_frames, pos_h_.encode(pos_n, h, first(h)),
                             pos_w_.encode(pos_n, w, first(w)),
                             pos_t_.encode(mm_.time_interval, total_frames, first(total_frames))};
        p = std::move(fresh);
    }
    return p;
}

int64_t MediaGlue::audio_token_count(const WhisperEncoder& tower, int64_t mel_frames) const {
    const int64_t states = mel_frames * tower.output_frames() / tower.input_frames();
    return states / mm_.audio_pool;
}

int64_t MediaGlue::audio_pieces_per_batch(const WhisperEncoder& tower, int64_t pieces_per_batch) const {
    // A batch's states are a whole number of tokens: Whisper's 1500 states a piece take any
    // pool up to 6 in every batch.
    const int64_t per_batch = std::max<int64_t>(1, pieces_per_batch);
    const int64_t unit = mm_.audio_pool / std::gcd(tower.output_frames(), mm_.audio_pool);
    return (per_batch + unit - 1) / unit * unit;
}

Tensor MediaGlue::audio_tokens(const WhisperEncoder& tower, const Tensor& mel, int64_t mel_frames,
                               const std::function<void(int64_t, int64_t)>& progress,
                               int64_t pieces_per_batch) const {
    const int64_t in = tower.input_frames();
    VIDI_CHECK(mel.rank() == 3 && mel.dim(2) == in, "audio_tokens: expected log-mel [pieces, bins, ", in, "], got ",
               mel.describe());
    const int64_t pieces = mel.dim(0);
    VIDI_CHECK(mel_frames <= pieces * in, "audio_tokens: mel_frames ", mel_frames, " does not fit ", pieces,
               " piece(s) of ", in, " frames");
    const int64_t T = checked_audio_tokens(tower, mel_frames);

    // A batch of pieces goes through the tower and straight on through the glue, so that of
    // the tower's states only one batch is held.
    Tensor tokens = be_.act({T, dim_});
    const int64_t per_batch = audio_pieces_per_batch(tower, pieces_per_batch);
    for (int64_t i = 0, done = 0; done < T && i < pieces; i += per_batch) {
        const int64_t n = std::min(per_batch, pieces - i);
        const int64_t m = std::min(T - done, n * tower.output_frames() / mm_.audio_pool);  // the last: up to T
        Tensor dst = tokens.rows(done, done + m);
        be_.copy_(dst, place_audio_tokens(unplaced_audio_tokens(tower, mel.rows(i, i + n), m), done, T));
        done += m;
        if (progress) progress(i + n, pieces);
    }
    return tokens;
}

int64_t MediaGlue::checked_audio_tokens(const WhisperEncoder& tower, int64_t mel_frames) const {
    VIDI_CHECK(mel_frames > 0, "audio_tokens: mel_frames ", mel_frames, " is not positive");
    const int64_t states = mel_frames * tower.output_frames() / tower.input_frames();
    VIDI_CHECK(states >= 2 * mm_.audio_pool, "audio_tokens: ", mel_frames,
               " mel frames give fewer than two audio tokens");
    return states / mm_.audio_pool;
}

Tensor MediaGlue::unplaced_audio_tokens(const WhisperEncoder& tower, const Tensor& mel, int64_t tokens) const {
    const int64_t n = mel.dim(0), out = tower.output_frames(), A = tower.d_model(), k = mm_.audio_pool;
    VIDI_CHECK(tokens > 0 && tokens * k <= n * out, "audio_tokens: ", tokens, " tokens from ", n, " piece(s)");
    Tensor states;
    {
        const Section s = be_.section("whisper");
        states = tower.forward(mel).reshape({n * out, A}).rows(0, tokens * k);
    }
    const Section s = be_.section("audio glue");
    // Conv1d(kernel k, stride k, no bias) over the states.
    Tensor cols = be_.im2col_1d(states, static_cast<int>(k), static_cast<int>(k), 0);
    return norm(project(aud_proj_, be_.linear(cols, aud_pool_)), aud_norm_);
}

Tensor MediaGlue::place_audio_tokens(const Tensor& unplaced, int64_t first_token, int64_t total) const {
    const Section s = be_.section("audio glue");
    VIDI_CHECK(first_token >= 0 && first_token + unplaced.dim(0) <= total, "audio_tokens: rows ", first_token, "..",
               first_token + unplaced.dim(0), " of ", total, " tokens");
    Tensor x = be_.act(unplaced.shape());  // the caller's rows stay as they are
    be_.copy_(x, unplaced);
    std::vector<int64_t> steps(static_cast<size_t>(x.dim(0)));
    std::iota(steps.begin(), steps.end(), first_token);
    be_.add_(x, pos_t_.encode(mm_.time_interval, total, steps));
    return norm(x, llm_norm_);
}

}  // namespace vidi::model
