// The paths the golden files do not reach: the token budget (more than 306 frames: the
// grid shrinks and is bilinear-resized) and multi-piece audio (more than 30 s). Checked
// against the naive double implementation in media_reference.h, which is itself first
// checked against the golden tokens.
#include <gtest/gtest.h>

#include <cstring>

#include "model/config.h"
#include "model/vidi15/media_encoder.h"
#include "model/media_reference.h"
#include "model/tiny_media_model.h"
#include "support/test_support.h"

using namespace vidi;
using namespace vidi::test;

TEST(TokenBudget, GridSideFollowsTheSpecFormula) {
    // side = max(10, t - t mod 2), t = int(28·sqrt(60000·4 / (F·28²))) once F·28² > 60000·4
    // (values worked out by hand / with Python's math module).
    const std::vector<std::pair<int64_t, int>> table = {{2, 28},    {306, 28},  {307, 26},  {400, 24},   {612, 18},
                                                        {1000, 14}, {2000, 10}, {3600, 10}, {100000, 10}};
    for (auto [frames, side] : table) EXPECT_EQ(model::vidi15::budget_grid_side(frames, 28, 2), side) << frames;
    for (int64_t F = 1; F <= 5000; ++F) {
        const int side = model::vidi15::budget_grid_side(F, 28, 2);
        ASSERT_EQ(side % 2, 0) << F;
        ASSERT_LE(side, 28) << F;
        if (side > 10) {  // within budget unless at the floor
            ASSERT_LE(F * (side / 2) * (side / 2), 60000) << F;
        }
        if (F > 1) {  // never grows with F
            ASSERT_LE(side, model::vidi15::budget_grid_side(F - 1, 28, 2)) << F;
        }
    }
}

namespace {

class MediaReference : public ::testing::Test {
protected:
    void SetUp() override {
        synth_ = io::TensorStore::open(golden_path("tiny-a_synth.golden.safetensors"));
        dummy_ = io::TensorStore::open(golden_path("tiny-a_dummy.golden.safetensors"));
    }
    // Three real frames: synth 0, synth 11, dummy 0.
    Tensor three_frames() const {
        Tensor batch = Tensor::empty({3, 3, 384, 384}, DType::f32);
        const Tensor src[3] = {synth_.get("pixel_values_frame0"), synth_.get("pixel_values_frame11"),
                               dummy_.get("pixel_values_frame0")};
        for (int i = 0; i < 3; ++i) std::memcpy(batch.row(i).raw(), src[i].raw(), src[i].nbytes());
        return batch;
    }
    ref::Vec tower(const Tensor& pixels) const {
        return ref::tensor_values(tiny_.backend->to_host(tiny_.encoder.vision().forward(pixels)));
    }
    io::TensorStore synth_, dummy_;
    TinyMediaModel tiny_;
};

}  // namespace

TEST_F(MediaReference, ReferenceAgreesWithGoldenWithoutBudget) {
    ref::Glue glue(tiny_.weights, tiny_.encoder.dim());
    Tensor px = three_frames().rows(0, 2);  // synth frames 0 and 11 of 12
    ref::Vec want = glue.image_tokens(tower(px), 2, 27, 48, 28, 28, {0, 11}, 12);
    Tensor golden = synth_.get("image_tokens");
    const int64_t hw = 196;
    Tensor rows = Tensor::empty({2 * hw, golden.dim(1)}, DType::f32);
    std::memcpy(rows.raw(), golden.rows(0, hw).raw(), golden.rows(0, hw).nbytes());
    std::memcpy(rows.row(hw).raw(), golden.rows(11 * hw, 12 * hw).raw(), golden.rows(0, hw).nbytes());
    EXPECT_LT(ref::rel_err(rows, want), 1e-5);
}

TEST_F(MediaReference, ImageTokensUnderTheTokenBudget) {
    ref::Glue glue(tiny_.weights, tiny_.encoder.dim());
    Tensor px = three_frames();
    const ref::Vec hidden = tower(px);
    for (auto [frames, side] : std::vector<std::pair<int64_t, int64_t>>{{400, 24}, {1000, 14}, {5000, 10}}) {
        ASSERT_EQ(tiny_.encoder.patch_grid_side(frames), side);
        const std::vector<int64_t> positions = {0, frames / 3, frames - 1};
        Tensor got = tiny_.backend->to_host(tiny_.encoder.image_tokens(px, positions, frames));
        ASSERT_EQ(got.shape(), (Shape{3 * (side / 2) * (side / 2), tiny_.encoder.dim()}));
        const double e = ref::rel_err(got, glue.image_tokens(hidden, 3, 27, 48, 28, side, positions, frames));
        EXPECT_LT(e, 1e-5) << frames << " frames";
        std::printf("  %lld frames (grid %lld): rel error %.3g\n", static_cast<long long>(frames),
                    static_cast<long long>(side), e);
    }
}

TEST_F(MediaReference, AudioTokensAcrossTwoPieces) {
    ref::Glue glue(tiny_.weights, tiny_.encoder.dim());
    // One 30 s piece followed by a shorter one: the golden mels of both videos.
    Tensor a = synth_.get("mel"), b = dummy_.get("mel");
    Tensor mel = Tensor::empty({2, 128, 3000}, DType::f32);
    std::memcpy(mel.row(0).raw(), a.raw(), a.nbytes());
    std::memcpy(mel.row(1).raw(), b.raw(), b.nbytes());
    const int64_t mel_frames = 3000 + dummy_.get("mel_frames").data<int64_t>()[0];  // 5453 -> 545 tokens
    ref::Vec states;
    for (int i = 0; i < 2; ++i) {
        ref::Vec s = ref::tensor_values(tiny_.backend->to_host(tiny_.encoder.audio().forward(mel.row(i))));
        states.insert(states.end(), s.begin(), s.end());
    }
    Tensor got = tiny_.backend->to_host(tiny_.encoder.audio_tokens(mel, mel_frames));
    ASSERT_EQ(got.dim(0), 545);
    const double e = ref::rel_err(got, glue.audio_tokens(states, 40, mel_frames, 5));
    EXPECT_LT(e, 1e-5);
    std::printf("  two pieces, %lld mel frames: rel error %.3g\n", static_cast<long long>(mel_frames), e);

    // The same reference reproduces the single-piece golden tokens.
    const int64_t golden_frames = synth_.get("mel_frames").data<int64_t>()[0];
    ref::Vec one(states.begin(), states.begin() + 1500 * 40);
    EXPECT_LT(ref::rel_err(synth_.get("audio_tokens"), glue.audio_tokens(one, 40, golden_frames, 5)), 1e-5);
}
