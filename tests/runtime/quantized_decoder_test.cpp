// Accuracy of the compact modes on the golden tiny model: the decoder with int8 / int4
// linear weights (groups of 32: the tiny widths 96/128/160 are not multiples of 64) and with
// 8-bit media K/V (4-bit: media_kv4_decoder_test.cpp, on every backend), teacher-forced over
// the golden answer, against the float64 reference. Relative error and top-1 agreement are asserted per mode; the
// bounds are a few times what these modes give (bench/RESULTS.md has the measured values).
#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>

#include "backend/backend.h"
#include "model/config.h"
#include "io/safetensors.h"
#include "model/vidi15/gemma2.h"
#include "runtime/generate.h"
#include "support/test_support.h"

using namespace vidi;
using test::ids_of;
using test::top1_agreement;

namespace {


struct Mode {
    const char* name;
    QuantFormat weights, kv;
    double max_rel_error, min_top1;
};

void PrintTo(const Mode& m, std::ostream* os) { *os << m.name; }

class QuantizedDecoder : public testing::TestWithParam<Mode> {};

}  // namespace

TEST_P(QuantizedDecoder, ForcedLogitsStayCloseToTheReference) {
    const Mode m = GetParam();
    model::ModelConfig config = model::load_config(test::tiny_model_dir());
    io::TensorStore weights = io::TensorStore::open(test::tiny_model_dir());
    auto backend = make_cpu_backend(0);
    model::LoadOptions load;
    load.linear_format = m.weights;
    model::vidi15::Gemma2 decoder{config, model::WeightLoader(weights, *backend, load)};
    for (const char* video : {"synth", "dummy"}) {
        auto golden = io::SafetensorsFile::open(test::golden_path(std::string("tiny-a_") + video + ".golden.safetensors"));
        model::MediaKV visual = decoder.encode_media(backend->upload(golden->get("image_tokens")), m.kv);
        model::MediaKV audio = decoder.encode_media(backend->upload(golden->get("audio_tokens")), m.kv);
        if (m.kv.quantized()) {
            ASSERT_TRUE(visual.k[0].quantized());
        }
        Tensor forced = runtime::forced_logits(decoder, ids_of(golden->get("prompt_ids")), {&visual, &audio},
                                               ids_of(golden->get("forced_ids")));
        Tensor want = golden->get("forced_logits").to_f32();
        const double err = test::rel_error(forced, want), top1 = top1_agreement(forced, want);
        std::printf("[ mode %-12s %s ] forced logits rel error %.3e, top-1 agreement %.3f over %lld steps\n", m.name,
                    video, err, top1, static_cast<long long>(want.dim(0)));
        EXPECT_LT(err, m.max_rel_error) << video;
        EXPECT_GE(top1, m.min_top1) << video;
    }
}

INSTANTIATE_TEST_SUITE_P(Modes, QuantizedDecoder,
                         testing::Values(Mode{"int8", {8, 0}, {}, 4e-2, 0.9},
                                         Mode{"int4/g32", {4, 32}, {}, 4.5e-1, 0.6},
                                         Mode{"kv-int8", {}, {8, 0}, 2e-3, 1.0},
                                         Mode{"int4+kv-int8", {4, 32}, {8, 0}, 4.5e-1, 0.6},
                                         Mode{"int4+kv-int4", {4, 32}, {4, 0}, 4.5e-1, 0.6}),
                         [](const auto& info) {
                             std::string s = info.param.name;
                             for (char& c : s)
                                 if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                             return s;
                         });
