// `--media-kv int4` from the command line: the synth video through `vidi dump` with 4-bit media
// K/V (CPU) stays within the int4 bounds of the golden reference (from the video file: our own
// decoding adds ~1e-3, the 4-bit K/V ~1.6e-2 on tiny-a), and other values are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "support/test_support.h"

using namespace vidi;
using testing::HasSubstr;

TEST(MediaKv4Cli, DumpWithInt4MediaKvStaysNearTheReference) {
    auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_synth.golden.safetensors"));
    std::string forced;
    const Tensor ids = golden->get("forced_ids");
    for (int64_t i = 0; i < ids.numel(); ++i) {
        if (i) forced += ',';
        forced += std::to_string(ids.data<int64_t>()[i]);
    }
    test::TempDir dir("kv4");
    std::string out = dir.file("dump.safetensors"), log;
    const std::string cmd = test::vidi_binary() + " dump -q --backend cpu --media-kv int4 --model " +
                            test::tiny_model_dir() + " --video " + test::golden_path("synth.mp4") +
                            " --query 'a moving colour pattern' --forced-ids " + forced +
                            " --max-new-tokens 4 --out " + out;
    ASSERT_EQ(test::run_command(cmd, &log), 0) << log;
    auto got = io::SafetensorsFile::open(out);
    // The media tokens are the unquantised path's (the K/V are quantised after them).
    EXPECT_LT(test::rel_error(got->get("image_tokens"), golden->get("image_tokens")), 1e-3);
    for (const char* name : {"prompt_logits", "forced_logits"}) {
        const Tensor g = got->get(name).to_f32(), w = golden->get(name).to_f32();
        EXPECT_LT(test::rel_error(g, w), 4e-2) << name;
        EXPECT_GT(test::rel_error(g, w), 1e-3) << name << ": the K/V should differ from the unquantised ones";
        std::printf("  %s: rel error %.3e, top-1 %.3f over %lld rows\n", name, test::rel_error(g, w),
                    test::top1_agreement(g, w), static_cast<long long>(w.dim(0)));
        // The greedy pick agrees wherever the reference's lead is clear of the 4-bit error (two
        // prompt rows of this random model lead by 0.026 and 0.003 and flip).
        const int64_t V = w.dim(1);
        for (int64_t t = 0; t < w.dim(0); ++t) {
            const TopPick want = top_pick(w.data<float>() + t * V, V), have = top_pick(g.data<float>() + t * V, V);
            if (want.margin > 0.05f) {
                EXPECT_EQ(have.id, want.id) << name << " row " << t << ", lead " << want.margin;
            }
        }
    }
}

TEST(MediaKv4Cli, UnknownFormatsAreRefused) {
    std::string log;
    const std::string cmd = test::vidi_binary() + " retrieve --backend cpu --media-kv int2 --model " +
                            test::tiny_model_dir() + " --video " + test::golden_path("synth.mp4") + " --query x";
    EXPECT_NE(test::run_command(cmd, &log), 0);
    EXPECT_THAT(log, HasSubstr("--media-kv"));
    EXPECT_THAT(log, HasSubstr("int4"));
}
