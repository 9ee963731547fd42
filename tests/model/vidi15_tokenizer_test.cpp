// The Vidi1.5 family's tokenizer layout (what make-checkpoint builds) and its markup.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/tokenizer.h"
#include "model/vidi15/family.h"
#include "model/vidi15/vidi15.h"
#include "support/test_support.h"

using namespace vidi;
using io::Tokenizer;
using model::vidi15::family;
using test::error_of;
using testing::HasSubstr;

TEST(Tokenizer, GemmaStyleModelHasTheGemmaIdsAndWorks) {
    test::TempDir tmp("tok");
    io::write_sentencepiece_model(tmp.file("big.model"), 256000, family().tokenizer_layout());
    Tokenizer tok = Tokenizer::load(tmp.file("big.model"), family().markup_pieces());
    EXPECT_EQ(tok.vocab_size(), 256000);
    EXPECT_EQ(tok.pad_id(), 0);
    EXPECT_EQ(tok.eos_id(), 1);
    EXPECT_EQ(tok.bos_id(), 2);
    EXPECT_EQ(tok.piece_to_id("<unk>"), 3);
    EXPECT_EQ(tok.piece_to_id("<start_of_turn>"), 106);
    EXPECT_EQ(tok.piece_to_id("<end_of_turn>"), 107);
    EXPECT_EQ(tok.piece_to_id("\n"), 108);
    const std::string text = "During which time segments in the video can we see a red car? Ünïcödé 日本";
    auto ids = model::vidi15::build_prompt(tok, text, true, tok.bos_id());
    EXPECT_EQ(std::vector<int32_t>(ids.begin(), ids.begin() + 2), (std::vector<int32_t>{2, 106}));
    EXPECT_EQ(ids.back(), 108);
    EXPECT_EQ(tok.decode(ids, false), "<start_of_turn>user\n\n" + text + "<end_of_turn>\n<start_of_turn>model\n");
    EXPECT_EQ(tok.decode(ids), "user\n\n" + text + "\nmodel\n");
    // Merges work: common text takes fewer pieces than characters.
    EXPECT_LT(tok.encode("the video").size(), std::string("the video").size() / 2 + 1);
    EXPECT_THAT(error_of([&] { io::write_sentencepiece_model(tmp.file("small.model"), 100, family().tokenizer_layout()); }),
                HasSubstr("cannot build a tokenizer with vocab_size 100"));
}
