#include "runtime/generate.h"

#include <chrono>
#include <cstring>
#include <limits>

namespace vidi::runtime {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::pair<int32_t, float> argmax_with_margin(const float* logits, int64_t n) {
    int32_t best = 0;
    float top = -std::numeric_limits<float>::infinity(), second = top;
    for (int64_t i = 0; i < n; ++i) {
        if (logits[i] > top) {
            second = top;
            top = logits[i];
            best = static_cast<int32_t>(i);
        } else if (logits[i] > second) {
            second = logits[i];
        }
    }
    return {best, top - second};
}

int64_t context_for(const model::Gemma2& model, size_t prompt_tokens, int max_new_tokens) {
    const int64_t limit = model.config().max_positions;
    const int64_t want = static_cast<int64_t>(prompt_tokens) + std::max(max_new_tokens, 0);
    if (static_cast<int64_t>(prompt_tokens) >= limit)
        fail("the prompt has ", prompt_tokens, " tokens but the model's context holds ", limit,
             " (max_position_embeddings); shorten the question");
    return std::min(want, limit);
}

GenerationResult generate(const model::Gemma2& model, const GenerationRequest& req) {
    GenerationResult out;
    VIDI_CHECK(req.max_new_tokens >= 0, "max_new_tokens must not be negative");
    int64_t capacity = context_for(model, req.prompt.size(), req.max_new_tokens);
    model::TextCache cache = model.new_cache(capacity);
    const int64_t V = model.config().vocab;

    auto t0 = std::chrono::steady_clock::now();
    if (req.progress) req.progress("prefill", 0, static_cast<int64_t>(req.prompt.size()));
    Tensor logits = model.forward(req.prompt, cache, req.media, req.keep_prompt_logits);
    if (req.keep_prompt_logits) out.prompt_logits = logits;
    out.prefill_s = seconds_since(t0);

    auto t1 = std::chrono::steady_clock::now();
    const float* last = logits.data<float>() + (logits.dim(0) - 1) * V;
    std::vector<float> row(last, last + V);
    for (int step = 0; step < req.max_new_tokens; ++step) {
        auto [id, margin] = argmax_with_margin(row.data(), V);
        if (id == req.stop_id) {
            out.stopped = true;
            break;
        }
        out.ids.push_back(id);
        out.margins.push_back(margin);
        if (req.progress) req.progress("generate", step + 1, req.max_new_tokens);
        if (step + 1 == req.max_new_tokens || cache.length >= cache.capacity) break;
        Tensor next = model.forward({id}, cache, req.media, false);
        std::memcpy(row.data(), next.data<float>(), V * sizeof(float));
    }
    out.generate_s = seconds_since(t1);
    return out;
}

Tensor forced_logits(const model::Gemma2& model, const std::vector<int32_t>& prompt,
                     const std::vector<const model::MediaKV*>& media, const std::vector<int32_t>& forced) {
    const int64_t V = model.config().vocab, n = static_cast<int64_t>(forced.size());
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
