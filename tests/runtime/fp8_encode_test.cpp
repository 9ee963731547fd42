// --compute fp8 on the golden tiny models: the media tokens' layers in FP8 (E4M3, per-row
// scales) on a GPU that has FP8 tensor cores, in bf16 and fp16 (cases registered when the
// build has CUDA and a GPU is there). The logits teacher-forced over the golden answer with
// media K/V encoded in FP8 stay within bounds of the float64 reference, for tiny-a (the H200
// gave 4.8e-2 to 5.2e-2 and top-1 13/13, bench/RESULTS.md) and the tiny Vidi-7B; the towers
// are untouched; weights kept
// in FP8 at load (o_proj folded over shared K/V heads) stay as close to the 16-bit media K/V.
// Everywhere: a backend without FP8 units and an unknown compute mode are clear errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <ostream>
#include <string>
#include <utility>

#include "backend/backend.h"
#include "backend/reference.h"
#include "io/safetensors.h"
#include "model/common/dattn_decoder.h"
#include "model/common/tower_memory.h"
#include "model/config.h"
#include "model/vidi15/gemma2.h"
#include "model/vidi15/media_encoder.h"
#include "model/vidi7b/mistral.h"
#include "runtime/generate.h"
#include "runtime/loaded_model.h"
#include "support/test_support.h"
#include "vidi/vidi.h"

using namespace vidi;
using test::ids_of;
using testing::HasSubstr;

namespace {

struct OnGpu {
    const char* name;
    DType dtype;
};
void PrintTo(const OnGpu& b, std::ostream* os) { *os << b.name; }

std::vector<OnGpu> gpus_present() {
    if (!cuda_available()) return {};
    return {{"cuda_bf16", DType::bf16}, {"cuda_fp16", DType::f16}};
}

class Fp8Encode : public testing::TestWithParam<OnGpu> {
protected:
    void SetUp() override {
        backend_ = make_backend("cuda", 0, GetParam().dtype);
        if (!backend_->fp8_supported()) GTEST_SKIP() << "no FP8 tensor cores on this GPU (compute capability < 8.9)";
        backend_->set_fp8_encode(true);
    }
    model::ModelConfig config_ = model::load_config(test::tiny_model_dir());
    io::TensorStore weights_ = io::TensorStore::open(test::tiny_model_dir());
    std::unique_ptr<Backend> backend_;
};

// Bounds: relative error of the forced logits and top-1 agreement (E4M3 keeps 3 fraction bits:
// each product's operands are rounded by up to 2^-4 relative).
constexpr double kLogitsBound = 8e-2, kMinTop1 = 12.0 / 13;
// The towers' tokens: SigLIP's q, k, v and fc1 in FP8 over three layers.
constexpr double kTokensBound = 5e-2;

}  // namespace

TEST_P(Fp8Encode, TheTowersNormedLinearsRunInFp8CloseToTheGoldenTokens) {
    // The linears that read a LayerNorm (q, k, v, fc1) take the norm straight in FP8: tiny-a's
    // image tokens of the golden frames stay close to the float64 reference (an H100 gave
    // 2.4e-2 to 2.6e-2; 16 bits: 5.0e-3 in bf16), and differ from the 16-bit tokens. Its
    // Whisper (width 40, not a multiple of 16) is a shape the FP8 GEMM cannot take: its tokens
    // keep their 16-bit bits. Weights kept in FP8 at load (tower_fp8_copy_bytes) give the bits
    // of converting them at each call.
    auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_synth.golden.safetensors"));
    const int64_t frames = golden->get("image_token_grid").data<int64_t>()[0];
    const std::vector<int64_t> sampled = {0, 11};
    Tensor px = Tensor::empty({2, 3, 384, 384}, DType::f32);
    for (size_t i = 0; i < sampled.size(); ++i) {
        const Tensor f = golden->get("pixel_values_frame" + std::to_string(sampled[i]));
        std::memcpy(px.row(static_cast<int64_t>(i)).raw(), f.raw(), f.nbytes());
    }
    const int64_t mel_frames = golden->get("mel_frames").data<int64_t>()[0];
    const auto tokens = [&](const model::vidi15::MediaEncoder& encoder) {
        return std::pair{backend_->to_host(encoder.image_tokens(px, sampled, frames)).to_f32(),
                         backend_->to_host(encoder.audio_tokens(golden->get("mel"), mel_frames)).to_f32()};
    };
    model::vidi15::MediaEncoder converting{config_, model::WeightLoader(weights_, *backend_)};
    EXPECT_EQ(backend_->fp8_copy_bytes(), 0u);
    const auto fp8 = tokens(converting);
    model::LoadOptions keep;
    keep.fp8_copies = true;
    model::vidi15::MediaEncoder keeping{config_, model::WeightLoader(weights_, *backend_, keep)};
    EXPECT_EQ(backend_->fp8_copy_bytes(), model::tower_fp8_copy_bytes(config_));
    EXPECT_GT(backend_->fp8_copy_bytes(), 0u);
    const auto kept = tokens(keeping);
    backend_->set_fp8_encode(false);
    const auto plain = tokens(converting);

    const Tensor want = golden->get("image_tokens").to_f32();
    const double bound16 = GetParam().dtype == DType::bf16 ? 1e-2 : 2e-3;
    const int64_t hw = want.dim(0) / frames;
    double worst = 0;
    for (size_t i = 0; i < sampled.size(); ++i) {
        const int64_t r = static_cast<int64_t>(i), f = sampled[i];
        const Tensor w = want.rows(f * hw, (f + 1) * hw);
        worst = std::max(worst, test::rel_error(fp8.first.rows(r * hw, (r + 1) * hw), w));
        EXPECT_LT(test::rel_error(plain.first.rows(r * hw, (r + 1) * hw), w), bound16) << "16-bit, frame " << f;
    }
    std::printf("[ %s ] FP8 towers: image tokens rel error %.3e against float64\n", GetParam().name, worst);
    EXPECT_LT(worst, kTokensBound);
    EXPECT_FALSE(fp8.first.to_f32_vector() == plain.first.to_f32_vector()) << "the FP8 path was not taken";
    EXPECT_TRUE(kept.first.to_f32_vector() == fp8.first.to_f32_vector()) << "kept copies";
    EXPECT_TRUE(fp8.second.to_f32_vector() == plain.second.to_f32_vector()) << "audio tokens";
}

// The logits teacher-forced over the golden answer of `golden_file` with the golden media
// tokens' K/V encoded by `decoder` (in FP8: the fixture turned it on) within the bounds of the
// float64 reference.
void expect_forced_logits_close(Backend& be, const model::Decoder& decoder, const std::string& golden_file,
                                const std::string& label) {
    auto golden = io::SafetensorsFile::open(golden_file);
    model::MediaKV visual = decoder.encode_media(be.upload(golden->get("image_tokens")));
    model::MediaKV audio = decoder.encode_media(be.upload(golden->get("audio_tokens")));
    const Tensor forced = runtime::forced_logits(decoder, ids_of(golden->get("prompt_ids")), {&visual, &audio},
                                                 ids_of(golden->get("forced_ids")));
    const Tensor want = golden->get("forced_logits").to_f32();
    const double err = test::rel_error(forced, want), top1 = test::top1_agreement(forced, want);
    std::printf("[ %s ] FP8 media layers: forced logits rel error %.3e, top-1 agreement %.3f over %lld steps\n",
                label.c_str(), err, top1, static_cast<long long>(want.dim(0)));
    EXPECT_LT(err, kLogitsBound) << label;
    EXPECT_GE(top1, kMinTop1) << label;
}

TEST_P(Fp8Encode, ForcedLogitsOverFp8MediaKvStayCloseToTheReference) {
    // Both ways the weights take: converted at each call, and kept in FP8 at load (with o_proj
    // folded over the heads that share a K/V head).
    for (const bool keep : {false, true}) {
        model::LoadOptions options;
        options.fp8_copies = keep;
        model::vidi15::Gemma2 decoder{config_, model::WeightLoader(weights_, *backend_, options)};
        for (const char* video : {"synth", "dummy"})
            expect_forced_logits_close(*backend_, decoder,
                                       test::golden_path(std::string("tiny-a_") + video + ".golden.safetensors"),
                                       std::string(GetParam().name) + " " + video + (keep ? ", kept" : ""));
    }
}

// Vidi-7B's Mistral decoder through the same FP8 media layers (its tiny model also shares K/V
// heads: 4 heads, 2 K/V heads), against its float64 golden file (tests/data/vidi7b).
TEST_P(Fp8Encode, Vidi7bForcedLogitsOverFp8MediaKvStayCloseToTheReference) {
    const model::ModelConfig config = model::load_config(test::tiny_vidi7b_dir());
    io::TensorStore weights = io::TensorStore::open(test::tiny_vidi7b_dir());
    ASSERT_NE(config.llm.heads, config.llm.kv_heads);
    for (const bool keep : {false, true}) {
        model::LoadOptions options;
        options.fp8_copies = keep;
        model::vidi7b::Mistral decoder{config, model::WeightLoader(weights, *backend_, options)};
        EXPECT_EQ(backend_->fp8_copy_bytes(), keep ? model::media_fp8_copy_bytes(config.llm) : 0u);
        expect_forced_logits_close(*backend_, decoder,
                                   test::vidi7b_data_dir() + "/tiny-vidi7b_synth.golden.safetensors",
                                   std::string(GetParam().name) + " vidi-7b synth" + (keep ? ", kept" : ""));
    }
}

TEST_P(Fp8Encode, KeptWeightCopiesFoldTheSharedHeadsAndLoseNothingByIt) {
    // LoadOptions::fp8_copies: the media layers' weights converted once at load (as many bytes
    // as media_fp8_copy_bytes counts), o_proj folded over the heads sharing a K/V head (tiny-a:
    // 4 heads, 2 K/V heads). The first layer's K/V come before any o_proj: the bits of
    // converting at each call. Past it the fold sums the heads in the weight instead of the
    // product, which must stay as close to the 16-bit media K/V as the unfolded FP8 path.
    ASSERT_NE(config_.llm.heads, config_.llm.kv_heads) << "the tiny model no longer shares K/V heads";
    model::vidi15::Gemma2 converting{config_, model::WeightLoader(weights_, *backend_)};
    EXPECT_EQ(backend_->fp8_copy_bytes(), 0u);
    model::LoadOptions keep;
    keep.fp8_copies = true;
    model::vidi15::Gemma2 keeping{config_, model::WeightLoader(weights_, *backend_, keep)};
    EXPECT_EQ(backend_->fp8_copy_bytes(), model::media_fp8_copy_bytes(config_.llm));
    auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_synth.golden.safetensors"));
    const Tensor tokens = backend_->upload(golden->get("image_tokens"));
    const model::MediaKV a = converting.encode_media(tokens), b = keeping.encode_media(tokens);
    backend_->set_fp8_encode(false);
    const model::MediaKV ref = converting.encode_media(tokens);
    const auto host = [&](const QTensor& t) { return backend_->to_host(t.values).to_f32(); };
    EXPECT_TRUE(host(a.k[0]).to_f32_vector() == host(b.k[0]).to_f32_vector()) << "keys of layer 0";
    EXPECT_TRUE(host(a.v[0]).to_f32_vector() == host(b.v[0]).to_f32_vector()) << "values of layer 0";
    for (int l = 1; l < config_.llm.layers; ++l)
        for (const auto& [name, side_a, side_b, side_ref] :
             {std::tuple{"keys", &a.k, &b.k, &ref.k}, std::tuple{"values", &a.v, &b.v, &ref.v}}) {
            const size_t i = static_cast<size_t>(l);
            const Tensor want = host((*side_ref)[i]);
            const double unfolded = test::rel_error(host((*side_a)[i]), want);
            const double folded = test::rel_error(host((*side_b)[i]), want);
            std::printf("[ %-9s ] layer %d %s against 16-bit: FP8 %.3e, FP8 folded %.3e\n", GetParam().name, l, name,
                        unfolded, folded);
            EXPECT_GT(unfolded, 0.0) << "the FP8 path was not taken";
            EXPECT_LT(folded, 1.5 * unfolded + 1e-3) << name << " of layer " << l;
        }
}

TEST_P(Fp8Encode, SavedMediaTokensNameTheComputeThatMadeThem) {
    // The towers' tokens differ with --compute fp8, so the model's fingerprint (which token files
    // carry and check) says so: the same checkpoint and dtype, another identity.
    EngineOptions o;
    o.model_dir = test::tiny_model_dir();
    o.backend = "cuda";
    o.dtype = GetParam().dtype == DType::bf16 ? "bf16" : "fp16";
    const std::string plain = runtime::LoadedModel(o).fingerprint();
    o.compute = "fp8";
    const std::string fp8 = runtime::LoadedModel(o).fingerprint();
    EXPECT_NE(fp8, plain);
    EXPECT_EQ(fp8, plain + ":fp8");
}

INSTANTIATE_TEST_SUITE_P(Gpus, Fp8Encode, testing::ValuesIn(gpus_present()),
                         [](const auto& info) { return std::string(info.param.name); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Fp8Encode);

TEST(Fp8Compute, TheFoldOverSharedHeadsIsOProjOfVRepeatedForEachHead) {
    // The media layers' o_proj with kept FP8 copies multiplies v by o folded over the heads
    // sharing a K/V head: on the CPU (f32), (o · Sᵀ) · v must be o · repeat_kv(v), for 2 and 4
    // heads a K/V head; every column of S has exactly one 1.
    auto cpu = make_backend("cpu", 1);
    for (const auto& [H, KV] : {std::pair{4, 2}, std::pair{8, 2}}) {
        const int64_t hd = 8, D = 24, n = 5;
        const Tensor S = model::shared_heads_fold(H, KV, hd);
        ASSERT_EQ(S.shape(), (Shape{KV * hd, H * hd}));
        for (int64_t c = 0; c < H * hd; ++c) {
            double column = 0;
            for (int64_t j = 0; j < KV * hd; ++j) column += S.data<float>()[j * H * hd + c];
            ASSERT_EQ(column, 1.0) << "column " << c;
        }
        const Tensor o = test::random_tensor({D, H * hd}, DType::f32, 11), v = test::random_tensor({n, KV, hd}, DType::f32, 12);
        const Tensor folded = cpu->linear(o, QTensor(S));
        const Tensor y = cpu->linear(v.reshape({n, KV * hd}), QTensor(folded));
        const Tensor want = cpu->linear(cpu->repeat_kv(v, H).reshape({n, H * hd}), QTensor(o));
        EXPECT_LT(test::rel_error(y, want), 1e-6) << H << " heads over " << KV;
    }
    EXPECT_THROW(model::shared_heads_fold(6, 4, 8), Error);
}

TEST(Fp8Compute, ABackendWithoutFp8UnitsRefusesIt) {
    auto cpu = make_backend("cpu");
    EXPECT_FALSE(cpu->fp8_supported());
    const std::string error = test::error_of([&] { cpu->set_fp8_encode(true); });
    EXPECT_THAT(error, HasSubstr("FP8"));
    EXPECT_THAT(error, HasSubstr("8.9"));
    EXPECT_FALSE(cpu->fp8_encode());
}

TEST(Fp8Compute, TheEngineNamesABadComputeMode) {
    for (const auto& [mode, says] : std::vector<std::pair<std::string, std::string>>{
             {"fp8", "no FP8 matrix units"}, {"int3", "expected 16bit or fp8"}}) {
        EngineOptions o;
        o.model_dir = test::tiny_model_dir();
        o.backend = "cpu";
        o.compute = mode;
        EXPECT_THAT(test::error_of([&] { Engine::open(o); }), HasSubstr(says)) << mode;
    }
}
