// 4-bit media K/V on the golden tiny model, on every backend present: the CPU always, and the
// GPU in bf16 and fp16 when the build has CUDA and a GPU is there when the tests start (its
// cases are not registered otherwise). The golden media tokens go through the decoder into
// int4 K/V; logits teacher-forced over the golden answer stay within bounds of the float64
// reference (the CPU's bound is ~2.5x what it gives; a GPU adds its 16-bit arithmetic, ~1.1e-2
// in bf16 on tiny-a: bench/RESULTS.md).
#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/vidi15/gemma2.h"
#include "runtime/generate.h"
#include "support/test_support.h"

using namespace vidi;
using test::ids_of;

namespace {

struct OnBackend {
    const char* name;
    const char* backend;
    DType dtype;
    double max_rel_error, min_top1;
};

void PrintTo(const OnBackend& b, std::ostream* os) { *os << b.name; }

std::vector<OnBackend> backends_present() {
    std::vector<OnBackend> v{{"cpu", "cpu", DType::f32, 4e-2, 1.0}};
    if (cuda_available()) {
        v.push_back({"cuda_bf16", "cuda", DType::bf16, 6e-2, 12.0 / 13});
        v.push_back({"cuda_fp16", "cuda", DType::f16, 4e-2, 12.0 / 13});
    }
    return v;
}

class MediaKv4Decoder : public testing::TestWithParam<OnBackend> {};

}  // namespace

TEST_P(MediaKv4Decoder, ForcedLogitsStayCloseToTheReference) {
    const OnBackend b = GetParam();
    model::ModelConfig config = model::load_config(test::tiny_model_dir());
    io::TensorStore weights = io::TensorStore::open(test::tiny_model_dir());
    auto backend = make_backend(b.backend, 0, b.dtype);
    model::vidi15::Gemma2 decoder{config, model::WeightLoader(weights, *backend)};
    for (const char* video : {"synth", "dummy"}) {
        auto golden = io::SafetensorsFile::open(test::golden_path(std::string("tiny-a_") + video + ".golden.safetensors"));
        model::MediaKV visual = decoder.encode_media(backend->upload(golden->get("image_tokens")), QuantFormat{4, 0});
        model::MediaKV audio = decoder.encode_media(backend->upload(golden->get("audio_tokens")), QuantFormat{4, 0});
        ASSERT_EQ(visual.k[0].bits, 4);
        ASSERT_TRUE(visual.k[0].zeros.defined());     // keys per channel with zero points
        ASSERT_FALSE(visual.v[0].zeros.defined());    // values per token, symmetric
        Tensor forced = runtime::forced_logits(decoder, ids_of(golden->get("prompt_ids")), {&visual, &audio},
                                               ids_of(golden->get("forced_ids")));
        Tensor want = golden->get("forced_logits").to_f32();
        const double err = test::rel_error(forced, want), top1 = test::top1_agreement(forced, want);
        std::printf("[ %-9s %s ] int4 media K/V: forced logits rel error %.3e, top-1 agreement %.3f over %lld steps\n",
                    b.name, video, err, top1, static_cast<long long>(want.dim(0)));
        EXPECT_LT(err, b.max_rel_error) << video;
        EXPECT_GE(top1, b.min_top1) << video;
    }
}

INSTANTIATE_TEST_SUITE_P(Backends, MediaKv4Decoder, testing::ValuesIn(backends_present()),
                         [](const auto& info) { return std::string(info.param.name); });
