// The tensor names and shapes of the blocks both families build (model/common/dattn_decoder.h,
// model/common/media_glue.h), for the families' expected_tensors().
#pragma once

#include <vector>

#include "io/checkpoint.h"
#include "model/common/tower_layout.h"
#include "model/config.h"

namespace vidi::model {

// The decoder (Hugging Face naming under "model."): embed_tokens; per layer q/k/v/o and
// gate/up/down projections without biases and the family's `norms` (of `norm_kind`); the final
// norm; lm_head, read when untied and required only when `head_required`.
void add_dattn_decoder_tensors(LayoutBuilder& b, const LlmConfig& l, const std::vector<const char*>& norms,
                               io::TensorKind norm_kind, bool head_required);

// The glue under "model.mm_rand_": the image projector from `image_in`, img_norm, the
// positional MLPs (kept in the load dtype), the audio pool Conv1d [audio_pool_out, A, k], the
// audio projector from audio_pool_out, aud_norm, llm_norm. The family adds its own after it.
void add_media_glue_tensors(LayoutBuilder& b, const ModelConfig& c, int64_t image_in, int64_t audio_pool_out);

// make-checkpoint's tensors: every one `expected` lists (the official layout holds the unused
// ones too) but lm_head when the embeddings are tied.
io::ExpectedTensors random_checkpoint_layout(io::ExpectedTensors expected, const LlmConfig& l);

}  // namespace vidi::model
