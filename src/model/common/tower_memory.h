// The largest transient working sets of the shared towers, for the memory planner.
#pragma once

#include <cstddef>

#include "core/qtensor.h"
#include "model/config.h"

namespace vidi::model {

// A SigLIP batch of `frame_batch` frames: pixels, patches, a few hidden states, the MLP and
// the attention scores (none where the GPU has a fused kernel for the head dim).
size_t siglip_batch_bytes(const ModelConfig& c, int frame_batch, DType act_dtype);
// A batch of Whisper pieces (kAudioPiecesPerBatch): 3000 mel frames, 1500 states, their
// MLP, the attention scores (none where the GPU has a fused kernel for the head dim).
size_t whisper_batch_bytes(const ModelConfig& c, DType act_dtype);
// The FP8 copies --compute fp8 keeps of the towers' weights that read a LayerNorm (SigLIP's
// and Whisper's q, k, v and fc1; Backend::layer_norm_linears): E4M3 codes and an f32 scale a
// row, for each weight whose shape the FP8 GEMM takes, and q, k and v's joined biases.
size_t tower_fp8_copy_bytes(const ModelConfig& c);

}  // namespace vidi::model
