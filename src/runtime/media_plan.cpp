#include "runtime/media_plan.h"

#include <algorithm>
#include <cmath>
#include <vector>


namespace vidi::runtime {

namespace {

// Room kept beside the weights when "auto" picks their format: a 10-minute video at 1 fps
// with 8-bit K/V (about 9 GiB at full size), so the usual videos still fit afterwards.
constexpr int64_t kReserveFrames = 600;
// "auto" never thins below one frame in kMaxAutoStep sampled frames.
constexpr int64_t kMaxAutoStep = 10;

std::string gib(size_t b) { return format_gib(b); }

// A weight or K/V format as the user sees it: the quantised format, or the 16-bit activation
// dtype the unquantised one is held in.
std::string held_as(const QuantFormat& f, DType act) {
    return f.quantized() ? f.name() : act == DType::f16 ? "fp16" : "bf16";
}

}  // namespace

size_t weight_bytes(const io::Checkpoint& ckpt, const QuantFormat& f) {
    // Everything inference reads is held in 16 bits (bf16 or f16 alike), except linear weights
    // that fit `f` and the f32 weights of the positional MLPs (2 bytes more per value).
    size_t total = static_cast<size_t>(ckpt.params().used) * 2;
    for (const std::string& name : ckpt.f32_weights())
        if (ckpt.has(name)) total += static_cast<size_t>(ckpt.get(name).numel()) * 2;
    for (const std::string& name : ckpt.linear_weights()) {
        if (!ckpt.has(name)) continue;
        const Tensor t = ckpt.get(name);
        const bool stored_quantized = ckpt.has(name + io::kQuantScaleSuffix);
        const int64_t N = t.dim(0), K = stored_quantized && t.dtype() == DType::u8 ? 2 * t.dim(1) : t.dim(1);
        const size_t as_bf16 = static_cast<size_t>(N * K) * 2;
        size_t held = as_bf16;
        if (stored_quantized) held = t.nbytes() + ckpt.get(name + io::kQuantScaleSuffix).nbytes();
        else if (f.quantized() && f.fits(K)) held = f.bytes(N, K);
        total = total - std::min(total, as_bf16) + held;
    }
    return total;
}

WeightChoice choose_weights(const model::Checkpoint& ckpt, const std::string& requested,
                            const std::optional<DeviceMemory>& mem, int frame_batch, DType act_dtype) {
    bool prequantized = false;
    QuantFormat stored;
    for (const std::string& name : ckpt.linear_weights())
        if (ckpt.has(name + io::kQuantScaleSuffix)) {
            const Tensor codes = ckpt.get(name), scales = ckpt.get(name + io::kQuantScaleSuffix);
            prequantized = true;
            stored.bits = codes.dtype() == DType::i8 ? 8 : 4;
            if (scales.dim(1) > 1) stored.group = static_cast<int>((stored.bits == 4 ? 2 : 1) * codes.dim(1) / scales.dim(1));
            break;
        }
    WeightChoice w;
    if (prequantized) {
        w.format = stored;
        w.bytes = weight_bytes(ckpt, stored);
        w.note = cat("weights: ", stored.name(), " as quantised in the checkpoint (", gib(w.bytes), ")");
        if (requested != "auto" && parse_quant_format(requested).name() != stored.name())
            w.note += cat("; --weights ", requested, " ignored (quantise the bf16 checkpoint instead)");
        return w;
    }
    if (requested != "auto" || !mem) {
        w.format = requested == "auto" ? QuantFormat{} : parse_quant_format(requested);
        w.bytes = weight_bytes(ckpt, w.format);
        w.note = cat("weights: ", held_as(w.format, act_dtype), " (", gib(w.bytes), ")");
        return w;
    }
    // auto on a GPU: the most faithful format that leaves room for a 10-minute video.
    const model::ModelConfig& c = ckpt.config();
    const model::Family& family = ckpt.family();
    const int64_t reserve_side = family.token_grid_side(c, kReserveFrames, family.default_visual_budget());
    const size_t reserve = plan_video(c, kReserveFrames, reserve_side,
                                      kReserveFrames * family.audio_tokens_per_second(c), frame_batch, act_dtype,
                                      QuantFormat{8, 0})
                               .total();
    const size_t avail = available_bytes(*mem);
    std::string tried;
    for (QuantFormat f : {QuantFormat{}, QuantFormat{8, 0}, QuantFormat{4, 64}}) {
        const size_t bytes = weight_bytes(ckpt, f);
        if (bytes + reserve <= avail) {
            w = {f, bytes,
                 cat("weights: ", held_as(f, act_dtype), " (", gib(bytes), ") chosen for ", gib(avail), " available")};
            if (!tried.empty()) w.note += cat("; ", tried, " would leave less than ", gib(reserve),
                                              " for a 10-minute video");
            return w;
        }
        tried += cat(tried.empty() ? "" : ", ", held_as(f, act_dtype), " needs ", gib(bytes));
        w = {f, bytes, {}};
    }
    // Even 4-bit leaves less than the reserve: take it if the weights themselves fit.
    w.note = cat("weights: ", held_as(w.format, act_dtype), " (", gib(w.bytes), "): only ", gib(avail),
                 " available, so long videos will be thinned or refused");
    return w;
}

std::string MediaChoice::summary() const {
    std::string s = cat(frames, " frames x ", side, "x", side, " = ", visual_tokens(), " visual + ", audio_tokens,
                        " audio tokens, media K/V ", held_as(kv, act));
    if (budget != default_budget) s += cat(", visual budget ", budget);
    if (step > 1) s += cat(" (1 frame in ", step, ")");
    if (tokens_on_host) s += ", media tokens kept on the host";
    return s;
}

std::string MediaChoice::describe() const {
    return summary() + (why.empty() ? "" : cat(" [", why, "]")) + cat("; needs ", plan.describe());
}

namespace {
// The K/V formats "auto" may take, most faithful first.
const QuantFormat kAutoKv[] = {QuantFormat{}, QuantFormat{8, 0}, QuantFormat{4, 0}};

// Where the media tokens may be kept, the device first (no copies; saving the video is free).
std::vector<bool> token_placements(const std::string& tokens, bool planned) {
    VIDI_CHECK(tokens == "auto" || tokens == "device" || tokens == "host", "media token placement '", tokens,
               "' is not one of auto, device, host");
    if (tokens == "auto") return planned ? std::vector<bool>{false, true} : std::vector<bool>{false};
    return {tokens == "host"};
}

QuantFormat requested_kv(const std::string& kv) {
    VIDI_CHECK(kv == "auto" || kv == "bf16" || kv == "int8" || kv == "int4", "media K/V format '", kv,
               "' is not one of auto, bf16, int8, int4");
    return kv == "int8" ? QuantFormat{8, 0} : kv == "int4" ? QuantFormat{4, 0} : QuantFormat{};
}
}  // namespace

double planned_audio_seconds(const media::VideoInfo& info) {
    if (!info.has_audio) return 0;
    const double packets_s = info.avg_fps > 0 ? static_cast<double>(info.frame_count) / info.avg_fps : info.duration;
    return std::max(0.0, std::min(info.duration, 1.25 * packets_s + 60));
}

MediaChoice choose_media(const model::ModelConfig& c, int64_t frames, int64_t audio_tokens, const MediaRequest& req, const std::optional<DeviceMemory>& mem,
                         int frame_batch, DType act_dtype) {
    const QuantFormat asked = requested_kv(req.kv);
    VIDI_CHECK(req.visual_budget >= 0, "the visual-token budget must be positive");
    VIDI_CHECK(c.family, "choose_media: the config has no model family");
    const model::Family& family = *c.family;
    const int64_t default_budget = family.default_visual_budget();
    const int64_t min_side = family.min_token_grid_side(c), min_per_frame = min_side * min_side;
    auto shape = [&](const QuantFormat& kv, int64_t budget, bool on_host) {
        MediaChoice m;
        m.act = act_dtype;
        m.kv = kv;
        m.tokens_on_host = on_host;
        m.budget = budget;
        m.default_budget = default_budget;
        m.audio_tokens = audio_tokens;
        const int side = family.token_grid_side(c, frames, budget);
        m.step = 1;
        if (budget < default_budget && frames * side * side > budget)
            m.step = (frames * side * side + budget - 1) / budget;
        m.frames = (frames + m.step - 1) / m.step;
        m.side = family.token_grid_side(c, m.frames, budget);
        m.plan = plan_video(c, m.frames, m.side, audio_tokens, frame_batch, act_dtype, kv, on_host);
        return m;
    };
    // "auto" on a GPU tries every K/V format at every frame before it drops any frame.
    std::vector<QuantFormat> kvs;
    if (req.kv == "auto" && mem) kvs.assign(std::begin(kAutoKv), std::end(kAutoKv));
    else kvs = {asked};
    const int64_t full = req.visual_budget ? req.visual_budget : default_budget;
    VIDI_CHECK(full >= 2 * min_per_frame, "a visual-token budget of ", full, " is below two frames of ",
               min_per_frame, " tokens");
    const std::vector<bool> places = token_placements(req.tokens, mem.has_value());
    if (!mem) return shape(kvs.front(), full, places.front());
    const size_t avail = available_bytes(*mem);
    std::string tried;  // the more faithful choices that did not fit, with what they need
    for (const QuantFormat& kv : kvs)
        for (const bool on_host : places) {
            MediaChoice m = shape(kv, full, on_host);
            if (m.plan.total() <= avail) {
                if (!tried.empty())
                    m.why = cat(tried, " of the ", gib(avail), " available; ", held_as(kv, act_dtype),
                                on_host ? " with the tokens on the host" : "", " keeps every frame");
                return m;
            }
            tried += cat(tried.empty() ? "" : ", ", held_as(kv, act_dtype), " K/V",
                         on_host ? " with the tokens on the host" : "", " would need ", gib(m.plan.total()));
        }
    // Auto budget: the largest that fits with the most compact choice, down to 1 frame in kMaxAutoStep.
    const QuantFormat kv = kvs.back();
    const bool on_host = places.back();
    const int64_t floor = min_per_frame * std::max<int64_t>(2, (frames + kMaxAutoStep - 1) / kMaxAutoStep);
    MediaChoice smallest = shape(kv, std::min(full, floor), on_host);
    if (req.visual_budget == 0 && smallest.plan.total() <= avail) {
        int64_t lo = smallest.budget, hi = full;  // lo fits, hi does not
        while (hi - lo > min_per_frame) {
            const int64_t mid = lo + (hi - lo) / 2;
            (shape(kv, mid, on_host).plan.total() <= avail ? lo : hi) = mid;
        }
        MediaChoice m = shape(kv, lo, on_host);
        m.why = cat("fewer tokens: ", tried, " of the ", gib(avail), " available");
        return m;
    }
    const MediaChoice& least = req.visual_budget ? shape(kv, full, on_host) : smallest;
    const size_t short_by = least.plan.total() - std::min(least.plan.total(), avail);
    std::string hint = mem->limit ? cat("; it would fit with --gpu-memory ", format_gib(mem->limit + short_by))
                                  : cat("; it needs ", format_gib(short_by), " more free GPU memory");
    fail("not enough GPU memory for this video even at its most compact (", least.describe(), "): only ",
         format_gib(avail), " is available", hint,
         req.visual_budget ? " or a smaller --visual-tokens" : "");
}

std::string cost_of_holding(size_t bytes, const model::ModelConfig& c, int64_t frames, int64_t audio_tokens,
                            const MediaRequest& req, const DeviceMemory& mem, int frame_batch, DType act_dtype) {
    std::optional<MediaChoice> without;
    try {
        without = choose_media(c, frames, audio_tokens, req, mem, frame_batch, act_dtype);
    } catch (const Error&) {
        return {};
    }
    const std::string taking = cat("taking ", format_gib(bytes), " of GPU memory");
    try {
        const MediaChoice with =
            choose_media(c, frames, audio_tokens, req, with_held(mem, bytes), frame_batch, act_dtype);
        if (with.summary() == without->summary()) return {};
        return cat(taking, " would make this video ", with.summary(), " instead of ", without->summary());
    } catch (const Error&) {
        return cat(taking, " would leave too little for this video");
    }
}

QuantFormat choose_kv_for_tokens(const model::ModelConfig& c, int64_t tokens, const std::string& requested,
                                 const std::optional<DeviceMemory>& mem, DType act_dtype) {
    const QuantFormat asked = requested_kv(requested);
    if (requested != "auto" || !mem) return asked;
    // The most faithful format whose K/V fit (the tokens exist already: no working set);
    // 4 bits when none does (encoding then says how short memory is).
    for (const QuantFormat& kv : kAutoKv)
        if (c.family->media_kv_bytes(c, tokens, act_dtype, kv) <= available_bytes(*mem)) return kv;
    return kAutoKv[2];
}

}  // namespace vidi::runtime
