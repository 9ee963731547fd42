// `vidi retrieve` / `vidi ask` from the outside: output formats, a checkpoint in the
// official tensor layout, and the model-side bad inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "support/test_support.h"

using namespace vidi;
using testing::HasSubstr;

namespace {
std::string cli(const std::string& args) { return test::vidi_binary() + " " + args; }
std::string tiny() { return test::tiny_model_dir(); }
std::string synth() { return test::golden_path("synth.mp4"); }
}  // namespace

TEST(RetrieveCli, JsonHasQueryDurationRangesAndRaw) {
    std::string out;
    ASSERT_EQ(test::run_command(cli("retrieve -q --json --max-new-tokens 8 --model " + tiny() + " --video " +
                                     synth() + " --query 'a moving colour pattern' 2>/dev/null"),
                                &out),
              0)
        << out;
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["query"], "a moving colour pattern");
    EXPECT_NEAR(j["duration"].get<double>(), 12.012, 1e-3);
    EXPECT_TRUE(j["ranges"].is_array());
    EXPECT_TRUE(j["raw"].is_string());
}

TEST(RetrieveCli, SeveralQueriesDecodedTogetherAnswerAsEachAlone) {
    const std::vector<std::string> queries = {"a moving colour pattern", "the red bar", "a cross"};
    const std::string base = "retrieve -q --json --max-new-tokens 6 --model " + tiny() + " --video " + synth();
    std::string all_out;
    std::string flags;
    for (const auto& q : queries) flags += " --query '" + q + "'";
    ASSERT_EQ(test::run_command(cli(base + flags + " 2>/dev/null"), &all_out), 0) << all_out;
    const auto all = nlohmann::json::parse(all_out);
    ASSERT_TRUE(all.is_array());
    ASSERT_EQ(all.size(), queries.size());
    for (size_t i = 0; i < queries.size(); ++i) {
        std::string one;
        ASSERT_EQ(test::run_command(cli(base + " --query '" + queries[i] + "' 2>/dev/null"), &one), 0) << one;
        EXPECT_EQ(all[i], nlohmann::json::parse(one)) << queries[i];
    }
}

// --warm-up (the server's warm-up at load, for a one-shot encode that times a server's first
// request) parses on every one-shot command and changes no answer. On the CPU backend the warm-up
// itself does not run; on a GPU `VIDI_PROFILE=1` prints its time (docs/cuda.md).
TEST(RetrieveCli, WarmUpFlagParsesAndLeavesTheAnswerAsItIs) {
    const std::string base = "retrieve -q --json --max-new-tokens 6 --model " + tiny() + " --video " + synth() +
                             " --query 'a moving colour pattern'";
    std::string plain, warmed;
    ASSERT_EQ(test::run_command(cli(base + " 2>/dev/null"), &plain), 0) << plain;
    ASSERT_EQ(test::run_command(cli(base + " --warm-up 2>/dev/null"), &warmed), 0) << warmed;
    EXPECT_EQ(nlohmann::json::parse(plain), nlohmann::json::parse(warmed));
    std::string out;
    EXPECT_EQ(test::run_command(cli("ask -q --warm-up --max-new-tokens 2 --model " + tiny() + " --question hi"), &out),
              0)
        << out;
    test::TempDir dir("warm");
    EXPECT_EQ(test::run_command(cli("dump -q --warm-up --max-new-tokens 1 --model " + tiny() + " --video " + synth() +
                                    " --query x --out " + dir.file("d.safetensors")),
                                &out),
              0)
        << out;
}

TEST(RetrieveCli, RunsOnACheckpointInTheOfficialLayout) {
    // make-checkpoint nests the vision tower under "vision_model." as the release does;
    // the golden checkpoint does not. Both must load.
    test::TempDir dir("official");
    std::string out, ckpt = dir.file("ckpt");
    ASSERT_EQ(test::run_command(cli("make-checkpoint --config " + tiny() + "/config.json --out " + ckpt +
                                     " --seed 3 --tokenizer " + tiny() + "/tokenizer.model"),
                                &out),
              0)
        << out;
    ASSERT_EQ(test::run_command(cli("ask -q --max-new-tokens 3 --model " + ckpt + " --video " + synth() +
                                     " --question 'What is shown?'"),
                                &out),
              0)
        << out;
}

TEST(RetrieveCli, BadInputsAreClearErrors) {
    test::TempDir dir("bad");
    std::string out;
    EXPECT_EQ(test::run_command(cli("retrieve -q --model " + tiny() + " --video " + dir.file("none.mp4") +
                                     " --query x"),
                                &out),
              105);  // CLI11's "file does not exist"
    EXPECT_THAT(out, HasSubstr("none.mp4"));

    // A text file posing as a video.
    std::string fake = dir.file("fake.mp4");
    test::run_command("echo 'not a video' > " + fake);
    EXPECT_EQ(test::run_command(cli("retrieve -q --model " + tiny() + " --video " + fake + " --query x"), &out), 1);
    EXPECT_THAT(out, HasSubstr("fake.mp4"));

    // One second of video samples a single frame: Vidi needs two.
    std::string one = dir.file("one.mp4");
    ASSERT_EQ(test::run_command("ffmpeg -v error -f lavfi -i testsrc2=s=64x48:r=5:d=1 -pix_fmt yuv420p " + one), 0);
    EXPECT_EQ(test::run_command(cli("retrieve -q --model " + tiny() + " --video " + one + " --query x"), &out), 1);
    EXPECT_THAT(out, HasSubstr("at least two"));

    // Not a checkpoint directory.
    EXPECT_EQ(test::run_command(cli("ask -q --model " + dir.path() + " --question hi"), &out), 1);
    EXPECT_THAT(out, HasSubstr("config.json"));

    // A prompt longer than the context.
    std::string long_q(9000 * 2, 'a');
    for (size_t i = 1; i < long_q.size(); i += 2) long_q[i] = ' ';
    EXPECT_EQ(test::run_command(cli("ask -q --max-new-tokens 1 --model " + tiny() + " --question '" + long_q + "'"),
                                &out),
              1);
    EXPECT_THAT(out, HasSubstr("context holds"));
    // ... refused before the video is encoded (it was refused after): the video here cannot
    // even be read, and the prompt is what the error names.
    EXPECT_EQ(test::run_command(cli("retrieve -q --max-new-tokens 1 --model " + tiny() + " --video " + fake +
                                    " --query '" + long_q + "'"),
                                &out),
              1);
    EXPECT_THAT(out, HasSubstr("context holds"));
}

TEST(RetrieveCli, FlagValuesThatCannotWorkAreRefusedAtStartup) {
    // Refused by the argument parser (its exit status 105) before the model loads.
    std::string out;
    EXPECT_EQ(test::run_command(cli("retrieve -q --threads -5 --model " + tiny() + " --video " + synth() +
                                     " --query x"),
                                &out),
              105);
    EXPECT_THAT(out, HasSubstr("--threads: '-5' is not a thread count (an integer of at least 0)"));
    // A server whose limit is 0 would answer every request 400.
    EXPECT_EQ(test::run_command(cli("serve --max-new-tokens 0 --model " + tiny()), &out), 105);
    EXPECT_THAT(out, HasSubstr("--max-new-tokens: '0' is not a token limit (an integer of at least 1)"));
    // Sizes in MiB are shifted into bytes: a size the shift would overflow is refused, not wrapped.
    EXPECT_EQ(test::run_command(cli("serve --max-upload-mb 17592186044416 --model " + tiny()), &out), 105);
    EXPECT_THAT(out, HasSubstr("'17592186044416' is not a size in MiB (an integer from 1 to 1099511627776)"));
    EXPECT_EQ(test::run_command(cli("serve --disk-cache-mb -1 --model " + tiny()), &out), 105);
    EXPECT_EQ(test::run_command(cli("ask -q --frame-batch 0 --model " + tiny() + " --question hi"), &out), 105);
    EXPECT_THAT(out, HasSubstr("'0' is not a frame count (an integer of at least 1)"));
    EXPECT_EQ(test::run_command(cli("ask -q --max-new-tokens 3000000000 --model " + tiny() + " --question hi"), &out),
              105);
    EXPECT_THAT(out, HasSubstr("(an integer of at least 1, at most 2147483647)"));
    EXPECT_EQ(test::run_command(cli("ask -q --max-new-tokens 0 --model " + tiny() + " --question hi"), &out), 105);
    // Tens of thousands of threads crashed OpenMP (SIGSEGV): refused when the backend starts.
    EXPECT_EQ(
        test::run_command(cli("ask -q --backend cpu --threads 100000 --model " + tiny() + " --question hi"), &out), 1);
    EXPECT_THAT(out, HasSubstr("threads: 100000 is more than this machine's"));
    // The parser's other refusals (README): a missing flag, an unknown one.
    EXPECT_EQ(test::run_command(cli("ask -q --question hi"), &out), 106);
    EXPECT_THAT(out, HasSubstr("--model"));
    EXPECT_EQ(test::run_command(cli("ask -q --model " + tiny() + " --question hi --frobnicate"), &out), 109);
}

TEST(RetrieveCli, ACheckpointOfAnUnknownFamilyNamesTheKnownOnes) {
    test::TempDir dir("family");
    const std::string ck = dir.file("ck");
    test::copy_tiny_model(ck);
    std::string out;
    ASSERT_EQ(test::run_command("sed -i 's/dattn_gemma2/dattn_unknown/; s/DattnGemma2ForCausalLM/Unknown/' " + ck +
                                "/config.json"),
              0);
    EXPECT_EQ(test::run_command(cli("ask -q --model " + ck + " --question hi"), &out), 1);
    EXPECT_THAT(out, HasSubstr("vidi: error: " + ck + "/config.json: model_type \"dattn_unknown\" is not a known "
                               "model family (known: dattn_gemma2 (vidi1.5), gemma2 (vidi1.5), dattn_mistral (vidi-7b))"));
}

namespace {
// A copy of tiny-a whose answers hold a range: its random weights answer "<unused41>" over and
// over, and here that piece reads "0.10-0.20," (as long, so the tokenizer's protobuf stays valid).
std::string model_answering_a_range(const test::TempDir& dir) {
    const std::string ck = dir.file("ck"), path = ck + "/tokenizer.model";
    test::copy_tiny_model(ck);
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string piece = "<unused41>", range = "0.10-0.20,";
    for (size_t at; (at = bytes.find(piece)) != std::string::npos;) bytes.replace(at, piece.size(), range);
    std::ofstream(path, std::ios::binary) << bytes;
    return ck;
}
}  // namespace

// --export-clips DIR was first created after the whole run, clip by clip between the answers:
// a DIR that could not be made failed only after the encode, and with --json the answers
// already computed were lost with it.
TEST(RetrieveCli, ABadClipDirectoryFailsBeforeTheEncodeAndAFailedClipKeepsTheAnswers) {
    test::TempDir dir("clips");
    std::string out;
    const std::string fake = dir.file("fake.mp4");  // cannot even be read: the directory must fail first
    std::ofstream(fake) << "not a video";
    std::ofstream(dir.file("afile")) << "x";
    EXPECT_EQ(test::run_command(cli("retrieve -q --model " + tiny() + " --video " + fake +
                                    " --query x --export-clips " + dir.file("afile/sub")),
                                &out),
              1);
    EXPECT_THAT(out, HasSubstr("clip export: cannot create " + dir.file("afile/sub")));

    const std::string base = cli("retrieve -q --json --max-new-tokens 1 --model " + model_answering_a_range(dir) +
                                 " --video " + synth() + " --query 'a dog' --export-clips "),
                      clip = "synth_1_00-00-01.20-00-00-02.40.mp4", err = dir.file("err.txt");
    ASSERT_EQ(test::run_command("{ " + base + dir.file("clips") + " 2>" + err + "; }", &out), 0) << out;
    const nlohmann::json answer = nlohmann::json::parse(out);
    ASSERT_EQ(answer["ranges"].size(), 1u) << out;
    EXPECT_TRUE(std::filesystem::is_regular_file(dir.file("clips/" + clip)));
    // A directory where the clip goes: the export fails, after the answer is out.
    std::filesystem::create_directories(dir.file("taken/" + clip));
    EXPECT_EQ(test::run_command("{ " + base + dir.file("taken") + " 2>" + err + "; }", &out), 1);
    EXPECT_EQ(nlohmann::json::parse(out, nullptr, false), answer) << out;
    test::run_command("cat " + err, &out);
    EXPECT_THAT(out, HasSubstr(clip));
}
