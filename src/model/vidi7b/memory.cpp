// What a Vidi-7B video holds on the device (runtime/memory_plan.h plans with it): the shared
// decomposed-attention footprint, with the image pool's working set among the transient ones.
#include <algorithm>

#include "model/vidi7b/media.h"
#include "model/vidi7b/vidi7b.h"

namespace vidi::model::vidi7b {

namespace {

// A frame batch at the image pool: the tower's patch grids, one pass's im2col columns and
// convolution output (kPoolColumns bounds the frames of a pass), the pooled grids, and the
// glue's projector and norm outputs of the batch's tokens.
size_t pool_batch_bytes(const ModelConfig& c, int frame_batch, DType act_dtype) {
    const int64_t n = std::max(1, frame_batch), C = c.vision.hidden, g = c.vision.grid(), k = conv_kernel(c),
                  m = conv_grid_side(c), s = c.mm.image_pool, D = c.llm.hidden;
    const int64_t per_pass_frame = m * m * C * k * k;
    const int64_t pass = std::min(n, std::max<int64_t>(1, kPoolColumns / per_pass_frame));
    return static_cast<size_t>(n * g * g * C + pass * (per_pass_frame + m * m * C + s * s * C) + n * s * s * (C + 3 * D)) *
           dtype_size(act_dtype);
}

}  // namespace

VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                               const QuantFormat& kv) {
    return decomposed_footprint(c, v, frame_batch, act_dtype, kv, pool_batch_bytes(c, frame_batch, act_dtype));
}

}  // namespace vidi::model::vidi7b
