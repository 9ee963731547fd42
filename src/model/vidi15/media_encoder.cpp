#include "model/vidi15/media_encoder.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace vidi::model::vidi15 {
namespace {

constexpr float kGlueEps = 1e-5f;  // every mm_rand_* RMSNorm

WeightLoader glue(const WeightLoader& root, const std::string& module) { return root.at("model." + module); }

}  // namespace

int budget_grid_side(int64_t frames, int padded, int pool, int64_t budget) {
    VIDI_CHECK(frames > 0 && padded > 0 && pool > 0, "token budget: bad frames ", frames, ", grid ", padded,
               ", pool ", pool);
    const double cells = static_cast<double>(frames) * padded * padded;
    const double allowed = static_cast<double>(budget) * pool * pool;
    if (cells <= allowed) return padded;
    const double r = std::sqrt(allowed / cells);
    const int t = static_cast<int>(padded * r);
    return std::max(kMinPatchGridSide, t - t % 2);
}

namespace {
int padded_grid(const ModelConfig& c) {
    const int pool = std::max(1, c.mm.image_pool);
    return (c.vision.grid() + pool - 1) / pool * pool;  // 27 -> 28
}
}  // namespace

int token_grid_side(const ModelConfig& c, int64_t frames, int64_t budget) {
    return budget_grid_side(frames, padded_grid(c), std::max(1, c.mm.image_pool), budget) /
           std::max(1, c.mm.image_pool);
}

MediaEncoder::MediaEncoder(const ModelConfig& config, const WeightLoader& root)
    : be_(root.backend()),
      mm_(config.mm),
      dim_(config.llm.hidden),
      padded_grid_(0),
      vision_(config, root),
      audio_(config, root),
      pos_h_(glue(root, "mm_rand_pos_h."), config.llm.hidden, be_),
      pos_w_(glue(root, "mm_rand_pos_w."), config.llm.hidden, be_),
      pos_t_(glue(root, "mm_rand_pos_t."), config.llm.hidden, be_) {
    const int64_t D = dim_, C = vision_.hidden(), A = audio_.d_model(), p = mm_.image_pool, k = mm_.audio_pool;
    VIDI_CHECK(p > 0 && k > 0, config.dir, ": mm_image_pool_size ", p, " and mm_audio_pool_size ", k,
               " must be positive");
    VIDI_CHECK(mm_.projector_type == "mlp2x_gelu", config.dir, ": mm_projector_type '", mm_.projector_type,
               "' is not supported (only mlp2x_gelu)");
    padded_grid_ = padded_grid(config);

    WeightLoader ip = glue(root, "mm_rand_img_projector.model.");
    img_proj_ = {ip.linear("0.weight", {D, C * p * p}), ip.weight("0.bias", {D}), ip.linear("2.weight", {D, D}),
                 ip.weight("2.bias", {D})};
    WeightLoader ap = glue(root, "mm_rand_aud_projector.model.");
    aud_proj_ = {ap.linear("0.weight", {D, D}), ap.weight("0.bias", {D}), ap.linear("2.weight", {D, D}),
                 ap.weight("2.bias", {D})};
    WeightLoader g = glue(root, "");
    img_norm_ = g.weight("mm_rand_img_norm.weight", {D});
    aud_norm_ = g.weight("mm_rand_aud_norm.weight", {D});
    llm_norm_ = g.weight("mm_rand_llm_norm.weight", {D});
    aud_pool_ = g.weight("mm_rand_aud_pool.weight", {D, A, k}).reshape({D, A * k});  // Conv1d as a GEMM
}

Tensor MediaEncoder::project(const Projector& p, const Tensor& x) const {
    Tensor h = be_.linear(x, p.w0, p.b0);
    be_.gelu_(h, Gelu::erf);
    return be_.linear(h, p.w2, p.b2);
}

Tensor MediaEncoder::norm(const Tensor& x, const Tensor& w) const {
    return be_.rms_norm(x, w, kGlueEps, NormWeight::plain);
}

int MediaEncoder::patch_grid_side(int64_t total_frames, int64_t budget) const {
    return budget_grid_side(total_frames, padded_grid_, mm_.image_pool, budget);
}

int MediaEncoder::grid_side(int64_t total_frames, int64_t budget) const {
    return patch_grid_side(total_frames, budget) / mm_.image_pool;
}

int64_t MediaEncoder::tokens_per_frame(int64_t total_frames, int64_t budget) const {
    const int64_t s = grid_side(total_frames, budget);
    return s * s;
}

Tensor MediaEncoder::image_tokens(const Tensor& pixels_batch, const std::vector<int64_t>& frame_positions,
                                  int64_t total_frames, int64_t budget) const {
    VIDI_CHECK(total_frames >= 2, "visual tokens need a video of at least two frames, got ", total_frames);
    VIDI_CHECK(pixels_batch.rank() == 4 && pixels_batch.dim(0) == static_cast<int64_t>(frame_positions.size()),
               "image_tokens: ", frame_positions.size(), " frame positions for pixels ", pixels_batch.describe());
    const int64_t n = pixels_batch.dim(0), G = vision_.grid(), C = vision_.hidden(), D = dim_;
    const int p = mm_.image_pool, side = patch_grid_side(total_frames, budget), h = side / p;

    Tensor grid = vision_.forward(pixels_batch).reshape({n, G, G, C});
    const Section s = be_.section("image glue");
    grid = be_.pad_grid(grid, padded_grid_ - static_cast<int>(G), padded_grid_ - static_cast<int>(G));
    if (side != padded_grid_) grid = be_.resize_bilinear(grid, side, side);
    Tensor x = be_.space_to_depth(grid, p).reshape({n * h * h, C * p * p});
    x = norm(project(img_proj_, x), img_norm_).reshape({n, h, h, D});

    std::vector<int64_t> cells(static_cast<size_t>(h));
    std::iota(cells.begin(), cells.end(), 0);
    be_.add_broadcast_(x, pos_h_.encode(p, h, cells).reshape({1, h, 1, D}));
    be_.add_broadcast_(x, pos_w_.encode(p, h, cells).reshape({1, 1, h, D}));
    be_.add_broadcast_(x, pos_t_.encode(mm_.time_interval, total_frames, frame_positions).reshape({n, 1, 1, D}));
    return norm(x.reshape({n * h * h, D}), llm_norm_);
}

int64_t MediaEncoder::audio_token_count(int64_t mel_frames) const {
    const int64_t states = mel_frames * audio_.output_frames() / audio_.input_frames();
    return states / mm_.audio_pool;
}

Tensor MediaEncoder::audio_tokens(const Tensor& mel, int64_t mel_frames,
                                  const std::function<void(int64_t, int64_t)>& progress) const {
    return audio_tokens(mel, mel_frames, progress, kAudioPiecesPerBatch);
}

Tensor MediaEncoder::audio_tokens(const Tensor& mel, int64_t mel_frames,
                                  const std::function<void(int64_t, int64_t)>& progress,
                                  int64_t pieces_per_batch) const {
    const int64_t in = audio_.input_frames(), out = audio_.output_frames(), A = audio_.d_model();
    VIDI_CHECK(mel.rank() == 3 && mel.dim(2) == in, "audio_tokens: expected log-mel [pieces, bins, ", in, "], got ",
               mel.describe());
    const int64_t pieces = mel.dim(0);
    VIDI_CHECK(mel_frames > 0 && mel_frames <= pieces * in, "audio_tokens: mel_frames ", mel_frames,
               " does not fit ", pieces, " piece(s) of ", in, " frames");
    const int64_t states = mel_frames * out / in, k = mm_.audio_pool;
    VIDI_CHECK(states >= 2 * k, "audio_tokens: ", mel_frames, " mel frames give fewer than two audio tokens");

    // A batch of pieces goes through the tower and straight on through the glue (pooling,
    // projector, norms, positions: row by row), so that of the whole audio only its tokens are
    // held (an hour is 120 pieces; the memory planner counts one batch). A batch's states are
    // a whole number of tokens (pieces_per_batch rounded up to what makes them so: Whisper's
    // 1500 states a piece take any pool up to 6 in every batch).
    int64_t per_batch = std::max<int64_t>(1, pieces_per_batch);
    const int64_t unit = k / std::gcd(out, k);  // pieces whose states are whole tokens
    per_batch = (per_batch + unit - 1) / unit * unit;
    const int64_t T = states / k;
    Tensor tokens = be_.act({T, dim_});
    for (int64_t i = 0, done = 0; done < T && i < pieces; i += per_batch) {
        const int64_t n = std::min(per_batch, pieces - i);
        Tensor batch;
        {
            const Section s = be_.section("whisper");
            batch = audio_.forward(mel.rows(i, i + n)).reshape({n * out, A});
        }
        const int64_t m = std::min(T - done, n * out / k);  // the last batch: only the states before `states`
        Tensor dst = tokens.rows(done, done + m);
        be_.copy_(dst, audio_glue(batch.rows(0, m * k), done, T));
        done += m;
        if (progress) progress(i + n, pieces);
    }
    return tokens;
}

Tensor MediaEncoder::audio_glue(const Tensor& states, int64_t first, int64_t total) const {
    const Section s = be_.section("audio glue");
    const int64_t k = mm_.audio_pool;
    // Conv1d(kernel k, stride k, no bias) over the states.
    Tensor cols = be_.im2col_1d(states, static_cast<int>(k), static_cast<int>(k), 0);
    Tensor x = norm(project(aud_proj_, be_.linear(cols, aud_pool_)), aud_norm_);
    std::vector<int64_t> steps(static_cast<size_t>(x.dim(0)));
    std::iota(steps.begin(), steps.end(), first);
    be_.add_(x, pos_t_.encode(mm_.time_interval, total, steps));
    return norm(x, llm_norm_);
}

}  // namespace vidi::model::vidi15
