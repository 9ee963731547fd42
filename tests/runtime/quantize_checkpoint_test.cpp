// `vidi quantize` output: a valid checkpoint in the official layout whose quantised
// weights give exactly what quantising at load time gives, and clear refusals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "model/checkpoint.h"
#include "model/vidi15/gemma2.h"
#include "runtime/generate.h"
#include "runtime/quantize_checkpoint.h"
#include "support/test_support.h"

using namespace vidi;
using test::error_of;
using testing::HasSubstr;

namespace {

Tensor forced(const std::string& dir, const QuantFormat& load_format) {
    model::Checkpoint ck = model::Checkpoint::open(dir);
    auto backend = make_cpu_backend(0);
    model::LoadOptions load;
    load.linear_format = load_format;
    model::vidi15::Gemma2 decoder{ck.config(), model::WeightLoader(ck.store(), *backend, load)};
    return runtime::forced_logits(decoder, {2, 5, 9, 11}, {}, {3, 7, 8});
}

}  // namespace

TEST(QuantizeCheckpoint, WritesAUsableCheckpointEqualToLoadTimeQuantisation) {
    test::TempDir tmp("quant");
    runtime::QuantizeOptions o;
    o.model_dir = test::tiny_model_dir();
    o.out_dir = tmp.file("q4");
    o.weights = "int4/g32";
    const runtime::QuantizeSummary s = runtime::quantize_checkpoint(o);
    EXPECT_GT(s.quantized, 20);
    EXPECT_LT(s.bytes_out, s.bytes_in * 6 / 10);

    model::Checkpoint ck = model::Checkpoint::open(o.out_dir);
    ASSERT_TRUE(ck.usable()) << ck.report().to_string();
    model::Checkpoint original = model::Checkpoint::open(o.model_dir);
    EXPECT_EQ(ck.params().total(), original.params().total());
    const Tensor codes = ck.get("model.layers.0.mlp.down_proj.weight");
    EXPECT_EQ(codes.dtype(), DType::u8);
    EXPECT_EQ(codes.shape(), (Shape{96, 80}));
    EXPECT_EQ(ck.get("model.layers.0.mlp.down_proj.weight_scale").shape(), (Shape{96, 5}));

    // Same codes and scales as at load time: identical logits, and different from bf16.
    const Tensor stored = forced(o.out_dir, {}), at_load = forced(o.model_dir, parse_quant_format(o.weights));
    EXPECT_EQ(test::rel_error(stored, at_load), 0.0);
    EXPECT_GT(test::rel_error(stored, forced(o.model_dir, {})), 1e-3);

    // A quantised checkpoint is not quantised twice, and nothing is overwritten.
    runtime::QuantizeOptions again = o;
    again.model_dir = o.out_dir;
    again.out_dir = tmp.file("q4q4");
    EXPECT_THAT(error_of([&] { runtime::quantize_checkpoint(again); }), HasSubstr("already quantised"));
    runtime::QuantizeOptions overwrite = o;
    EXPECT_THAT(error_of([&] { runtime::quantize_checkpoint(overwrite); }), HasSubstr("not an empty directory"));
}

TEST(QuantizeCheckpoint, BrokenScalesAreNamedByValidation) {
    test::TempDir tmp("quant-bad");
    runtime::QuantizeOptions o;
    o.model_dir = test::tiny_model_dir();
    o.out_dir = tmp.file("q8");
    o.weights = "int8";
    runtime::quantize_checkpoint(o);
    // Rewrite the shard with one scale tensor of the wrong shape.
    model::Checkpoint ck = model::Checkpoint::open(o.out_dir);
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const std::string& name : ck.store().names()) {
        Tensor t = ck.get(name).clone();
        if (name == "model.layers.1.self_attn.q_proj.weight_scale") t = Tensor::zeros({128, 5}, DType::f32);  // 5 groups do not divide 96
        tensors.emplace_back(name, t);
    }
    const std::string shard = o.out_dir + "/model-00001-of-00001.safetensors";
    ck = model::Checkpoint();
    io::save_safetensors(shard + ".new", tensors);
    std::filesystem::rename(shard + ".new", shard);
    model::Checkpoint broken = model::Checkpoint::open(o.out_dir);
    EXPECT_FALSE(broken.usable());
    EXPECT_THAT(broken.report().to_string(), HasSubstr("model.layers.1.self_attn.q_proj.weight_scale"));
}

// A NaN in a weight is named by inspect --values and fails a 16-bit run; quantising must not
// turn it into an ordinary code (the max ignores it) and write a checkpoint called usable.
TEST(QuantizeCheckpoint, AWeightHoldingNaNIsRefusedByName) {
    test::TempDir tmp("quant-nan");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    test::write_bf16(dir, "model.layers.0.self_attn.o_proj.weight", 0x7FC0);  // NaN (K 128: int8 and int4/g64)
    for (const char* weights : {"int8", "int4"}) {
        runtime::QuantizeOptions o;
        o.model_dir = dir;
        o.out_dir = tmp.file(std::string("q-") + weights);
        o.weights = weights;
        EXPECT_THAT(error_of([&] { runtime::quantize_checkpoint(o); }),
                    HasSubstr("model.layers.0.self_attn.o_proj.weight holds NaN or infinity"));
        EXPECT_FALSE(std::filesystem::exists(o.out_dir)) << weights;
    }
}

// Only the safetensors weights are written: other formats' weight files (a PyTorch copy beside
// them) are not copied; the tokenizer and the rest are.
TEST(QuantizeCheckpoint, OtherFormatsWeightsAreNotCopied) {
    test::TempDir tmp("quant-other");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    std::ofstream(dir + "/pytorch_model.bin") << std::string(1000, 'w');
    std::ofstream(dir + "/pytorch_model.bin.index.json") << "{}";
    std::ofstream(dir + "/generation_config.json") << "{}";
    runtime::QuantizeOptions o;
    o.model_dir = dir;
    o.out_dir = tmp.file("q8");
    o.weights = "int8";
    runtime::quantize_checkpoint(o);
    EXPECT_FALSE(std::filesystem::exists(o.out_dir + "/pytorch_model.bin"));
    EXPECT_FALSE(std::filesystem::exists(o.out_dir + "/pytorch_model.bin.index.json"));
    EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/generation_config.json"));
    EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/tokenizer.model"));
    EXPECT_TRUE(std::filesystem::exists(o.out_dir + "/model.safetensors.index.json"));
}
