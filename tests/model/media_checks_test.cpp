// Bad input on the media side fails with a vidi::Error that names the problem.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include "model/config.h"
#include "model/vidi15/media_encoder.h"
#include "support/test_support.h"

using namespace vidi;
using namespace vidi::test;
using ::testing::HasSubstr;

namespace {


class MediaChecks : public ::testing::Test {
protected:
    void SetUp() override {
        config_ = model::load_config(tiny_model_dir());
        weights_ = io::TensorStore::open(tiny_model_dir());
        backend_ = make_cpu_backend(2);
    }
    model::ModelConfig config_;
    io::TensorStore weights_;
    std::unique_ptr<Backend> backend_;
};

}  // namespace

TEST_F(MediaChecks, ConfigThatDisagreesWithTheTensorsNamesTheTensor) {
    model::ModelConfig c = config_;
    c.vision.intermediate = 81;  // checkpoint has 80
    EXPECT_THAT(error_of([&] { model::vidi15::MediaEncoder(c, model::WeightLoader(weights_, *backend_)); }),
                HasSubstr("'model.mm_vis.encoder.layers.0.mlp.fc1.weight': expected shape [81, 48], found [80, 48]"));
    c = config_;
    c.mm.image_pool = 3;  // projector input would be 48·9
    EXPECT_THAT(error_of([&] { model::vidi15::MediaEncoder(c, model::WeightLoader(weights_, *backend_)); }),
                HasSubstr("'model.mm_rand_img_projector.model.0.weight': expected shape [96, 432], found [96, 192]"));
    c = config_;
    c.audio.layers = 3;  // the checkpoint has two
    EXPECT_THAT(error_of([&] { model::vidi15::MediaEncoder(c, model::WeightLoader(weights_, *backend_)); }),
                HasSubstr("model.mm_aud.encoder.layers.2."));
}

TEST_F(MediaChecks, BadMediaInputs) {
    model::vidi15::MediaEncoder enc(config_, model::WeightLoader(weights_, *backend_));
    Tensor px = Tensor::zeros({1, 3, 384, 384}, DType::f32);
    EXPECT_THAT(error_of([&] { enc.image_tokens(px, {0}, 1); }), HasSubstr("at least two frames"));
    EXPECT_THAT(error_of([&] { enc.image_tokens(px, {5}, 5); }), HasSubstr("frame position 5 outside 0..4"));
    EXPECT_THAT(error_of([&] { enc.image_tokens(px, {0, 1}, 5); }), HasSubstr("2 frame positions"));
    EXPECT_THAT(error_of([&] { enc.image_tokens(Tensor::zeros({1, 3, 380, 380}, DType::f32), {0}, 5); }),
                HasSubstr("expected pixels [n, 3, 384, 384]"));
    Tensor mel = Tensor::zeros({1, 128, 3000}, DType::f32);
    EXPECT_THAT(error_of([&] { enc.audio_tokens(mel, 3001); }), HasSubstr("does not fit 1 piece"));
    EXPECT_THAT(error_of([&] { enc.audio_tokens(mel, 15); }), HasSubstr("fewer than two audio tokens"));
    EXPECT_THAT(error_of([&] { enc.audio_tokens(Tensor::zeros({1, 80, 3000}, DType::f32), 100); }),
                HasSubstr("expected log-mel [128, 3000]"));
}
