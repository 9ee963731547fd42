// The memory planner's choices (issue: fit a shared 24 GB card). Weights: how linear
// weights are held (bf16, int8, int4), chosen once at load. Per video: whether the media
// K/V are kept in the activation dtype, in 8 or in 4 bits, and the visual-token budget (the
// family's default, Vidi1.5: SPEC's 60000; lowered for very long videos by shrinking grids
// and then thinning frames: only when even 4-bit K/V of every frame do not fit). What a video
// needs is the family's (Family::video_footprint).
// "auto" picks the most faithful choice that fits the memory the backend may use and
// says what it picked; when nothing fits, the error says what would.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "io/checkpoint.h"
#include "media/media.h"
#include "model/checkpoint.h"
#include "runtime/memory_plan.h"

namespace vidi::runtime {

// --- weights ---------------------------------------------------------------------------
// Bytes a GPU backend holds for the used weights when linear weights are stored as `f`
// (other floats in 16 bits, the positional MLPs' in f32). The linear and f32 weights are the
// checkpoint's (io::Checkpoint::linear_weights, f32_weights).
size_t weight_bytes(const io::Checkpoint& ckpt, const QuantFormat& f);

struct WeightChoice {
    QuantFormat format;
    size_t bytes = 0;
    std::string note;  // what was chosen and why
};
// `requested`: "auto", "bf16", "int8", "int4", "int4/g128", ... A checkpoint already
// quantised by `vidi quantize` is used as stored. `mem`: unset on the CPU.
WeightChoice choose_weights(const model::Checkpoint& ckpt, const std::string& requested,
                            const std::optional<DeviceMemory>& mem, int frame_batch, DType act_dtype);

// --- one video ---------------------------------------------------------------------------
struct MediaRequest {
    std::string kv = "auto";   // "auto", "bf16", "int8", "int4"
    int64_t visual_budget = 0; // 0: auto (the family's default, lowered only when memory is short)
    std::string tokens = "auto";  // where the media tokens are kept: "auto", "device", "host"
};

struct MediaChoice {
    QuantFormat kv;                     // media K/V storage (bits 16: activation dtype; 8, 4: media_kv_format)
    DType act = DType::bf16;            // the activation dtype (what describe() calls bits 16)
    int64_t budget = 0;                 // visual-token budget
    int64_t default_budget = 0;         // the family's
    int64_t step = 1;                   // keep every step-th sampled frame
    int64_t frames = 0;                 // frames encoded (after thinning)
    int side = 0;                       // token grid side per frame
    int64_t audio_tokens = 0;
    bool tokens_on_host = false;        // the media tokens go down to the host as they are made
    VideoMemoryPlan plan;
    std::string why;                    // why "auto" took less than bf16 K/V at every frame (empty: it did not)
    int64_t visual_tokens() const { return frames * side * side; }
    // What the video becomes: its tokens, K/V format and placement (not the memory they need).
    std::string summary() const;
    std::string describe() const;  // the summary, why, and what it needs
};

// The seconds of audio planned for before the audio is decoded (its buffers, choose_media):
// the container's duration, but no more than the video's packets span with room for a longer
// soundtrack (×1.25 + 60 s). A header claiming hours for seconds of media (a broken index, a TS
// across a timestamp jump) otherwise sized them: 16 GB for a 2 s file. A longer audio still
// fits: the buffers grow as its tokens come.
double planned_audio_seconds(const media::VideoInfo& info);

// For a video of `frames` sampled frames and ~`audio_tokens` audio tokens. "auto" K/V on a
// GPU: bf16, int8, then int4 at the family's budget, each with the media tokens on the device
// and then (when that does not fit) on the host; only when none fits is the budget lowered
// (with int4, tokens on the host). Below that budget the grids shrink first and then frames are thinned; at the
// budget a long video keeps every frame at the smallest grid, as SPEC does.
MediaChoice choose_media(const model::ModelConfig& c, int64_t frames, int64_t audio_tokens, const MediaRequest& req, const std::optional<DeviceMemory>& mem,
                         int frame_batch, DType act_dtype);

// What holding `bytes` more on the device while a video is encoded (a hardware decoder's
// frames) would cost it under `mem`: empty where its choice stays the same (or nothing fits
// either way: choose_media says so), else what it would become. The rest is choose_media's.
std::string cost_of_holding(size_t bytes, const model::ModelConfig& c, int64_t frames, int64_t audio_tokens,
                            const MediaRequest& req, const DeviceMemory& mem, int frame_batch, DType act_dtype);

// The choice for media tokens that already exist (a saved video): only the K/V format.
QuantFormat choose_kv_for_tokens(const model::ModelConfig& c, int64_t tokens, const std::string& requested,
                                 const std::optional<DeviceMemory>& mem, DType act_dtype);

}  // namespace vidi::runtime
