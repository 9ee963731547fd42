// GPU memory planning: before a video is decoded, work out what it will hold on the device
// (media tokens, per-layer media K/V, the largest transient activations) and refuse early,
// with needed vs available, instead of failing half-way with an out-of-memory error.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "io/config.h"

namespace vidi::runtime {

struct VideoMemoryPlan {
    size_t media_tokens = 0;  // visual + audio tokens, [n, D]
    size_t media_kv = 0;      // per layer K and V of both streams
    size_t activations = 0;   // the largest transient working set (a K/V chunk's MLP, a tower batch)
    size_t total() const { return media_tokens + media_kv + activations; }
    std::string describe() const;  // "22.81 GiB (media K/V 21.15 GiB, tokens 0.44 GiB, ...)"
};

// For F frames at a token grid of side×side and `audio_tokens` audio tokens, with the
// media K/V in the activation dtype or (kv bits 8 or 4) as media_kv_format() holds them.
VideoMemoryPlan plan_video(const io::ModelConfig& c, int64_t frames, int64_t side, int64_t audio_tokens,
                           int frame_batch, DType act_dtype, const QuantFormat& kv = {});
// Bytes of the media K/V of one stream of `tokens` media tokens over all layers.
size_t media_kv_bytes(const io::ModelConfig& c, int64_t tokens, DType act_dtype, const QuantFormat& kv);

// Bytes the backend can still take: the cap (if any) minus what live tensors hold, or what
// the device has free plus the backend's own cache, whichever is smaller.
size_t available_bytes(const DeviceMemory& m);

// Throws a vidi::Error saying what `what` needs and what is available, unless it fits.
void require_fits(const std::string& what, size_t needed, const DeviceMemory& m, const std::string& detail = {});

// "19GiB", "20G", "512MiB", "20000000000" -> bytes; throws on anything else.
size_t parse_bytes(const std::string& text);
std::string format_gib(size_t bytes);

}  // namespace vidi::runtime
