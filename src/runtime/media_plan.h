// The memory planner's choices (issue: fit a shared 24 GB card). Weights: how linear
// weights are held (bf16, int8, int4), chosen once at load. Per video: whether the media
// K/V are kept in the activation dtype, in 8 or in 4 bits, and the visual-token budget
// (SPEC's 60000, lowered for very long videos by shrinking grids and then thinning frames:
// only when even 4-bit K/V of every frame do not fit).
// "auto" picks the most faithful choice that fits the memory the backend may use and
// says what it picked; when nothing fits, the error says what would.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "io/checkpoint.h"
#include "model/media_tokens.h"
#include "runtime/memory_plan.h"

namespace vidi::runtime {

// --- weights ---------------------------------------------------------------------------
// Bytes a GPU backend holds for the used weights when linear weights are stored as `f`
// (other floats in 16 bits, the positional MLPs' in f32). `linear_names` are the linear
// weights (model::LoadOptions).
size_t weight_bytes(const io::Checkpoint& ckpt, const std::set<std::string>& linear_names, const QuantFormat& f);

// The names of every linear/embedding weight the model reads (builds the modules on a
// throw-away CPU backend with the weights left memory-mapped).
std::set<std::string> linear_weight_names(const io::Checkpoint& ckpt);
// The same for the weights held in f32 (WeightLoader::f32_weight: the positional MLPs).
std::set<std::string> f32_weight_names(const io::Checkpoint& ckpt);

struct WeightChoice {
    QuantFormat format;
    size_t bytes = 0;
    std::string note;  // what was chosen and why
};
// `requested`: "auto", "bf16", "int8", "int4", "int4/g128", ... A checkpoint already
// quantised by `vidi quantize` is used as stored. `mem`: unset on the CPU.
WeightChoice choose_weights(const io::Checkpoint& ckpt, const std::set<std::string>& linear_names,
                            const std::string& requested, const std::optional<DeviceMemory>& mem, int frame_batch,
                            DType act_dtype);

// --- one video ---------------------------------------------------------------------------
struct MediaRequest {
    std::string kv = "auto";   // "auto", "bf16", "int8", "int4"
    int64_t visual_budget = 0; // 0: auto (60000, lowered only when memory is short)
};

struct MediaChoice {
    QuantFormat kv;                     // media K/V storage (bits 16: activation dtype; 8, 4: media_kv_format)
    DType act = DType::bf16;            // the activation dtype (what describe() calls bits 16)
    int64_t budget = model::kVisualTokenBudget;
    int64_t step = 1;                   // keep every step-th sampled frame
    int64_t frames = 0;                 // frames encoded (after thinning)
    int side = 0;                       // token grid side per frame
    int64_t audio_tokens = 0;
    VideoMemoryPlan plan;
    std::string why;                    // why "auto" took less than bf16 K/V at every frame (empty: it did not)
    int64_t visual_tokens() const { return frames * side * side; }
    std::string describe() const;
};

// For a video of `frames` sampled frames and ~`audio_tokens` audio tokens. "auto" K/V on a
// GPU: bf16, int8, then int4 at SPEC's budget; only when none fits is the budget lowered
// (with int4). Below SPEC's budget the grids shrink first and then frames are thinned; at
// SPEC's budget a long video keeps every frame at the smallest grid, as SPEC does.
MediaChoice choose_media(const io::ModelConfig& c, int64_t frames, int64_t audio_tokens, const MediaRequest& req, const std::optional<DeviceMemory>& mem,
                         int frame_batch, DType act_dtype);

// The choice for media tokens that already exist (a saved video): only the K/V format.
QuantFormat choose_kv_for_tokens(const io::ModelConfig& c, int64_t tokens, const std::string& requested,
                                 const std::optional<DeviceMemory>& mem, DType act_dtype);

}  // namespace vidi::runtime
