// Visual and audio tokens of the tiny golden checkpoint, fed the golden pixel values and
// log-mel directly, against the float64 reference (golden/README.md).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "io/config.h"
#include "io/safetensors.h"
#include "model/media_tokens.h"
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
        config_ = io::ModelConfig::load(tiny_model_dir());
        weights_ = io::TensorStore::open(tiny_model_dir());
        backend_ = make_cpu_backend(2);
        encoder_ = std::make_unique<model::MediaEncoder>(config_, weights_, *backend_);
        golden_ = io::TensorStore::open(golden_path(std::string("tiny-a_") + GetParam().name + ".golden.safetensors"));
    }
    io::ModelConfig config_;
    io::TensorStore weights_, golden_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<model::MediaEncoder> encoder_;
};

}  // namespace

TEST_P(MediaTokensGolden, ImageTokensOfSampledFramesOneByOneAndBatched) {
    const GoldenCase c = GetParam();
    Tensor want = golden_.get("image_tokens");
    Tensor grid = golden_.get("image_token_grid");
    const int64_t hw = encoder_->tokens_per_frame(c.frames), D = encoder_->dim();
    ASSERT_EQ(grid.data<int64_t>()[0], c.frames);
    ASSERT_EQ(grid.data<int64_t>()[1], encoder_->grid_side(c.frames));
    ASSERT_EQ(grid.data<int64_t>()[2], encoder_->grid_side(c.frames));
    ASSERT_EQ(want.shape(), (Shape{c.frames * hw, D}));

    Tensor batch = Tensor::empty({static_cast<int64_t>(c.sampled.size()), 3, 384, 384}, DType::f32);
    for (size_t i = 0; i < c.sampled.size(); ++i) {
        Tensor px = golden_.get("pixel_values_frame" + std::to_string(c.sampled[i]));
        Tensor got = backend_->to_host(
            encoder_->image_tokens(px.reshape({1, 3, 384, 384}), {c.sampled[i]}, c.frames));
        const double e = rel_error(got, want.rows(c.sampled[i] * hw, (c.sampled[i] + 1) * hw));
        EXPECT_LT(e, 1e-5) << "frame " << c.sampled[i];
        std::printf("  %s frame %lld: image tokens rel error %.3g\n", c.name, static_cast<long long>(c.sampled[i]), e);
        std::memcpy(batch.row(static_cast<int64_t>(i)).raw(), px.raw(), px.nbytes());
    }
    // A batch gives the same rows as frame-by-frame.
    Tensor got = backend_->to_host(encoder_->image_tokens(batch, c.sampled, c.frames));
    for (size_t i = 0; i < c.sampled.size(); ++i) {
        const int64_t f = c.sampled[i], r = static_cast<int64_t>(i);
        EXPECT_LT(rel_error(got.rows(r * hw, (r + 1) * hw), want.rows(f * hw, (f + 1) * hw)), 1e-5) << "frame " << f;
    }
}

TEST_P(MediaTokensGolden, AudioTokensFromGoldenMel) {
    Tensor mel = golden_.get("mel");
    const int64_t mel_frames = golden_.get("mel_frames").data<int64_t>()[0];
    Tensor want = golden_.get("audio_tokens");
    ASSERT_EQ(encoder_->audio_token_count(mel_frames), want.dim(0));
    Tensor got = backend_->to_host(encoder_->audio_tokens(mel, mel_frames));
    ASSERT_EQ(got.shape(), want.shape());
    const double e = rel_error(got, want);
    EXPECT_LT(e, 1e-5);
    std::printf("  %s: audio tokens rel error %.3g\n", GetParam().name, e);
}

INSTANTIATE_TEST_SUITE_P(TinyA, MediaTokensGolden,
                         ::testing::Values(GoldenCase{"synth", 12, {0, 11}}, GoldenCase{"dummy", 25, {0, 12}}),
                         [](const auto& info) { return std::string(info.param.name); });
