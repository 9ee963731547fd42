// Visual and audio tokens of the tiny golden checkpoint, fed the golden pixel values and
// log-mel directly, against the float64 reference (golden/README.md).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "model/config.h"
#include "io/safetensors.h"
#include "model/vidi15/media_encoder.h"
#include "model/tiny_media_model.h"
#include "support/test_support.h"

using namespace vidi;
using namespace vidi::test;

namespace {

struct GoldenCase {
    const char* name;
    int64_t frames;  // F of the video
    std::vector<int64_t> sampled;  // frames whose pixel values the golden file holds
};

class MediaTokensGolden : public ::testing::TestWithParam<GoldenCase> {
protected:
    void SetUp() override {
        golden_ = io::TensorStore::open(golden_path(std::string("tiny-a_") + GetParam().name + ".golden.safetensors"));
    }
    io::TensorStore golden_;
    TinyMediaModel tiny_;
};

}  // namespace

TEST_P(MediaTokensGolden, ImageTokensOfSampledFramesOneByOneAndBatched) {
    const GoldenCase c = GetParam();
    Tensor want = golden_.get("image_tokens");
    Tensor grid = golden_.get("image_token_grid");
    const int64_t hw = tiny_.encoder.tokens_per_frame(c.frames), D = tiny_.encoder.dim();
    ASSERT_EQ(grid.data<int64_t>()[0], c.frames);
    ASSERT_EQ(grid.data<int64_t>()[1], tiny_.encoder.grid_side(c.frames));
    ASSERT_EQ(grid.data<int64_t>()[2], tiny_.encoder.grid_side(c.frames));
    ASSERT_EQ(want.shape(), (Shape{c.frames * hw, D}));

    Tensor batch = Tensor::empty({static_cast<int64_t>(c.sampled.size()), 3, 384, 384}, DType::f32);
    for (size_t i = 0; i < c.sampled.size(); ++i) {
        Tensor px = golden_.get("pixel_values_frame" + std::to_string(c.sampled[i]));
        Tensor got = tiny_.backend->to_host(
            tiny_.encoder.image_tokens(px.reshape({1, 3, 384, 384}), {c.sampled[i]}, c.frames));
        const double e = rel_error(got, want.rows(c.sampled[i] * hw, (c.sampled[i] + 1) * hw));
        EXPECT_LT(e, 1e-5) << "frame " << c.sampled[i];
        std::printf("  %s frame %lld: image tokens rel error %.3g\n", c.name, static_cast<long long>(c.sampled[i]), e);
        std::memcpy(batch.row(static_cast<int64_t>(i)).raw(), px.raw(), px.nbytes());
    }
    // A batch gives the same rows as frame-by-frame.
    Tensor got = tiny_.backend->to_host(tiny_.encoder.image_tokens(batch, c.sampled, c.frames));
    for (size_t i = 0; i < c.sampled.size(); ++i) {
        const int64_t f = c.sampled[i], r = static_cast<int64_t>(i);
        EXPECT_LT(rel_error(got.rows(r * hw, (r + 1) * hw), want.rows(f * hw, (f + 1) * hw)), 1e-5) << "frame " << f;
    }
    // So does a batch of the frames in reverse (interleaved decoding lanes hand them out in any order).
    const int64_t n = static_cast<int64_t>(c.sampled.size());
    Tensor reversed = Tensor::empty(batch.shape(), DType::f32);
    for (int64_t i = 0; i < n; ++i)
        std::memcpy(reversed.row(n - 1 - i).raw(), batch.row(i).raw(), batch.row(i).nbytes());
    const std::vector<int64_t> backwards(c.sampled.rbegin(), c.sampled.rend());
    const Tensor back = tiny_.backend->to_host(tiny_.encoder.image_tokens(reversed, backwards, c.frames));
    for (int64_t r = 0; r < n; ++r) {
        const int64_t f = backwards[static_cast<size_t>(r)];
        EXPECT_LT(rel_error(back.rows(r * hw, (r + 1) * hw), want.rows(f * hw, (f + 1) * hw)), 1e-5) << "frame " << f;
    }
}

// prepare_video (media_tokens calls it while the first frames decode) makes a video's three
// positional tables once; its batches use them without computing any again, and give the
// golden tokens, also after another video's tables were prepared before.
TEST_P(MediaTokensGolden, PreparedPositionsServeEveryBatch) {
    const GoldenCase c = GetParam();
    setenv("VIDI_PROFILE", "1", 1);
    TinyMediaModel tiny;
    const bool profiling = tiny.backend->profiling();
    unsetenv("VIDI_PROFILE");
    ASSERT_TRUE(profiling);
    auto mlp_calls = [&] {  // "profile: positional mlp   1.2 ms   3 calls"
        for (const std::string& line : tiny.backend->profile_report())
            if (line.find(" positional mlp ") != std::string::npos) {
                const size_t end = line.rfind(" calls"), start = line.find_last_of(' ', end - 1);
                return std::stoll(line.substr(start + 1, end - start - 1));
            }
        return 0LL;
    };
    const Tensor want = golden_.get("image_tokens");
    const int64_t hw = tiny.encoder.tokens_per_frame(c.frames);
    tiny.encoder.prepare_video(c.frames + 30, model::vidi15::kVisualTokenBudget);
    tiny.encoder.prepare_video(c.frames, model::vidi15::kVisualTokenBudget);
    EXPECT_EQ(mlp_calls(), 6);  // pos_h, pos_w, pos_t of each
    for (int64_t f : c.sampled) {
        const Tensor px = golden_.get("pixel_values_frame" + std::to_string(f)).reshape({1, 3, 384, 384});
        const Tensor got = tiny.backend->to_host(tiny.encoder.image_tokens(px, {f}, c.frames));
        EXPECT_LT(rel_error(got, want.rows(f * hw, (f + 1) * hw)), 1e-5) << "frame " << f;
    }
    EXPECT_EQ(mlp_calls(), 0);
}

TEST_P(MediaTokensGolden, AudioTokensFromGoldenMel) {
    Tensor mel = golden_.get("mel");
    const int64_t mel_frames = golden_.get("mel_frames").data<int64_t>()[0];
    Tensor want = golden_.get("audio_tokens");
    ASSERT_EQ(tiny_.encoder.audio_token_count(mel_frames), want.dim(0));
    Tensor got = tiny_.backend->to_host(tiny_.encoder.audio_tokens(mel, mel_frames));
    ASSERT_EQ(got.shape(), want.shape());
    const double e = rel_error(got, want);
    EXPECT_LT(e, 1e-5);
    std::printf("  %s: audio tokens rel error %.3g\n", GetParam().name, e);
}

TEST_P(MediaTokensGolden, LongAudioInBatchesOfPiecesEqualsAllAtOnce) {
    // Five pieces (the golden one repeated), the last one partly used: the tower and the glue
    // a piece, four pieces or all five at a time give the same tokens.
    const Tensor one = golden_.get("mel");
    const int64_t per_piece = one.numel();
    Tensor mel = Tensor::empty({5, one.dim(1), one.dim(2)}, DType::f32);
    for (int64_t p = 0; p < 5; ++p) std::memcpy(mel.data<float>() + p * per_piece, one.data<float>(), one.nbytes());
    const int64_t mel_frames = 4 * one.dim(2) + 1234;
    const Tensor all = tiny_.backend->to_host(tiny_.encoder.audio_tokens(mel, mel_frames, {}, 5));
    ASSERT_EQ(all.dim(0), tiny_.encoder.audio_token_count(mel_frames));
    int64_t reported = 0;
    for (int64_t batch : {1, 4}) {
        const Tensor got = tiny_.backend->to_host(
            tiny_.encoder.audio_tokens(mel, mel_frames, [&](int64_t done, int64_t) { reported = done; }, batch));
        EXPECT_LT(rel_error(got, all), 1e-6) << batch << " pieces a batch";
        EXPECT_EQ(reported, 5);
    }
}

INSTANTIATE_TEST_SUITE_P(TinyA, MediaTokensGolden,
                         ::testing::Values(GoldenCase{"synth", 12, {0, 11}}, GoldenCase{"dummy", 25, {0, 12}}),
                         [](const auto& info) { return std::string(info.param.name); });
