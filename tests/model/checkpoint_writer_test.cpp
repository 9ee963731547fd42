// Random-weight checkpoints: layout, determinism, value statistics, and that they validate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "io/checkpoint_writer.h"
#include "io/json_file.h"
#include "io/tokenizer.h"
#include "model/checkpoint.h"
#include "model/common/tower_layout.h"
#include "model/family.h"
#include "support/test_support.h"

using namespace vidi;
using testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

io::RandomCheckpointSummary make_tiny(const std::string& out, uint64_t seed, uint64_t shard_bytes,
                                      const std::string& tokenizer = "") {
    const std::string cfg = test::tiny_model_dir() + "/config.json";
    io::RandomCheckpointOptions opt;
    opt.out_dir = out;
    opt.seed = seed;
    opt.shard_bytes = shard_bytes;
    opt.tokenizer_model = tokenizer;
    return model::write_random_checkpoint(io::read_json_file(cfg), test::tiny_model_dir(), opt);
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Stats {
    double mean = 0, std = 0;
};
Stats stats_of(const Tensor& t) {
    auto v = t.to_f32_vector();
    double s = 0, s2 = 0;
    for (float x : v) s += x, s2 += double(x) * x;
    Stats r;
    r.mean = s / v.size();
    r.std = std::sqrt(s2 / v.size() - r.mean * r.mean);
    return r;
}

}  // namespace

TEST(RandomCheckpoint, TinyConfigGivesAValidShardedCheckpoint) {
    test::TempDir tmp("mk");
    const std::string out = tmp.file("ck");
    uint64_t written = 0, total = 0;
    io::RandomCheckpointOptions opt;
    opt.out_dir = out;
    opt.seed = 7;
    opt.shard_bytes = 400'000;
    opt.tokenizer_model = test::tiny_model_dir() + "/tokenizer.model";
    opt.progress = [&](uint64_t w, uint64_t t) { written = w, total = t; };
    auto s = model::write_random_checkpoint(io::read_json_file(test::tiny_model_dir() + "/config.json"),
                                         test::tiny_model_dir(), opt);
    EXPECT_EQ(written, total);
    EXPECT_EQ(s.bytes, total);
    EXPECT_GE(s.shards, 4);  // 1.58 MB of tensors in shards of at most 400 kB

    model::Checkpoint ck = model::Checkpoint::open(out);
    EXPECT_TRUE(ck.usable()) << ck.report().to_string();
    EXPECT_EQ(model::detect_vision_prefix(ck.store()), model::kVisionPrefixOfficial);  // the official layout
    EXPECT_EQ(ck.store().files().size(), size_t(s.shards));
    EXPECT_EQ(ck.store().total_bytes(), s.bytes);
    for (auto& f : ck.store().files()) {
        EXPECT_THAT(f->path(), testing::EndsWith("-of-0000" + std::to_string(s.shards) + ".safetensors"));
        if (f->tensors().size() > 1) {
            EXPECT_LE(f->file_size() - 8, 400'000u + 20'000u);  // data + header
        }
    }
    // The same tensors as the golden checkpoint, same parameter counts.
    model::Checkpoint golden = model::Checkpoint::open(test::tiny_model_dir());
    EXPECT_EQ(ck.params().total(), golden.params().total());
    EXPECT_EQ(ck.params().llm, golden.params().llm);
    EXPECT_EQ(ck.store().names().size(), golden.store().names().size());
    auto index = io::read_json_file(out + "/model.safetensors.index.json");
    EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), s.bytes);
    EXPECT_EQ(index["weight_map"].size(), ck.store().names().size());
    // Tower configs travel with the checkpoint; the tokenizer is the given one.
    EXPECT_TRUE(fs::exists(out + "/vision_tower/config.json"));
    EXPECT_TRUE(fs::exists(out + "/audio_tower/config.json"));
    EXPECT_EQ(file_bytes(out + "/tokenizer.model"), file_bytes(opt.tokenizer_model));
    for (auto& n : ck.store().names()) EXPECT_EQ(ck.store().info(n).dtype, DType::bf16) << n;
}

TEST(RandomCheckpoint, ValuesAreDeterministicAndPlausible) {
    test::TempDir tmp("mk");
    make_tiny(tmp.file("a"), 11, 1'000'000);
    make_tiny(tmp.file("b"), 11, 300'000);  // other sharding, same values
    make_tiny(tmp.file("c"), 12, 1'000'000);
    auto a = io::TensorStore::open(tmp.file("a")), b = io::TensorStore::open(tmp.file("b")),
         c = io::TensorStore::open(tmp.file("c"));
    const std::string emb = "model.embed_tokens.weight";
    EXPECT_EQ(a.get(emb).to_f32_vector(), b.get(emb).to_f32_vector());
    EXPECT_NE(a.get(emb).to_f32_vector(), c.get(emb).to_f32_vector());
    EXPECT_NE(a.get(emb).to_f32_vector(), a.get("model.layers.0.mlp.up_proj.weight").to_f32_vector());

    Stats w = stats_of(a.get(emb));  // 98304 values ~N(0, 0.02)
    EXPECT_NEAR(w.mean, 0.0, 0.001);
    EXPECT_NEAR(w.std, 0.02, 0.001);
    Stats ln = stats_of(a.get("model.mm_vis.vision_model.encoder.layers.0.layer_norm1.weight"));
    EXPECT_NEAR(ln.mean, 1.0, 0.01);
    Stats gemma_norm = stats_of(a.get("model.layers.0.input_layernorm.weight"));  // applied as 1 + w
    EXPECT_NEAR(gemma_norm.mean, 0.0, 0.01);
    Stats llm_norm = stats_of(a.get("model.mm_rand_llm_norm.weight"));  // initialised to mm_std
    EXPECT_NEAR(llm_norm.mean, 0.028976, 0.001);
    Stats bias = stats_of(a.get("model.mm_aud.encoder.layers.0.fc1.bias"));
    EXPECT_LT(bias.std, 0.02);
}

TEST(RandomCheckpoint, RandomValuesDoNotDependOnChunking) {
    std::vector<uint16_t> whole(1000), part(600);
    io::fill_random_bf16("x", io::TensorKind::matrix, 5, 0, 1000, whole.data());
    io::fill_random_bf16("x", io::TensorKind::matrix, 5, 400, 600, part.data());
    EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + 400));
}

TEST(RandomCheckpoint, BuildsAGemmaStyleTokenizerWhenNoneIsGiven) {
    test::TempDir tmp("mk");
    make_tiny(tmp.file("ck"), 1, 1'000'000);
    auto tok = io::Tokenizer::load(tmp.file("ck") + "/tokenizer.model");
    EXPECT_EQ(tok.vocab_size(), 1024);  // the config's vocab_size
    EXPECT_EQ(tok.piece_to_id("<start_of_turn>"), 106);
    EXPECT_EQ(tok.piece_to_id("<end_of_turn>"), 107);
}

TEST(RandomCheckpoint, FullPresetDescribesVidi15_9B) {
    // Only the config: the 20 GB write itself is measured in bench/RESULTS.md.
    model::ModelConfig c = model::config_from_json(model::find_preset("vidi1.5-9b").config, "/nonexistent");
    EXPECT_EQ(c.vision.source, "built-in google/siglip2-so400m-patch14-384");
    EXPECT_EQ(c.audio.source, "built-in openai/whisper-large-v3");
    int64_t llm = 0, vision = 0, audio = 0, glue = 0;
    for (auto& t : c.family->expected_tensors(c, nullptr)) {
        if (t.name == "lm_head.weight") continue;  // tied
        int64_t n = shape_numel(t.shape);
        switch (t.component) {
            case io::Component::llm: llm += n; break;
            case io::Component::vision: vision += n; break;
            case io::Component::audio: audio += n; break;
            case io::Component::glue: glue += n; break;
        }
    }
    // SPEC.md §8: 9.24B LLM + 0.43B SigLIP + 0.64B Whisper encoder.
    EXPECT_NEAR(llm / 1e9, 9.24, 0.01 * 9.24);
    EXPECT_NEAR(vision / 1e9, 0.43, 0.01);
    EXPECT_NEAR(audio / 1e9, 0.64, 0.01);
    EXPECT_EQ(c.vision.hidden * c.mm.image_pool * c.mm.image_pool, 4608);
    EXPECT_GT(glue, 0);
}

TEST(RandomCheckpoint, RefusesANonEmptyOutputDirectory) {
    test::TempDir tmp("mk");
    std::ofstream(tmp.file("keep.txt")) << "x";
    try {
        make_tiny(tmp.path(), 1, 1'000'000);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("already exists and is not an empty directory"));
    }
}
