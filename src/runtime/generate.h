// Greedy generation over a family's decoder (model/decoder.h): one prefill of the prompt,
// then token-by-token decoding with the text KV cache until a stop id or a limit.
#pragma once

#include <cstdint>
#include <vector>

#include "model/decoder.h"
#include "vidi/vidi.h"

namespace vidi::runtime {

struct GenerationRequest {
    std::vector<int32_t> prompt;
    std::vector<const model::MediaKV*> media;
    int max_new_tokens = 1024;
    std::vector<int32_t> stop_ids;  // the family's (Family::stop_ids)
    bool keep_prompt_logits = false;
    ProgressFn progress;
};

struct GenerationResult {
    std::vector<int32_t> ids;     // generated, stop id excluded
    std::vector<float> margins;   // top-1 minus top-2 logit at each step
    bool stopped = false;         // a stop id was produced
    Tensor prompt_logits;         // [T, V] when asked for
    int prompt_tokens = 0;
    int prefill_rows = 1;  // prompts prefilled together with this one
    double prefill_s = 0, generate_s = 0;
};

// Greedy decoding's picks (Backend::top_picks) for each row of logits, refusing logits that
// are not numbers: NaN everywhere (NaN weights, a config that breaks a norm) picked id 0 each
// step and answered an empty text with success.
std::vector<TopPick> checked_top_picks(Backend& be, const Tensor& logits);

// Text positions needed for a prompt and answer, checked against the model's context.
int64_t context_for(const model::Decoder& model, size_t prompt_tokens, int max_new_tokens);

GenerationResult generate(const model::Decoder& model, const GenerationRequest& req);

// Logits at positions T-1 .. T+n-1 when `forced` is appended to the prompt one token at
// a time (teacher forcing through the incremental path): [n+1, V].
Tensor forced_logits(const model::Decoder& model, const std::vector<int32_t>& prompt,
                     const std::vector<const model::MediaKV*>& media, const std::vector<int32_t>& forced);

}  // namespace vidi::runtime
