// End to end from the video file through `vidi dump`, against the golden reference:
// our own decoding differs slightly from the reference's, hence 1e-3 (golden/README.md).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/safetensors.h"
#include "support/test_support.h"

using namespace vidi;

namespace {

struct Case {
    std::string name, query;
    std::string frames;  // the golden file's pixel_values frames
};

class DumpGolden : public testing::TestWithParam<Case> {};

std::string forced_ids_arg(const Tensor& ids) {
    std::string s;
    for (int64_t i = 0; i < ids.numel(); ++i) {
        if (i) s += ',';
        s += std::to_string(ids.data<int64_t>()[i]);
    }
    return s;
}

std::vector<int64_t> ints(const Tensor& t) { return {t.data<int64_t>(), t.data<int64_t>() + t.numel()}; }

}  // namespace

TEST_P(DumpGolden, VideoFileToLogitsMatchesReference) {
    const Case& c = GetParam();
    auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_" + c.name + ".golden.safetensors"));
    test::TempDir dir("dump");
    std::string out = dir.file("dump.safetensors"), log;
    std::string cmd = test::vidi_binary() + " dump -q --backend cpu --model " + test::tiny_model_dir() + " --video " +
                      test::golden_path(c.name + ".mp4") + " --query '" + c.query + "' --frames " + c.frames +
                      " --forced-ids " + forced_ids_arg(golden->get("forced_ids")) + " --max-new-tokens 16 --out " +
                      out;
    ASSERT_EQ(test::run_command(cmd, &log), 0) << log;
    auto got = io::SafetensorsFile::open(out);

    EXPECT_EQ(ints(got->get("image_token_grid")), ints(golden->get("image_token_grid")));
    EXPECT_EQ(ints(got->get("mel_frames")), ints(golden->get("mel_frames")));
    EXPECT_EQ(ints(got->get("prompt_ids")), ints(golden->get("prompt_ids")));
    EXPECT_EQ(ints(got->get("forced_ids")), ints(golden->get("forced_ids")));
    for (const char* name : {"image_tokens", "audio_tokens", "prompt_logits", "forced_logits"}) {
        ASSERT_EQ(got->get(name).shape(), golden->get(name).shape()) << name;
        EXPECT_LT(test::rel_error(got->get(name), golden->get(name)), 1e-3) << name;
    }
    EXPECT_LT(test::max_abs_diff(got->get("mel"), golden->get("mel")), 1e-4);
    for (const std::string& f : {std::string("0"), c.frames.substr(c.frames.find(',') + 1)}) {
        std::string name = "pixel_values_frame" + f;
        EXPECT_LE(test::max_abs_diff(got->get(name), golden->get(name)), 0.0236) << name;
        EXPECT_LE(test::mean_abs_diff(got->get(name), golden->get(name)), 0.005) << name;
    }
    // Greedy ids agree wherever the reference's top-1 margin is clear of our error.
    auto ids = ints(got->get("generated_ids")), want = ints(golden->get("generated_ids"));
    const float* margin = golden->get("generated_margins").data<float>();
    ASSERT_EQ(ids.size(), want.size());
    for (size_t i = 0; i < want.size() && margin[i] > 0.05f; ++i) EXPECT_EQ(ids[i], want[i]) << "step " << i;
}

INSTANTIATE_TEST_SUITE_P(Golden, DumpGolden,
                         testing::Values(Case{"synth", "a moving colour pattern", "0,11"},
                                         Case{"dummy", "slicing onion", "0,12"}),
                         [](const auto& info) { return info.param.name; });

TEST(DumpCli, TextOnlyTurnWritesTextTensors) {
    auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_synth.golden.safetensors"));
    test::TempDir dir("dump");
    std::string out = dir.file("text.safetensors"), log;
    // The golden text-only turn asks this (decoded from text_prompt_ids with spm_decode).
    std::string cmd = test::vidi_binary() + " dump -q --backend cpu --model " + test::tiny_model_dir() +
                      " --question 'Describe a kitchen scene.' --max-new-tokens 16 --out " + out;
    ASSERT_EQ(test::run_command(cmd, &log), 0) << log;
    auto got = io::SafetensorsFile::open(out);
    EXPECT_FALSE(got->has("image_tokens"));
    EXPECT_EQ(ints(got->get("text_prompt_ids")), ints(golden->get("text_prompt_ids")));
    EXPECT_LT(test::rel_error(got->get("text_prompt_logits"), golden->get("text_prompt_logits")), 1e-5);
    auto ids = ints(got->get("text_generated_ids")), want = ints(golden->get("text_generated_ids"));
    const float* margin = golden->get("text_generated_margins").data<float>();
    ASSERT_EQ(ids.size(), want.size());
    size_t i = 0;
    for (; i < want.size() && margin[i] > 0.05f; ++i) EXPECT_EQ(ids[i], want[i]) << "step " << i;
    EXPECT_GE(i, 1u);
}

// "-o" naming a file of the checkpoint being read replaced that shard (and the model with it).
TEST(DumpCli, TheOutputNeverGoesIntoTheCheckpoint) {
    test::TempDir dir("dump-into");
    const std::string ck = dir.file("ck"), shard = ck + "/model-00002-of-00002.safetensors";
    test::copy_tiny_model(ck);
    const auto bytes = [&] {
        std::ifstream f(shard, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    };
    const std::string before = bytes();
    std::string log;
    EXPECT_EQ(test::run_command(test::vidi_binary() + " dump -q --backend cpu --model " + ck + " --question hi --out " +
                                    shard,
                                &log),
              1);
    EXPECT_THAT(log, testing::HasSubstr("the output would go into the checkpoint's directory"));
    EXPECT_EQ(bytes(), before);
}

// The output was first opened after the decode, the encode and the generation: a path that
// could never be written failed only then, and `--out ""` gave std::filesystem's "cannot make
// absolute path". The video here cannot even be read: the output is what must fail first.
TEST(DumpCli, AnOutputThatCannotBeWrittenFailsBeforeTheModelRuns) {
    test::TempDir dir("dump-out");
    const std::string fake = dir.file("fake.mp4");
    std::ofstream(fake) << "not a video";
    std::ofstream(dir.file("afile")) << "x";
    const std::string run = test::vidi_binary() + " dump -q --backend cpu --model " + test::tiny_model_dir() +
                            " --video " + fake + " --query x --out ";
    std::string log;
    EXPECT_EQ(test::run_command(run + "/nonexistent/x.safetensors", &log), 1);
    EXPECT_THAT(log, testing::HasSubstr("/nonexistent/x.safetensors: cannot create a file in /nonexistent"));
    EXPECT_EQ(test::run_command(run + dir.file("afile/x.safetensors"), &log), 1);
    EXPECT_THAT(log, testing::HasSubstr("cannot create a file in " + dir.file("afile") + ": Not a directory"));
    EXPECT_EQ(test::run_command(run + dir.path(), &log), 1);
    EXPECT_THAT(log, testing::HasSubstr(dir.path() + ": is a directory"));
    EXPECT_EQ(test::run_command(run + "''", &log), 1);
    EXPECT_THAT(log, testing::HasSubstr("--out names no file"));
}

// A write that failed half-way (here at the file-size limit) truncated the previous good
// output, and a symlink named as the output had its target, a checkpoint's shard, overwritten.
TEST(DumpCli, AFailedWriteKeepsThePreviousOutputAndASymlinkIsReplacedNotFollowed) {
    test::TempDir dir("dump-keep");
    const std::string ck = dir.file("ck"), shard = ck + "/model-00002-of-00002.safetensors";
    test::copy_tiny_model(ck);
    const auto bytes = [](const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    };
    const std::string run = test::vidi_binary() + " dump -q --backend cpu --model " + ck +
                            " --question hi --max-new-tokens 1 --out ",
                      out = dir.file("d.safetensors");
    std::string log;
    ASSERT_EQ(test::run_command(run + out, &log), 0) << log;
    const std::string good = bytes(out);
    ASSERT_GT(good.size(), 16u << 10);
    EXPECT_EQ(test::run_command("trap '' XFSZ; ulimit -f 16; " + run + out, &log), 1);  // 16 KiB
    EXPECT_THAT(log, testing::HasSubstr(out + ": write failed"));
    EXPECT_TRUE(bytes(out) == good) << out << " changed";

    const std::string shard_bytes = bytes(shard), link = dir.file("link.safetensors");
    std::filesystem::create_symlink(shard, link);
    EXPECT_EQ(test::run_command(run + link, &log), 0) << log;
    EXPECT_TRUE(bytes(shard) == shard_bytes) << shard << " changed";
    EXPECT_FALSE(std::filesystem::is_symlink(link));
    EXPECT_TRUE(io::SafetensorsFile::open(link)->has("text_prompt_ids"));
}

TEST(DumpCli, BadArgumentsAreClearErrors) {
    test::TempDir dir("dump");
    std::string log;
    std::string base = test::vidi_binary() + " dump -q --backend cpu --model " + test::tiny_model_dir() + " --out " +
                       dir.file("x.safetensors");
    EXPECT_NE(test::run_command(base + " --video " + test::golden_path("synth.mp4"), &log), 0);
    EXPECT_THAT(log, testing::HasSubstr("--query or --question"));
    EXPECT_NE(test::run_command(base + " --video " + test::golden_path("synth.mp4") +
                                    " --query x --frames 0,99 --max-new-tokens 1",
                                &log),
              0);
    EXPECT_THAT(log, testing::HasSubstr("sampled frame 99 does not exist"));
    EXPECT_NE(test::run_command(base + " --question hi --forced-ids 5,x", &log), 0);
    EXPECT_THAT(log, testing::HasSubstr("'x' is not an integer"));
    EXPECT_NE(test::run_command(base + " --question hi --dtype fp32", &log), 0);
    EXPECT_THAT(log, testing::HasSubstr("--dtype"));
}

TEST(DumpCli, DtypeChoosesTheGpusAndTheCpuComputesInF32) {
    // --dtype is the GPU's compute dtype: on the CPU fp16 changes nothing, and the logits are f32.
    test::TempDir dir("dump");
    std::string log;
    const std::string base = test::vidi_binary() + " dump -q --backend cpu --model " + test::tiny_model_dir() +
                             " --question 'Describe a kitchen scene.' --max-new-tokens 2 --out ";
    ASSERT_EQ(test::run_command(base + dir.file("a.safetensors"), &log), 0) << log;
    ASSERT_EQ(test::run_command(base + dir.file("b.safetensors") + " --dtype fp16", &log), 0) << log;
    auto a = io::SafetensorsFile::open(dir.file("a.safetensors")), b = io::SafetensorsFile::open(dir.file("b.safetensors"));
    const Tensor la = a->get("text_prompt_logits"), lb = b->get("text_prompt_logits");
    EXPECT_EQ(la.dtype(), DType::f32);
    EXPECT_EQ(la.to_f32_vector(), lb.to_f32_vector());
}
