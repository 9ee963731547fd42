// The SentencePiece tokenizer against the golden prompt ids.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "io/json_file.h"
#include "io/tokenizer.h"
#include "support/test_support.h"

using namespace vidi;
using test::error_of;
using io::Tokenizer;
using testing::HasSubstr;

namespace {

// Gemma's chat markers are special: decoding drops them (the Vidi1.5 family says so).
Tokenizer golden_tokenizer() {
    return Tokenizer::load(test::tiny_model_dir() + "/tokenizer.model",
                           {"<start_of_turn>", "<end_of_turn>", "<mask>", "[multimodal]"});
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// SPEC.md §5: the chat string is split at <image>; each half is tokenised on its own.
std::vector<int32_t> media_prompt_ids(const Tokenizer& tok, const std::string& text) {
    return concat(concat({tok.bos_id()}, tok.encode("<start_of_turn>user\n")),
                  tok.encode("\n" + text + "<end_of_turn>\n<start_of_turn>model\n"));
}

std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }


}  // namespace

TEST(Tokenizer, GoldenSpecialIds) {
    Tokenizer tok = golden_tokenizer();
    EXPECT_EQ(tok.vocab_size(), 1024);
    EXPECT_EQ(tok.pad_id(), 0);
    EXPECT_EQ(tok.eos_id(), 1);
    EXPECT_EQ(tok.bos_id(), 2);
    EXPECT_EQ(tok.piece_to_id("<start_of_turn>"), 106);
    EXPECT_EQ(tok.piece_to_id("<end_of_turn>"), 107);
    EXPECT_EQ(tok.piece_to_id("\n"), 108);
    EXPECT_EQ(tok.piece_to_id("no-such-piece"), -1);
    EXPECT_EQ(tok.id_to_piece(106), "<start_of_turn>");
    // User-defined specials inside text become their single ids.
    EXPECT_EQ(tok.encode("<start_of_turn>"), (std::vector<int32_t>{106}));
    EXPECT_EQ(tok.encode("<end_of_turn>\n"), (std::vector<int32_t>{107, 108}));
}

TEST(Tokenizer, ReproducesGoldenMediaPromptIds) {
    Tokenizer tok = golden_tokenizer();
    auto summary = io::read_json_file(test::golden_path("summary.json"));
    int cases = 0;
    for (auto& [name, c] : summary.items()) {
        EXPECT_EQ(media_prompt_ids(tok, c["prompt_text"].get<std::string>()), ids_of(c["prompt_ids"])) << name;
        ++cases;
    }
    EXPECT_EQ(cases, 2);
}

TEST(Tokenizer, ReproducesGoldenTextOnlyPromptIds) {
    Tokenizer tok = golden_tokenizer();
    auto summary = io::read_json_file(test::golden_path("summary.json"));
    const auto expected = ids_of(summary["tiny-a_synth"]["text_prompt_ids"]);
    // The text-only turn is one chat string tokenised as a whole, with a leading <bos>.
    const std::string chat = "<start_of_turn>user\nDescribe a kitchen scene.<end_of_turn>\n<start_of_turn>model\n";
    EXPECT_EQ(concat({tok.bos_id()}, tok.encode(chat)), expected);
    EXPECT_EQ(tok.decode(expected, false), chat);
    EXPECT_EQ(tok.decode(expected), "user\nDescribe a kitchen scene.\nmodel\n");
}

TEST(Tokenizer, DecodeRoundTripsSkipsIdsPastThePiecesAndRejectsNegativeOnes) {
    Tokenizer tok = golden_tokenizer();
    const std::string text = "During which time segments in the video can we see slicing onion?";
    EXPECT_EQ(tok.decode(tok.encode(text)), text);
    EXPECT_EQ(tok.decode({2, 106, 107, 1, 0}), "");
    // Ids past the pieces (a vocabulary padded beyond the tokenizer) decode to nothing, as in
    // Hugging Face's fast tokenizers, which the official scripts load (AutoTokenizer).
    EXPECT_EQ(tok.decode({5000}), "");
    std::vector<int32_t> ids = tok.encode("a");
    ids.insert(ids.end(), {1024, 5000});
    for (int32_t id : tok.encode("b")) ids.push_back(id);
    EXPECT_EQ(tok.decode(ids), "ab");
    EXPECT_THAT(error_of([&] { tok.decode({-1}); }), HasSubstr("token id -1 is negative"));
}

TEST(Tokenizer, LoadErrorsNameTheFile) {
    test::TempDir tmp("tok");
    EXPECT_THAT(error_of([&] { Tokenizer::load(tmp.file("absent.model")); }),
                HasSubstr(tmp.file("absent.model") + ": tokenizer model not found"));
    std::ofstream(tmp.file("junk.model")) << "this is not a protobuf";
    EXPECT_THAT(error_of([&] { Tokenizer::load(tmp.file("junk.model")); }),
                HasSubstr(tmp.file("junk.model") + ": not a usable SentencePiece model"));
}
