#include "model/vidi15/media_encoder.h"

#include <algorithm>
#include <cmath>

namespace vidi::model::vidi15 {

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
      padded_grid_(padded_grid(config)),
      vision_(config, root),
      audio_(config, root),
      // The grid's cells are space-to-depth'd (C·p²); the audio pool gives D.
      glue_(config, root, int64_t(vision_.hidden()) * config.mm.image_pool * config.mm.image_pool,
            config.llm.hidden) {
    VIDI_CHECK(mm_.image_pool > 0, config.dir, ": mm_image_pool_size ", mm_.image_pool, " must be positive");
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
    const int64_t n = pixels_batch.dim(0), G = vision_.grid(), C = vision_.hidden();
    const int p = mm_.image_pool, side = patch_grid_side(total_frames, budget);

    Tensor grid = vision_.forward(pixels_batch).reshape({n, G, G, C});
    const Section s = be_.section("image glue");
    {
        const Section g = be_.section("image glue.grid");
        grid = be_.pad_grid(grid, padded_grid_ - static_cast<int>(G), padded_grid_ - static_cast<int>(G));
        if (side != padded_grid_) grid = be_.resize_bilinear(grid, side, side);
        grid = be_.space_to_depth(grid, p);
    }
    return glue_.image_tokens(grid, p, frame_positions, total_frames);
}

void MediaEncoder::prepare_video(int64_t total_frames, int64_t budget) const {
    const int64_t side = grid_side(total_frames, budget);
    glue_.prepare_image_positions(mm_.image_pool, side, side, total_frames);
}

Tensor MediaEncoder::audio_tokens(const Tensor& mel, int64_t mel_frames,
                                  const std::function<void(int64_t, int64_t)>& progress,
                                  int64_t pieces_per_batch) const {
    return glue_.audio_tokens(audio_, mel, mel_frames, progress, pieces_per_batch);
}

}  // namespace vidi::model::vidi15
