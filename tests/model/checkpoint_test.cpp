// Checkpoint validation (the family's expected tensors, io's validator) against the golden
// tiny-a checkpoint and broken copies of it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/json_file.h"
#include "model/checkpoint.h"
#include "model/family.h"
#include "model/common/tower_layout.h"
#include "support/test_support.h"

using namespace vidi;
using model::Checkpoint;
using testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// Rewrites the shard holding `name` after `edit` changed its tensor list (copies first:
// the old file is mapped while we read it).
using TensorList = std::vector<std::pair<std::string, Tensor>>;
std::string rewrite_shard_of(const std::string& dir, const std::string& name, const std::function<void(TensorList&)>& edit) {
    std::string path;
    TensorList tensors;
    {
        auto store = io::TensorStore::open(dir);
        for (auto& f : store.files())
            if (f->has(name)) path = f->path();
        auto f = io::SafetensorsFile::open(path);
        for (auto& [n, info] : f->tensors()) tensors.emplace_back(n, f->get(n).clone());
    }
    edit(tensors);
    io::save_safetensors(path + ".new", tensors, {{"format", "pt"}});
    fs::rename(path + ".new", path);
    return path;
}

std::string open_error(const std::string& dir) {
    try {
        Checkpoint::open(dir);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

std::string require_error(const Checkpoint& ck) {
    try {
        ck.require_usable();
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST(Checkpoint, TinyGoldenIsUsableAndFullyExplained) {
    Checkpoint ck = Checkpoint::open(test::tiny_model_dir());
    const io::ValidationReport& r = ck.report();
    EXPECT_TRUE(r.usable()) << r.to_string();
    EXPECT_NO_THROW(ck.require_usable());
    EXPECT_TRUE(r.errors.empty());
    EXPECT_TRUE(r.missing.empty());
    EXPECT_TRUE(r.unexpected.empty());
    // Every tensor of the file is one the config explains (lm_head absent: tied).
    EXPECT_EQ(r.checked, ck.store().names().size());
    auto index = io::read_json_file(test::tiny_model_dir() + "/model.safetensors.index.json");
    EXPECT_EQ(ck.store().names().size(), index["weight_map"].size());
    EXPECT_FALSE(ck.has("lm_head.weight"));
    // The golden checkpoint stores SigLIP without the `vision_model.` level.
    EXPECT_EQ(model::detect_vision_prefix(ck.store()), "model.mm_vis.");
}

TEST(Checkpoint, TinyGoldenNamesShapesAndDtypes) {
    Checkpoint ck = Checkpoint::open(test::tiny_model_dir());
    const std::vector<std::pair<std::string, Shape>> facts = {
        {"model.embed_tokens.weight", {1024, 96}},
        {"model.layers.3.self_attn.q_proj.weight", {128, 96}},  // 4 heads x 32
        {"model.layers.3.self_attn.k_proj.weight", {64, 96}},   // 2 KV heads x 32
        {"model.layers.0.self_attn.o_proj.weight", {96, 128}},
        {"model.layers.0.mlp.down_proj.weight", {96, 160}},
        {"model.mm_vis.embeddings.patch_embedding.weight", {48, 3, 14, 14}},
        {"model.mm_vis.embeddings.position_embedding.weight", {729, 48}},
        {"model.mm_vis.head.attention.in_proj_weight", {144, 48}},
        {"model.mm_vis.head.probe", {1, 1, 48}},
        {"model.mm_aud.encoder.conv1.weight", {40, 128, 3}},
        {"model.mm_aud.encoder.conv2.weight", {40, 40, 3}},
        {"model.mm_aud.encoder.embed_positions.weight", {1500, 40}},
        {"model.mm_aud.encoder.layers.1.fc1.weight", {72, 40}},
        {"model.mm_rand_img_projector.model.0.weight", {96, 192}},  // C·p² = 48·4
        {"model.mm_rand_aud_pool.weight", {96, 40, 5}},
        {"model.mm_rand_pos_t.mlp.2.weight", {96, 96}},
    };
    for (auto& [name, shape] : facts) {
        Tensor t = ck.get(name);
        EXPECT_EQ(t.shape(), shape) << name;
        EXPECT_EQ(t.dtype(), DType::bf16) << name;
    }
    EXPECT_FALSE(ck.has("model.mm_aud.encoder.layers.0.self_attn.k_proj.bias"));  // Whisper: no k bias
    // Unused but known: the pooling head, the post-layernorm and the layer after select_layer -2.
    const auto& unused = ck.report().unused;
    auto has_unused = [&](const std::string& n) { return std::find(unused.begin(), unused.end(), n) != unused.end(); };
    EXPECT_TRUE(has_unused("model.mm_vis.head.probe"));
    EXPECT_TRUE(has_unused("model.mm_vis.post_layernorm.weight"));
    EXPECT_TRUE(has_unused("model.mm_vis.encoder.layers.2.mlp.fc1.weight"));
    EXPECT_FALSE(has_unused("model.mm_vis.encoder.layers.1.mlp.fc1.weight"));
    EXPECT_EQ(ck.config().vision_layers_used(), 2);
}

TEST(Checkpoint, TinyGoldenValuesMatchAnIndependentReader) {
    // python3 reads the shard with json + struct and prints the first values as floats.
    const std::string name = "model.mm_rand_img_projector.model.0.weight";
    Checkpoint ck = Checkpoint::open(test::tiny_model_dir());
    std::string shard;
    for (auto& f : ck.store().files())
        if (f->has(name)) shard = f->path();
    const std::string script =
        "import json,struct,sys\n"
        "b=open(sys.argv[1],'rb').read(); n=struct.unpack('<Q',b[:8])[0]; h=json.loads(b[8:8+n])\n"
        "o=8+n+h[sys.argv[2]]['data_offsets'][0]\n"
        "for i in range(6): print(repr(struct.unpack('<f',b'\\0\\0'+b[o+2*i:o+2*i+2])[0]))\n"
        "t=h['model.norm.weight']['data_offsets']; print(t[1]-t[0])\n";
    test::TempDir tmp("ckpt");
    std::ofstream(tmp.file("read.py")) << script;
    std::string out;
    ASSERT_EQ(test::run_command("python3 " + tmp.file("read.py") + " " + shard + " " + name, &out), 0) << out;
    std::istringstream in(out);
    std::vector<float> values = ck.get(name).to_f32_vector();
    for (int i = 0; i < 6; ++i) {
        double v;
        in >> v;
        EXPECT_EQ(values[i], float(v)) << "element " << i;
    }
    size_t norm_bytes;
    in >> norm_bytes;
    EXPECT_EQ(ck.get("model.norm.weight").nbytes(), norm_bytes);
    EXPECT_NE(values[0], 0.0f);
}

TEST(Checkpoint, ParamCountsFollowTheConfig) {
    Checkpoint ck = Checkpoint::open(test::tiny_model_dir());
    io::ParamCounts p = ck.params();
    // Hand-derived from config.json: D 96, 4 layers, q 4x32, kv 2x32, MLP 160, vocab 1024.
    const int64_t layer = 96 * 128 * 2 + 96 * 64 * 2 + 3 * 96 * 160 + 4 * 96;
    EXPECT_EQ(p.llm, 1024 * 96 + 4 * layer + 96);
    // Glue: projector 96x192+96 + 96x96+96, img/aud/llm norms, 3 pos MLPs, aud pool, aud projector.
    const int64_t mlp = 2 * (96 * 96 + 96);
    EXPECT_EQ(p.glue, (96 * 192 + 96 + 96 * 96 + 96) + 3 * 96 + 3 * mlp + 96 * 40 * 5 + mlp);
    // Whisper: convs, positions, 2 layers (k without bias), final norm.
    const int64_t alayer = 4 * 40 * 40 + 3 * 40 + 2 * 80 + 72 * 40 + 72 + 40 * 72 + 40;
    EXPECT_EQ(p.audio, 40 * 128 * 3 + 40 + 40 * 40 * 3 + 40 + 1500 * 40 + 2 * alayer + 80);
    EXPECT_GT(p.vision, 0);
    EXPECT_LT(p.used, p.total());  // head, post-layernorm and the last SigLIP layer are unused
    io::WeightBytes b = io::weight_bytes(p.total());
    EXPECT_EQ(b.bf16, 2 * p.total());
    EXPECT_EQ(b.int8, p.total());
    EXPECT_EQ(b.q4, (p.total() + 1) / 2 + (p.total() + 63) / 64 * 4);
}

TEST(CheckpointBroken, GlueTensorWithTransposedShape) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const std::string name = "model.mm_rand_img_projector.model.0.weight";
    rewrite_shard_of(dir, name, [&](TensorList& ts) {
        for (auto& [n, t] : ts)
            if (n == name) t = t.reshape({192, 96});  // same element count, wrong layout
    });
    Checkpoint ck = Checkpoint::open(dir);
    EXPECT_FALSE(ck.usable());
    EXPECT_THAT(ck.report().errors,
                testing::ElementsAre("tensor model.mm_rand_img_projector.model.0.weight: expected [96, 192] found [192, 96]"));
    EXPECT_THAT(require_error(ck), HasSubstr("expected [96, 192] found [192, 96]"));
    EXPECT_THAT(require_error(ck), HasSubstr(dir));
}

TEST(CheckpointBroken, MissingTensor) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const std::string name = "model.mm_rand_aud_pool.weight";
    rewrite_shard_of(dir, name, [&](TensorList& ts) {
        std::erase_if(ts, [&](auto& p) { return p.first == name; });
    });
    auto index = io::read_json_file(dir + "/model.safetensors.index.json");
    index["weight_map"].erase(name);
    io::write_json_file(dir + "/model.safetensors.index.json", index);
    Checkpoint ck = Checkpoint::open(dir);
    EXPECT_THAT(ck.report().missing, testing::ElementsAre(name));
    EXPECT_TRUE(ck.report().errors.empty());
    EXPECT_THAT(require_error(ck), HasSubstr("missing tensor model.mm_rand_aud_pool.weight"));
}

TEST(CheckpointBroken, UnexpectedTensorAndWrongDtype) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    rewrite_shard_of(dir, "model.norm.weight", [&](TensorList& ts) {
        for (auto& [n, t] : ts)
            if (n == "model.norm.weight") t = Tensor::zeros({96}, DType::i32);
        ts.emplace_back("model.layers.4.input_layernorm.weight", Tensor::zeros({96}, DType::bf16));
    });
    Checkpoint ck = Checkpoint::open(dir);
    EXPECT_THAT(ck.report().unexpected, testing::ElementsAre("model.layers.4.input_layernorm.weight"));
    EXPECT_THAT(ck.report().errors,
                testing::ElementsAre("tensor model.norm.weight: dtype i32 is not a float type (expected bf16, f16 or f32)"));
    EXPECT_THAT(require_error(ck), HasSubstr("unexpected tensor model.layers.4.input_layernorm.weight"));
}

TEST(CheckpointBroken, TruncatedShard) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const std::string shard = dir + "/model-00002-of-00002.safetensors";
    fs::resize_file(shard, fs::file_size(shard) - 1000);
    std::string err = open_error(dir);
    EXPECT_THAT(err, HasSubstr(shard));
    EXPECT_THAT(err, HasSubstr("truncated file"));
}

TEST(CheckpointBroken, BadIndexEntries) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const std::string index_path = dir + "/model.safetensors.index.json";
    auto index = io::read_json_file(index_path);
    auto bad = index;
    bad["weight_map"]["model.norm.weight"] = "model-00003-of-00002.safetensors";
    io::write_json_file(index_path, bad);
    EXPECT_THAT(open_error(dir),
                HasSubstr("shard 'model-00003-of-00002.safetensors' (holding 'model.norm.weight') does not exist"));
    // The other shard exists but does not hold the tensor.
    bad = index;
    const std::string home = index["weight_map"]["model.norm.weight"];
    const std::string other = home == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors"
                                                                         : "model-00001-of-00002.safetensors";
    bad["weight_map"]["model.norm.weight"] = other;
    io::write_json_file(index_path, bad);
    EXPECT_THAT(open_error(dir), HasSubstr("says 'model.norm.weight' is in " + other + " but that shard lacks it"));
    bad = index;
    bad["weight_map"]["model.norm.weight"] = 7;
    io::write_json_file(index_path, bad);
    EXPECT_THAT(open_error(dir), HasSubstr("weight_map entry 'model.norm.weight' is not a file name"));
}

TEST(CheckpointBroken, MalformedConfigJson) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    std::ofstream(dir + "/config.json") << "{\"hidden_size\": 96,\n \"num_hidden_layers\": }";
    std::string err = open_error(dir);
    EXPECT_THAT(err, HasSubstr(dir + "/config.json: malformed JSON"));
}

// Found by fuzz/config_fuzz.cpp: an integer key given as a huge float was converted to int
// unchecked (undefined behaviour); a fractional one was truncated.
TEST(CheckpointBroken, IntegerKeysMustBeWholeNumbersThatFit) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    for (const char* bad : {"1.0211e120", "4.5", "3000000000", "-9.3e18"}) {
        auto cfg = io::read_json_file(dir + "/config.json");
        cfg["num_hidden_layers"] = nlohmann::json::parse(bad);
        io::write_json_file(dir + "/config.json", cfg);
        EXPECT_THAT(open_error(dir), HasSubstr("key \"num_hidden_layers\" must be a whole number that fits")) << bad;
    }
    auto cfg = io::read_json_file(dir + "/config.json");
    cfg["num_hidden_layers"] = 4.0;  // a whole number written as a float is still 4
    io::write_json_file(dir + "/config.json", cfg);
    EXPECT_EQ(model::load_config(dir).llm.layers, 4);
    // Sizes past 2^20 fit an int but wrapped the writer's byte counts (make-checkpoint passed
    // its free-space check for terabytes): refused by name.
    cfg["hidden_size"] = 2147483494;
    io::write_json_file(dir + "/config.json", cfg);
    EXPECT_THAT(open_error(dir), HasSubstr("\"hidden_size\" is 2147483494, more than the 1048576 this engine takes"));
}

TEST(CheckpointBroken, ConfigThatDisagreesWithTheTensors) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    auto cfg = io::read_json_file(dir + "/config.json");
    cfg["intermediate_size"] = 192;
    io::write_json_file(dir + "/config.json", cfg);
    Checkpoint ck = Checkpoint::open(dir);
    EXPECT_FALSE(ck.usable());
    EXPECT_EQ(ck.report().errors.size(), 4u * 3u);  // gate, up, down in each of 4 layers
    EXPECT_THAT(ck.report().errors,
                testing::Contains("tensor model.layers.0.mlp.gate_proj.weight: expected [192, 96] found [160, 96]"));
}

// transformers 4.50 (the official pin) scales Gemma-2's rotary frequencies by "rope_scaling":
// the engine takes only what computes plain RoPE and refuses the rest by name, not silently.
TEST(CheckpointBroken, RopeScalingOtherThanPlainIsRefusedByName) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const auto with = [&](const nlohmann::json& scaling) {
        auto cfg = io::read_json_file(dir + "/config.json");
        cfg["rope_scaling"] = scaling;
        io::write_json_file(dir + "/config.json", cfg);
    };
    for (const nlohmann::json& plain : {nlohmann::json(nullptr), nlohmann::json{{"rope_type", "default"}},
                                        nlohmann::json{{"type", "default"}, {"factor", 4.0}}}) {
        with(plain);
        EXPECT_EQ(model::load_config(dir).llm.rope_theta, 10000.0) << plain.dump();
    }
    with({{"type", "linear"}, {"factor", 2.0}});
    EXPECT_THAT(open_error(dir), HasSubstr("config.json: \"rope_scaling\" of type \"linear\" is not supported"
                                           ": the engine computes Vidi1.5 (Gemma-2)'s plain RoPE only"));
    with({{"rope_type", "dynamic"}, {"type", "default"}});  // rope_type is read first, as transformers does
    EXPECT_THAT(open_error(dir), HasSubstr("of type \"dynamic\""));
    with({{"rope_type", std::string(100, 'y') + "\u00e9\u00e9"}});  // long names are cut, whole characters
    EXPECT_THAT(open_error(dir), HasSubstr("of type \"" + std::string(77, 'y') + "...\" is not supported"));
    for (const nlohmann::json& odd : {nlohmann::json{{"factor", 2.0}}, nlohmann::json(2.0), nlohmann::json("linear"),
                                      nlohmann::json{{"rope_type", 5}, {"type", "default"}}}) {
        with(odd);
        EXPECT_THAT(open_error(dir), HasSubstr("\"rope_scaling\" " + odd.dump() + " is not supported")) << odd.dump();
    }
}

// The vision tower's channel count and norm epsilon are checked at open, not found wrong
// after a video is decoded (an "expected pixels [n, 0, 384, 384]" or NaN tokens then).
TEST(CheckpointBroken, VisionChannelsAndEpsilonAreChecked) {
    test::TempDir tmp("ckpt");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const std::string vision = dir + "/vision_tower/config.json";
    const auto cfg = io::read_json_file(vision);
    const auto with = [&](const char* key, const nlohmann::json& value) {
        auto c = cfg;
        c[key] = value;
        io::write_json_file(vision, c);
        return open_error(dir);
    };
    EXPECT_THAT(with("num_channels", 1), HasSubstr("num_channels is 1, but the frames are RGB (3 channels)"));
    EXPECT_THAT(with("num_channels", 0), HasSubstr("num_channels is 0"));
    EXPECT_THAT(with("layer_norm_eps", -1), HasSubstr("\"layer_norm_eps\" must be positive, got -1"));
    EXPECT_THAT(with("layer_norm_eps", 0), HasSubstr("\"layer_norm_eps\" must be positive, got 0"));
    io::write_json_file(vision, cfg);
    EXPECT_TRUE(model::Checkpoint::open(dir).usable());
}

// A Vidi1.5 tokenizer must hold the pieces its prompts are made of, and nothing else of the
// synthetic layout: Gemma-2's own has <2mass> where the synthetic one has [multimodal], and
// loads; one without <end_of_turn> (another model's) is refused, as one whose <bos> is not the
// config's.
TEST(CheckpointTokenizer, ThePromptsPiecesAreRequiredAndNothingElse) {
    test::TempDir tmp("ckpt-tok");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const Checkpoint ck = Checkpoint::open(dir);
    const auto write = [&](const std::string& piece, const std::string& instead, int bos = 2) {
        io::SentencePieceLayout l = ck.family().tokenizer_layout();
        for (auto& special : l.specials)
            if (special.first == piece) special.first = instead;
        l.bos_id = bos;
        io::write_sentencepiece_model(dir + "/tokenizer.model", ck.config().llm.vocab, l);
    };
    write("[multimodal]", "<2mass>");
    EXPECT_EQ(ck.tokenizer().piece_to_id("<end_of_turn>"), 107);
    write("<end_of_turn>", "<unused99>");
    EXPECT_THAT(test::error_of([&] { ck.tokenizer(); }), HasSubstr("no piece <end_of_turn>"));
    write("", "", 1);
    EXPECT_THAT(test::error_of([&] { ck.tokenizer(); }), HasSubstr("<bos> is id 1 but config.json's bos_token_id is 2"));
}
