// GPU memory planning: before a video is decoded, work out what it will hold on the device
// (media tokens, per-layer media K/V, the largest transient activations) and refuse early,
// with needed vs available, instead of failing half-way with an out-of-memory error.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "model/family.h"

namespace vidi::runtime {

// What a video holds on the device (the family's Family::video_footprint).
struct VideoMemoryPlan : model::VideoFootprint {
    bool tokens_on_host = false;   // media_tokens is then the device's staging buffers only
    std::string describe() const;  // "22.81 GiB (media K/V 21.15 GiB, tokens 0.44 GiB, ...)"
};

// For F frames at a token grid of side×side and `audio_tokens` audio tokens, with the
// media K/V in the activation dtype or (kv bits 8 or 4) as media_kv_format() holds them, and
// the media tokens kept on the device or (tokens_on_host) on the host (MediaKvWriter).
VideoMemoryPlan plan_video(const model::ModelConfig& c, int64_t frames, int64_t side, int64_t audio_tokens,
                           int frame_batch, DType act_dtype, const QuantFormat& kv = {}, bool tokens_on_host = false);

// Bytes the backend can still take: the cap (if any) minus what live tensors hold, or what
// the device has free plus the backend's own cache, whichever is smaller.
size_t available_bytes(const DeviceMemory& m);

// The memory as it would be with `bytes` more held by vidi (taken from what is free).
DeviceMemory with_held(DeviceMemory m, size_t bytes);

// Throws a vidi::Error saying what `what` needs and what is available, unless it fits.
void require_fits(const std::string& what, size_t needed, const DeviceMemory& m, const std::string& detail = {});

// Whether --compute fp8 keeps FP8 copies of the weights its GEMMs read (the media layers' and the
// towers' normed linears: copy_bytes, on top of weight_bytes of weights still to load): where
// they take at most a quarter of what is left after the weights, the rest staying for videos.
// Otherwise the FP8 GEMMs convert each weight at each call (slower, no memory). `note` says
// which, and why.
struct Fp8CopyChoice {
    bool keep = false;
    std::string note;
};
Fp8CopyChoice choose_fp8_copies(size_t copy_bytes, size_t weight_bytes, const DeviceMemory& m);

// "19GiB", "20G", "512MiB", "20000000000" -> bytes; throws on anything else (vidi/vidi.h).
using vidi::parse_bytes;
std::string format_gib(size_t bytes);

}  // namespace vidi::runtime
