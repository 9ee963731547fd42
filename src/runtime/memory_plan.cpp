#include "runtime/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "runtime/media_kv_writer.h"

namespace vidi::runtime {

std::string format_gib(size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / double(1ull << 30));
    return buf;
}

std::string VideoMemoryPlan::describe() const {
    return cat(format_gib(total()), " (media K/V ", format_gib(media_kv), ", media tokens ", format_gib(media_tokens),
               tokens_on_host ? " staged, kept on the host" : "", ", working set ", format_gib(activations), ")");
}

VideoMemoryPlan plan_video(const model::ModelConfig& c, int64_t frames, int64_t side, int64_t audio_tokens,
                           int frame_batch, DType act_dtype, const QuantFormat& kv, bool tokens_on_host) {
    VIDI_CHECK(c.family, "plan_video: the config has no model family");
    VideoMemoryPlan p;
    static_cast<model::VideoFootprint&>(p) =
        c.family->video_footprint(c, {frames, side, audio_tokens}, frame_batch, act_dtype, kv);
    if (tokens_on_host) {  // each stream's staging buffer instead of its [n, D] tokens
        p.tokens_on_host = true;
        const int64_t D = c.llm.hidden;
        p.media_tokens = media_token_bytes(frames * side * side, D, act_dtype, true) +
                         media_token_bytes(audio_tokens, D, act_dtype, true);
    }
    return p;
}

size_t available_bytes(const DeviceMemory& m) {
    const size_t device = m.free + m.cached;
    if (!m.limit) return device;
    const size_t held = m.in_use + m.outside;
    const size_t capped = m.limit > held ? m.limit - held : 0;
    return std::min(device, capped);
}

DeviceMemory with_held(DeviceMemory m, size_t bytes) {
    const size_t from_free = std::min(bytes, m.free);
    m.free -= from_free;
    m.cached -= std::min(bytes - from_free, m.cached);
    m.in_use += bytes;
    return m;
}

void require_fits(const std::string& what, size_t needed, const DeviceMemory& m, const std::string& detail) {
    const size_t avail = available_bytes(m);
    if (needed <= avail) return;
    std::string limit = m.limit ? cat(" under --gpu-memory ", format_gib(m.limit),
                                      m.outside ? cat(" (", format_gib(m.outside), " of it the CUDA context)") : "",
                                      ",")
                                : std::string();
    fail("not enough GPU memory for ", what, ": needs ", detail.empty() ? format_gib(needed) : detail, " but only ",
         format_gib(avail), " is available (", format_gib(m.free), " free on the device of ", format_gib(m.total),
         ",", limit, " ", format_gib(m.in_use), " already held by vidi)");
}

Fp8CopyChoice choose_fp8_copies(size_t copy_bytes, size_t weight_bytes, const DeviceMemory& m) {
    const size_t avail = available_bytes(m);
    const size_t left = avail > weight_bytes ? avail - weight_bytes : 0;
    Fp8CopyChoice c;
    c.keep = copy_bytes <= left / 4;
    c.note = c.keep ? cat("FP8 copies of those weights kept (", format_gib(copy_bytes), " of the ",
                          format_gib(left), " left after the weights)")
                    : cat("those weights converted to FP8 at each call: their FP8 copies (",
                          format_gib(copy_bytes), ") would take more than a quarter of the ", format_gib(left),
                          " left after the weights");
    return c;
}

}  // namespace vidi::runtime

namespace vidi {

size_t parse_bytes(const std::string& text) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    double value = 0;
    try {
        size_t used = 0;  // the whole number: "1.2.3G" is not 1.2G
        value = std::stod(text.substr(0, i), &used);
        if (used != i) throw std::invalid_argument(text);
    } catch (const std::logic_error&) {
        fail("'", text, "' is not a memory size (examples: 19GiB, 20G, 512MiB)");
    }
    std::string unit = text.substr(i);
    for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    double scale = 0;
    if (unit.empty() || unit == "b") scale = 1;
    else if (unit == "k" || unit == "kib") scale = 1024.0;
    else if (unit == "m" || unit == "mib") scale = 1024.0 * 1024;
    else if (unit == "g" || unit == "gib") scale = 1024.0 * 1024 * 1024;
    else if (unit == "kb") scale = 1e3;
    else if (unit == "mb") scale = 1e6;
    else if (unit == "gb") scale = 1e9;
    else fail("'", text, "': unknown unit '", unit, "' (use GiB, MiB, GB, MB or bytes)");
    VIDI_CHECK(value > 0 && std::isfinite(value), "'", text, "' is not a positive memory size");
    // Past 2^63 bytes the cast to size_t is undefined; no machine has an exbibyte of memory.
    VIDI_CHECK(value * scale < 0x1p63, "'", text, "' is larger than any memory");
    // Under a byte the cast gives 0, which callers read as "no limit".
    VIDI_CHECK(value * scale >= 1, "'", text, "' is less than a byte");
    return static_cast<size_t>(value * scale);
}

}  // namespace vidi
