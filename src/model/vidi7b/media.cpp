#include "model/vidi7b/media.h"

#include <algorithm>

#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

Media::Media(const ModelConfig& config, const WeightLoader& root)
    : be_(root.backend()),
      dim_(config.llm.hidden),
      side_(config.mm.image_pool),
      kernel_(conv_kernel(config)),
      vision_(config, root),
      audio_(config, root),
      // Grid cells are the tower's width C; the audio pool keeps Whisper's width A.
      glue_(config, root, config.vision.hidden, config.audio.d_model) {
    VIDI_CHECK(side_ >= 2 && side_ <= vision_.grid(), config.dir, ": mm_image_pool_size ", side_,
               " must be between 2 and the tower's ", vision_.grid(), " patches a side");
    const int64_t C = vision_.hidden(), k = kernel_;
    conv_ = root.at("model.mm_rand_img_pool.").weight("conv.weight", {C, C, k, k}).reshape({C, C * k * k});
}

int Media::grid_side(int64_t /*total_frames*/, int64_t /*budget*/) const { return side_; }

int64_t Media::pool_frames() const {
    const int64_t out = vision_.grid() - kernel_ + 1;
    return std::max<int64_t>(1, kPoolColumns / (out * out * vision_.hidden() * kernel_ * kernel_));
}

Tensor Media::pool(const Tensor& patches) const {
    const int64_t n = patches.dim(0), C = patches.dim(3), k = kernel_;
    Tensor out = be_.act({n, side_, side_, C});
    for (int64_t f0 = 0; f0 < n; f0 += pool_frames()) {
        const int64_t f1 = std::min(n, f0 + pool_frames());
        // Conv2d(C→C, kernel k, stride 1, no bias) as im2col and a GEMM, then the bilinear
        // resize (align_corners) of its (g−k+1)² grid to s×s.
        const Tensor cols = be_.im2col_2d(patches.rows(f0, f1), static_cast<int>(k), 1);
        const int64_t m = cols.dim(1);
        const Tensor conv = be_.linear(cols.reshape({(f1 - f0) * m * m, C * k * k}), conv_).reshape({f1 - f0, m, m, C});
        Tensor dst = out.rows(f0, f1);
        be_.copy_(dst, be_.resize_bilinear(conv, side_, side_, true));
    }
    return out;
}

Tensor Media::image_tokens(const Tensor& pixels_batch, const std::vector<int64_t>& frame_positions,
                           int64_t total_frames, int64_t /*budget*/) const {
    VIDI_CHECK(total_frames >= 2, "visual tokens need a video of at least two frames, got ", total_frames);
    VIDI_CHECK(pixels_batch.rank() == 4 && pixels_batch.dim(0) == static_cast<int64_t>(frame_positions.size()),
               "image_tokens: ", frame_positions.size(), " frame positions for pixels ", pixels_batch.describe());
    const int64_t n = pixels_batch.dim(0), g = vision_.grid();
    const Tensor patches = vision_.forward(pixels_batch).reshape({n, g, g, int64_t(vision_.hidden())});
    const Section s = be_.section("image glue");
    // pos_h and pos_w are built with N = mm_image_pool_size = s and spread over l = s cells.
    return glue_.image_tokens(pool(patches), side_, frame_positions, total_frames);
}

void Media::prepare_video(int64_t total_frames, int64_t /*budget*/) const {
    glue_.prepare_image_positions(side_, side_, side_, total_frames);
}

}  // namespace vidi::model::vidi7b
