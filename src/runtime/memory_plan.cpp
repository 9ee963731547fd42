#include "runtime/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "model/gemma2.h"
#include "model/media_tokens.h"

namespace vidi::runtime {

namespace {
constexpr size_t kMargin = size_t(256) << 20;  // library workspaces, logits, text cache
}  // namespace

std::string format_gib(size_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / double(1ull << 30));
    return buf;
}

std::string VideoMemoryPlan::describe() const {
    return cat(format_gib(total()), " (media K/V ", format_gib(media_kv), ", media tokens ", format_gib(media_tokens),
               ", working set ", format_gib(activations), ")");
}

size_t media_kv_bytes(const io::ModelConfig& c, int64_t tokens, DType act_dtype, const QuantFormat& kv) {
    const Shape shape{tokens, c.llm.kv_heads, c.llm.head_dim};
    const MediaKvFormat f = media_kv_format(kv.bits, c.llm.head_dim);
    const size_t per_layer = kv.quantized() ? f.key.bytes(shape) + f.value.bytes(shape)
                                            : 2 * static_cast<size_t>(tokens * c.llm.kv_heads * c.llm.head_dim) *
                                                  dtype_size(act_dtype);
    return static_cast<size_t>(c.llm.layers) * per_layer;
}

VideoMemoryPlan plan_video(const io::ModelConfig& c, int64_t frames, int64_t side, int64_t audio_tokens,
                           int frame_batch, DType act_dtype, const QuantFormat& kv) {
    const size_t e = dtype_size(act_dtype);
    const int64_t D = c.llm.hidden, visual = frames * side * side, tokens = visual + audio_tokens;
    VideoMemoryPlan p;
    p.media_tokens = static_cast<size_t>(tokens * D) * e;
    p.media_kv = media_kv_bytes(c, visual, act_dtype, kv) + media_kv_bytes(c, audio_tokens, act_dtype, kv);
    // A media chunk through one layer: the f32 residual, then in the activation dtype the norm,
    // K, V, repeated V, o_proj, gate, up, act, down.
    const int64_t chunk = std::min<int64_t>(std::max<int64_t>(visual, audio_tokens), model::kMediaKvChunk);
    const size_t kv_chunk = static_cast<size_t>(chunk * D) * sizeof(float) +
        static_cast<size_t>(chunk * (3 * D + 2 * int64_t(c.llm.kv_heads) * c.llm.head_dim +
                                     int64_t(c.llm.heads) * c.llm.head_dim + 3 * int64_t(c.llm.intermediate)) * e);
    // A SigLIP batch: pixels, patches, a few hidden states, the MLP and the attention scores.
    const int64_t n = frame_batch, T = int64_t(c.vision.grid()) * c.vision.grid(), C = c.vision.hidden;
    // f32 attention scores, held a chunk at a time; none where the GPU's fused kernel takes the
    // tower's head dim (Vidi1.5-9B's two towers).
    auto scores = [](int64_t count, int64_t rows, int64_t head_dim) {
        if (gpu_fused_attention(head_dim)) return size_t(0);
        return std::min(static_cast<size_t>(count * rows * rows) * sizeof(float), kAttentionScoreBytes);
    };
    const size_t vision = static_cast<size_t>(
        n * (3 * int64_t(c.vision.image_size) * c.vision.image_size + T * (6 * C + c.vision.intermediate)) * e) +
        scores(n * c.vision.heads, T, C / std::max(1, c.vision.heads));
    // A batch of Whisper pieces: 3000 mel frames, 1500 states, their MLP, the attention scores,
    // then its tokens through the glue (pooled states, projector, norms); beside them the
    // log-mel of the whole audio, held until the tower is done (an hour: 120 pieces).
    const int64_t A = c.audio.d_model, pieces = model::kAudioPiecesPerBatch, pool = std::max(1, c.mm.audio_pool);
    const int64_t all_pieces = (audio_tokens * pool + 1499) / 1500, batch_tokens = pieces * 1500 / pool;
    const size_t whisper = static_cast<size_t>(pieces * (3000 * (int64_t(c.audio.mel_bins) + 3 * A) +
                                                         1500 * (6 * A + c.audio.ffn)) * e) +
                           scores(pieces * c.audio.heads, 1500, A / std::max(1, c.audio.heads)) +
                           static_cast<size_t>(batch_tokens * (A * pool + 4 * D) * e) +
                           static_cast<size_t>(all_pieces * c.audio.mel_bins * 3000) * e;
    p.activations = std::max({kv_chunk, vision, whisper}) + kMargin;
    return p;
}

size_t available_bytes(const DeviceMemory& m) {
    const size_t device = m.free + m.cached;
    if (!m.limit) return device;
    const size_t held = m.in_use + m.outside;
    const size_t capped = m.limit > held ? m.limit - held : 0;
    return std::min(device, capped);
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

size_t parse_bytes(const std::string& text) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    double value = 0;
    try {
        value = std::stod(text.substr(0, i));
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
    return static_cast<size_t>(value * scale);
}

}  // namespace vidi::runtime
