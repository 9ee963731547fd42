// The decoder alone against the golden float64 reference: media tokens and prompt ids are
// taken from the golden files, so only the decoder, caches and generation are measured.
#include <gtest/gtest.h>

#include "backend/backend.h"
#include "model/config.h"
#include "io/safetensors.h"
#include "model/vidi15/gemma2.h"
#include "runtime/generate.h"
#include "runtime/tiny_decoder.h"
#include "support/test_support.h"

using namespace vidi;
using test::ids_of;

namespace {

using Fixture = test::TinyDecoder;

Fixture& fixture() {
    static Fixture f;
    return f;
}

// Greedy ids must agree up to the first step where the reference itself is undecided.
void expect_same_greedy(const std::vector<int32_t>& got, const Tensor& want_ids, const Tensor& margins) {
    auto want = ids_of(want_ids);
    ASSERT_GE(got.size(), 1u);
    size_t checked = 0;
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
        if (margins.data<float>()[i] <= 0.05f) break;
        EXPECT_EQ(got[i], want[i]) << "step " << i;
        ++checked;
    }
    EXPECT_GE(checked, 1u) << "no step had a clear margin";
}

class DecoderGolden : public testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(DecoderGolden, PromptForcedAndGreedyMatchReference) {
    Fixture& f = fixture();
    auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_" + GetParam() + ".golden.safetensors"));
    model::MediaKV visual = f.decoder.encode_media(f.backend->upload(golden->get("image_tokens")));
    model::MediaKV audio = f.decoder.encode_media(f.backend->upload(golden->get("audio_tokens")));
    std::vector<const model::MediaKV*> media{&visual, &audio};
    auto prompt = ids_of(golden->get("prompt_ids"));

    runtime::GenerationRequest req;
    req.prompt = prompt;
    req.media = media;
    req.max_new_tokens = 16;
    req.stop_ids = {107};  // <end_of_turn>
    req.keep_prompt_logits = true;
    runtime::GenerationResult r = runtime::generate(f.decoder, req);
    EXPECT_LT(test::rel_error(r.prompt_logits, golden->get("prompt_logits")), 1e-5);
    expect_same_greedy(r.ids, golden->get("generated_ids"), golden->get("generated_margins"));

    // Teacher forcing through the incremental path crosses the sliding window (8).
    Tensor forced = runtime::forced_logits(f.decoder, prompt, media, ids_of(golden->get("forced_ids")));
    EXPECT_LT(test::rel_error(forced, golden->get("forced_logits")), 1e-5);
}

TEST_P(DecoderGolden, TextOnlyTurnMatchesReference) {
    Fixture& f = fixture();
    auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_" + GetParam() + ".golden.safetensors"));
    runtime::GenerationRequest req;
    req.prompt = ids_of(golden->get("text_prompt_ids"));
    req.max_new_tokens = 16;
    req.stop_ids = {107};  // <end_of_turn>
    req.keep_prompt_logits = true;
    runtime::GenerationResult r = runtime::generate(f.decoder, req);
    EXPECT_LT(test::rel_error(r.prompt_logits, golden->get("text_prompt_logits")), 1e-5);
    expect_same_greedy(r.ids, golden->get("text_generated_ids"), golden->get("text_generated_margins"));
}

INSTANTIATE_TEST_SUITE_P(Golden, DecoderGolden, testing::Values("synth", "dummy"));

TEST(Decoder, PromptLongerThanContextIsAClearError) {
    Fixture& f = fixture();
    std::vector<int32_t> prompt(static_cast<size_t>(f.config.llm.max_positions) + 1, 5);
    runtime::GenerationRequest req;
    req.prompt = prompt;
    try {
        runtime::generate(f.decoder, req);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("context holds"), std::string::npos) << e.what();
    }
}
