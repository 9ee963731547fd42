// The token-budget path (310 sampled frames > 306: the grid shrinks to 13×13 and is
// bilinear-resized) and the multi-piece audio path (310 s: 11 mel pieces), end to end
// from a video made with the ffmpeg CLI (tests/data/runtime/long_310s.mp4: testsrc2
// 96×64 at 1 fps + a 300 Hz sine), against PyTorch float32 numbers computed independently
// on the GPU machine (bench/torch_reference.py via bench/long_video_reference.sh; frames via OpenCV,
// audio from the ffmpeg CLI's s16le).
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "support/test_support.h"

using namespace vidi;

namespace {
std::string data(const std::string& name) { return std::string(VIDI_SOURCE_DIR) + "/tests/data/runtime/" + name; }
std::vector<int64_t> ints(const Tensor& t) { return {t.data<int64_t>(), t.data<int64_t>() + t.numel()}; }
}  // namespace

TEST(LongVideo, TokenBudgetAndMultiPieceAudioMatchPyTorch) {
    auto ref = io::SafetensorsFile::open(data("long_310s_tiny-a_torch.safetensors"));
    test::TempDir dir("long");
    std::string out = dir.file("dump.safetensors"), log;
    ASSERT_EQ(test::run_command(test::vidi_binary() + " dump -q --backend cpu --model " + test::tiny_model_dir() + " --video " +
                                    data("long_310s.mp4") + " --query 'a moving colour pattern' --frames 0" +
                                    " --max-new-tokens 1 --out " + out,
                                &log),
              0)
        << log;
    auto got = io::SafetensorsFile::open(out);
    EXPECT_EQ(ints(got->get("image_token_grid")), (std::vector<int64_t>{310, 13, 13}));
    EXPECT_EQ(ints(got->get("image_token_grid")), ints(ref->get("image_token_grid")));
    EXPECT_EQ(ints(got->get("mel_frames")), ints(ref->get("mel_frames")));
    EXPECT_EQ(got->get("mel").dim(0), 11);
    EXPECT_EQ(ints(got->get("prompt_ids")), ints(ref->get("prompt_ids")));

    Tensor image = got->get("image_tokens");
    const int64_t per_frame = 13 * 13;
    ASSERT_EQ(image.dim(0), 310 * per_frame);
    EXPECT_LT(test::rel_error(image.rows(0, per_frame), ref->get("image_tokens_frame0")), 1e-4);
    EXPECT_LT(test::rel_error(image.rows(309 * per_frame, 310 * per_frame), ref->get("image_tokens_frame_last")), 1e-4);
    EXPECT_LT(test::rel_error(got->get("audio_tokens"), ref->get("audio_tokens")), 1e-4);
    EXPECT_LT(test::rel_error(got->get("prompt_logits"), ref->get("prompt_logits")), 1e-4);
}
