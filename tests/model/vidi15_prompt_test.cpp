// The prompt as the official script and the checkpoint's chat template build it.
#include <gtest/gtest.h>

#include <algorithm>

#include "io/tokenizer.h"
#include "model/common/python_strip.h"
#include "model/vidi15/vidi15.h"
#include "support/test_support.h"

using namespace vidi;

TEST(Prompt, RetrievalQuestionDropsOneTrailingDotAndKeepsWhitespace) {
    EXPECT_EQ(model::vidi15::retrieval_question("slicing onion"),
              "During which time segments in the video can we see slicing onion?");
    EXPECT_EQ(model::vidi15::retrieval_question("slicing onion."),
              "During which time segments in the video can we see slicing onion?");
    // Official: question[:-1] if question.endswith('.') else question, no strip.
    EXPECT_EQ(model::vidi15::retrieval_question("foo. "), "During which time segments in the video can we see foo. ?");
    EXPECT_EQ(model::vidi15::retrieval_question("a.."), "During which time segments in the video can we see a.?");
    EXPECT_EQ(model::vidi15::retrieval_question(" x"), "During which time segments in the video can we see  x?");
    EXPECT_THROW(model::vidi15::retrieval_question(""), Error);
    EXPECT_THROW(model::vidi15::retrieval_question(" \n\t"), Error);
    EXPECT_THROW(model::vidi15::retrieval_question("."), Error);  // blank once its dot is gone
    EXPECT_THROW(model::vidi15::retrieval_question("\t."), Error);
}

TEST(Prompt, PythonStripRemovesUnicodeWhitespaceAtBothEnds) {
    EXPECT_EQ(model::python_strip("  a b \n\t"), "a b");
    EXPECT_EQ(model::python_strip("\x1c" "a" "\x1f"), "a");
    EXPECT_EQ(model::python_strip("\xc2\xa0" "a" "\xe3\x80\x80"), "a");    // U+00A0, U+3000
    EXPECT_EQ(model::python_strip("\xe2\x80\x8a" "a" "\xe2\x80\xa8"), "a");  // U+200A, U+2028
    EXPECT_EQ(model::python_strip("\xe2\x80\x8b" "a"), "\xe2\x80\x8b" "a");  // U+200B is not space
    EXPECT_EQ(model::python_strip("é "), "é");
    EXPECT_EQ(model::python_strip(" \n "), "");
}

TEST(Prompt, ContentIsTrimmedAsTheChatTemplateDoes) {
    io::Tokenizer tok = io::Tokenizer::load(test::tiny_model_dir() + "/tokenizer.model");
    const int bos = 2;
    // With media the content is "<image>\n{text}": its end is trimmed, its start is not.
    EXPECT_EQ(model::vidi15::build_prompt(tok, "  What is it? \n", true, bos),
              model::vidi15::build_prompt(tok, "  What is it?", true, bos));
    EXPECT_NE(model::vidi15::build_prompt(tok, "  What is it?", true, bos), model::vidi15::build_prompt(tok, "What is it?", true, bos));
    // Text only: both ends.
    EXPECT_EQ(model::vidi15::build_prompt(tok, " \tWhat is it? \n", false, bos), model::vidi15::build_prompt(tok, "What is it?", false, bos));
    const auto ids = model::vidi15::build_prompt(tok, "What is it?", false, bos);
    EXPECT_EQ(tok.decode(ids, false), "<start_of_turn>user\nWhat is it?<end_of_turn>\n<start_of_turn>model\n");
    EXPECT_THROW(model::vidi15::build_prompt(tok, " \n", true, bos), Error);
}

// Ours: text that spells SentencePiece's control pieces or the media placeholder stays text.
// The official pipeline (a fast tokenizer) would give <eos>, <pad>, <bos>, <unk> their ids, and
// split the prompt at a second <image>, inserting a media placeholder no video fills.
TEST(Prompt, ControlPiecesAndTheImagePlaceholderInAQuestionStayText) {
    io::Tokenizer tok = io::Tokenizer::load(test::tiny_model_dir() + "/tokenizer.model");
    const int bos = 2;
    for (const char* typed : {"<eos>", "<pad>", "<bos>", "<unk>", "<image>"}) {
        SCOPED_TRACE(typed);
        const auto ids = model::vidi15::build_prompt(tok, std::string("a ") + typed + " b", true, bos);
        EXPECT_EQ(std::count(ids.begin(), ids.end(), bos), 1);
        for (int control : {0, 1, 3}) EXPECT_EQ(std::count(ids.begin(), ids.end(), control), 0) << control;
        EXPECT_EQ(tok.decode(ids, false), std::string("<start_of_turn>user\n\na ") + typed +  // "\n" after the media
                                              " b<end_of_turn>\n<start_of_turn>model\n");
    }
}
