// What a Vidi1.5 video holds on the device (runtime/memory_plan.h plans with it): the shared
// decomposed-attention footprint; its glue's working sets are smaller than the towers'.
#include "model/vidi15/vidi15.h"

namespace vidi::model::vidi15 {

VideoFootprint video_footprint(const ModelConfig& c, const VideoShape& v, int frame_batch, DType act_dtype,
                               const QuantFormat& kv) {
    return decomposed_footprint(c, v, frame_batch, act_dtype, kv);
}

}  // namespace vidi::model::vidi15
