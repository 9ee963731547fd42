// Vidi-7B's prompt as the official Vidi_7B/inference.py and the checkpoint's Mistral chat
// template build it (docs/vidi-7b.md §5), against the ids of the float reference's golden file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "model/common/chat_template.h"
#include "model/family.h"
#include "model/vidi7b/family.h"
#include "model/vidi7b/vidi7b.h"
#include "support/test_support.h"

using namespace vidi;
namespace v7 = vidi::model::vidi7b;

namespace {

const std::string kPrefix =
    "Given the frames from a video, answer the time range in percentage that corresponds to query text split by "
    "comma. Video length is: ";

io::Tokenizer tiny_tokenizer() { return io::Tokenizer::load(test::tiny_vidi7b_dir() + "/tokenizer.model"); }

std::vector<int32_t> golden_ids(const char* name) {
    auto g = io::SafetensorsFile::open(test::vidi7b_data_dir() + "/tiny-vidi7b_synth.golden.safetensors");
    const Tensor t = g->get(name);
    std::vector<int32_t> out;
    for (int64_t i = 0; i < t.numel(); ++i) out.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
    return out;
}

}  // namespace

TEST(Vidi7bPrompt, QuestionHasTheLengthWithTwoDecimalsAndDropsOneTrailingDot) {
    EXPECT_EQ(v7::retrieval_question("a moving colour pattern", 12.012),
              kPrefix + "12.01 and text query is: a moving colour pattern.");
    EXPECT_EQ(v7::retrieval_question("slicing onion.", 65.7), kPrefix + "65.70 and text query is: slicing onion.");
    // '{:.2f}' rounds the binary value: 24.625 is exact and goes to even, 0.125 likewise.
    EXPECT_EQ(v7::retrieval_question("x", 24.625), kPrefix + "24.62 and text query is: x.");
    EXPECT_EQ(v7::retrieval_question("x", 0.125), kPrefix + "0.12 and text query is: x.");
    EXPECT_EQ(v7::retrieval_question("x", 3600), kPrefix + "3600.00 and text query is: x.");
    // Only one '.' goes and whitespace stays, as question[:-1] if question.endswith('.').
    EXPECT_EQ(v7::retrieval_question("a..", 1), kPrefix + "1.00 and text query is: a..");
    EXPECT_EQ(v7::retrieval_question("a. ", 1), kPrefix + "1.00 and text query is: a. .");
    EXPECT_THROW(v7::retrieval_question(" \n", 1), Error);
    EXPECT_THROW(v7::retrieval_question(".", 1), Error);  // blank once its dot is gone
    EXPECT_THROW(v7::retrieval_question(" .", 1), Error);
    EXPECT_THROW(v7::retrieval_question("x", -1), Error);
}

TEST(Vidi7bPrompt, RetrievalPromptIdsEqualTheReferences) {
    const io::Tokenizer tok = tiny_tokenizer();
    const std::string q = v7::retrieval_question("a moving colour pattern", 12.012);
    const std::vector<int32_t> ids = v7::build_prompt(tok, q, true);
    EXPECT_EQ(ids, golden_ids("prompt_ids"));
    // "[INST] " and "\n{question} [/INST]" tokenised apart (split at <image>), one <s>.
    ASSERT_GE(ids.size(), 2u);
    EXPECT_EQ(ids[0], 1);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 1), 1);
    const std::vector<int32_t> head = tok.encode("[INST] "), tail = tok.encode("\n" + q + " [/INST]");
    ASSERT_EQ(ids.size(), 1 + head.size() + tail.size());
    EXPECT_TRUE(std::equal(head.begin(), head.end(), ids.begin() + 1));
    EXPECT_TRUE(std::equal(tail.begin(), tail.end(), ids.begin() + 1 + static_cast<std::ptrdiff_t>(head.size())));
}

TEST(Vidi7bPrompt, TextOnlyPromptIdsEqualTheReferences) {
    const io::Tokenizer tok = tiny_tokenizer();
    EXPECT_EQ(v7::build_prompt(tok, "Describe the scene.", false), golden_ids("text_prompt_ids"));
    EXPECT_THROW(v7::build_prompt(tok, " \t", false), Error);
}

TEST(Vidi7bPrompt, StopsAtTheConfigsEosIds) {
    const io::Tokenizer tok = tiny_tokenizer();
    model::ModelConfig c = model::load_config(test::tiny_vidi7b_dir());
    EXPECT_EQ(v7::family().stop_ids(tok, c), (std::vector<int32_t>{2}));
    nlohmann::json j = io::read_json_file(test::tiny_vidi7b_dir() + "/config.json");
    j["eos_token_id"] = {2, 7};
    c = model::config_from_json(j, test::tiny_vidi7b_dir());
    EXPECT_EQ(v7::family().stop_ids(tok, c), (std::vector<int32_t>{2, 7}));
    j["eos_token_id"] = nlohmann::json::array();
    EXPECT_THAT(test::error_of([&] { model::config_from_json(j, test::tiny_vidi7b_dir()); }),
                testing::HasSubstr("\"eos_token_id\" is an empty list"));
}

TEST(Vidi7bPrompt, TheTinyCheckpointsTemplateIsTheBuiltInOne) {
    const model::Family& f = v7::family();
    ASSERT_TRUE(model::checkpoint_chat_template(test::tiny_vidi7b_dir()));
    EXPECT_FALSE(model::chat_template_warning(test::tiny_vidi7b_dir(), f.chat_templates(), f.name()));
}
