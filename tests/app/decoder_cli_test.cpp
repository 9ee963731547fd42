// `--decoder auto|cpu|nvdec` from the outside: the flag parses, a value it does not know is
// refused, and NVDEC asked for where it cannot run (the CPU backend) is one clear error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/test_support.h"

using namespace vidi;
using testing::HasSubstr;

namespace {
std::string dump(const std::string& flags, const std::string& out) {
    return test::vidi_binary() + " dump -q --backend cpu --model " + test::tiny_model_dir() + " --video " +
           test::golden_path("synth.mp4") + " --query x --max-new-tokens 1 --out " + out + " " + flags;
}
}  // namespace

TEST(DecoderCli, ParsesAndNamesWhyNvdecCannotRun) {
    test::TempDir dir("decoder");
    std::string log;
    EXPECT_EQ(test::run_command(dump("--decoder cpu", dir.file("cpu.safetensors")), &log), 0) << log;
    EXPECT_EQ(test::run_command(dump("--decoder gpu", dir.file("bad.safetensors")), &log), 105);  // CLI11's validation
    EXPECT_THAT(log, HasSubstr("--decoder"));
    EXPECT_EQ(test::run_command(dump("--decoder nvdec", dir.file("nvdec.safetensors")), &log), 1);
    EXPECT_THAT(log, HasSubstr("vidi: error: "));
    EXPECT_THAT(log, HasSubstr("synth.mp4': decoder nvdec cannot take it: NVDEC needs the CUDA backend"));
}
