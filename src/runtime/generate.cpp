#include "runtime/generate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "runtime/seconds_since.h"
namespace vidi::runtime {

std::vector<TopPick> checked_top_picks(Backend& be, const Tensor& logits) {
    std::vector<TopPick> picks = be.top_picks(logits);
    // No value above -inf (all NaN), or an infinite top and second, leaves the margin NaN.
    for (const TopPick& p : picks)
        if (std::isnan(p.margin))
            fail("the model's logits are not numbers (NaN or infinite): the checkpoint's weights or its "
                 "config.json (rms_norm_eps, rope_theta, …) break the computation; `vidi inspect --values` "
                 "reads every weight for NaN and infinity");
    return picks;
}

int64_t context_for(const model::Decoder& model, size_t prompt_tokens, int max_new_tokens) {
    const int64_t limit = model.max_positions();
    const int64_t want = static_cast<int64_t>(prompt_tokens) + std::max(max_new_tokens, 0);
    if (static_cast<int64_t>(prompt_tokens) >= limit)
        fail("the prompt has ", prompt_tokens, " tokens but the model's context holds ", limit,
             " (max_position_embeddings); shorten the question");
    return std::min(want, limit);
}

GenerationResult generate(const model::Decoder& model, const GenerationRequest& req) {
    GenerationResult out;
    out.prompt_tokens = static_cast<int>(req.prompt.size());
    VIDI_CHECK(req.max_new_tokens >= 0, "max_new_tokens must not be negative");
    int64_t capacity = context_for(model, req.prompt.size(), req.max_new_tokens);
    model::TextCache cache = model.new_cache(capacity);

    auto t0 = std::chrono::steady_clock::now();
    if (req.progress) req.progress("prefill", 0, static_cast<int64_t>(req.prompt.size()));
    Backend& be = model.backend();
    Tensor logits;
    {
        const Section s = be.section("prefill");
        logits = model.forward_on_device(req.prompt, cache, req.media, req.keep_prompt_logits);
    }
    if (req.keep_prompt_logits) out.prompt_logits = be.to_host(logits);
    // Greedy decoding needs only each step's top pick, found where the logits are.
    TopPick pick = checked_top_picks(be, logits.rows(logits.dim(0) - 1, logits.dim(0)))[0];
    out.prefill_s = seconds_since(t0);

    auto t1 = std::chrono::steady_clock::now();
    for (int step = 0; step < req.max_new_tokens; ++step) {
        if (std::find(req.stop_ids.begin(), req.stop_ids.end(), pick.id) != req.stop_ids.end()) {
            out.stopped = true;
            break;
        }
        out.ids.push_back(pick.id);
        out.margins.push_back(pick.margin);
        if (req.progress) req.progress("generate", step + 1, req.max_new_tokens);
        if (step + 1 == req.max_new_tokens || cache.length >= cache.capacity) break;
        Tensor step_logits;
        {
            const Section s = be.section("decoding step");
            step_logits = model.forward_on_device({pick.id}, cache, req.media, false);
        }
        pick = checked_top_picks(be, step_logits)[0];
    }
    out.generate_s = seconds_since(t1);
    return out;
}

Tensor forced_logits(const model::Decoder& model, const std::vector<int32_t>& prompt,
                     const std::vector<const model::MediaKV*>& media, const std::vector<int32_t>& forced) {
    const int64_t V = model.vocab(), n = static_cast<int64_t>(forced.size());
    model::TextCache cache = model.new_cache(context_for(model, prompt.size(), static_cast<int>(n)));
    Tensor out = Tensor::empty({n + 1, V}, DType::f32);
    Tensor first = model.forward(prompt, cache, media, false);
    std::memcpy(out.data<float>(), first.data<float>(), V * sizeof(float));
    for (int64_t i = 0; i < n; ++i) {
        Tensor step = model.forward({forced[i]}, cache, media, false);
        std::memcpy(out.data<float>() + (i + 1) * V, step.data<float>(), V * sizeof(float));
    }
    return out;
}

}  // namespace vidi::runtime
