// The Vidi-7B family in the registry and its checkpoint checks: chosen by model_type or
// architecture, config.json keys refused with a clear error, the validator refusing tensors
// that do not fit the config, and a random checkpoint in its layout that opens as usable (the
// layout's linear weights: family_test.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "io/checkpoint_writer.h"
#include "io/json_file.h"
#include "io/tokenizer.h"
#include "model/checkpoint.h"
#include "model/family.h"
#include "model/vidi15/family.h"
#include "model/vidi7b/family.h"
#include "model/vidi7b/vidi7b.h"
#include "support/test_support.h"

using namespace vidi;
using test::error_of;
using testing::HasSubstr;

namespace {

nlohmann::json tiny7b_config() { return io::read_json_file(test::tiny_vidi7b_dir() + "/config.json"); }

std::string config_error(const nlohmann::json& j) {
    return error_of([&] { model::config_from_json(j, test::tiny_vidi7b_dir()); });
}

// A writable copy of the tiny Vidi-7B with config.json edited.
std::string edited_copy(const test::TempDir& tmp, const std::function<void(nlohmann::json&)>& edit) {
    const std::string dir = tmp.file("ck");
    test::copy_dir(test::tiny_vidi7b_dir(), dir);
    nlohmann::json j = io::read_json_file(dir + "/config.json");
    edit(j);
    io::write_json_file(dir + "/config.json", j);
    return dir;
}

}  // namespace

TEST(Vidi7bRegistry, PicksVidi7bByModelTypeThenByArchitecture) {
    nlohmann::json c = tiny7b_config();
    EXPECT_EQ(&model::family_for(c, "cfg"), &model::vidi7b::family());
    EXPECT_EQ(model::family_for(c, "cfg").name(), "vidi-7b");
    c["model_type"] = "mistral_something";  // unknown type, known architecture
    EXPECT_EQ(&model::family_for(c, "cfg"), &model::vidi7b::family());
    c["model_type"] = "dattn_gemma2";  // the type wins over the architecture
    EXPECT_EQ(&model::family_for(c, "cfg"), &model::vidi15::family());
    c.erase("model_type");
    c["architectures"] = {"MistralForCausalLM"};
    EXPECT_THAT(error_of([&] { model::family_for(c, "cfg"); }), HasSubstr("dattn_mistral (vidi-7b)"));
    EXPECT_EQ(model::load_config(test::tiny_vidi7b_dir()).family, &model::vidi7b::family());
}

TEST(Vidi7bRegistry, PresetIsTheAssumedMistral7bShape) {
    EXPECT_THAT(model::preset_names(), testing::Contains("vidi-7b"));
    const nlohmann::json& p = model::find_preset("vidi-7b").config;
    EXPECT_EQ(p["model_type"], "dattn_mistral");
    const model::ModelConfig c = model::config_from_json(p, "/nonexistent");  // built-in tower configs
    EXPECT_EQ(c.family, &model::vidi7b::family());
    EXPECT_EQ(c.llm.layers, 32);
    EXPECT_EQ(c.llm.kv_heads, 8);
    EXPECT_EQ(c.llm.sliding_window, 0);  // null: no window
    EXPECT_EQ(c.vision.grid(), 27);
    EXPECT_EQ(model::vidi7b::conv_kernel(c), 4);  // ⌈27/8⌉
    EXPECT_EQ(model::vidi7b::conv_grid_side(c), 24);
}

TEST(Vidi7bConfig, ReadsMistralKeysWithItsDefaults) {
    const model::ModelConfig c = model::load_config(test::tiny_vidi7b_dir());
    EXPECT_EQ(c.llm.hidden, 96);
    EXPECT_EQ(c.llm.heads, 4);
    EXPECT_EQ(c.llm.kv_heads, 2);
    EXPECT_EQ(c.llm.head_dim, 24);
    EXPECT_EQ(c.llm.query_pre_attn_scalar, 24);  // scale hd^-0.5
    EXPECT_EQ(c.llm.attn_softcap, 0);
    EXPECT_EQ(c.llm.final_softcap, 0);
    EXPECT_EQ(c.llm.sliding_window, 16);
    EXPECT_FALSE(c.llm.tie_embeddings);
    EXPECT_EQ(c.mm.image_pool, 5);
    nlohmann::json j = tiny7b_config();
    j.erase("sliding_window");  // MistralConfig's default
    EXPECT_EQ(model::config_from_json(j, test::tiny_vidi7b_dir()).llm.sliding_window, 4096);
    j["sliding_window"] = nullptr;
    EXPECT_EQ(model::config_from_json(j, test::tiny_vidi7b_dir()).llm.sliding_window, 0);
    j.erase("head_dim");
    EXPECT_EQ(model::config_from_json(j, test::tiny_vidi7b_dir()).llm.head_dim, 24);  // D / H
}

TEST(Vidi7bConfig, RefusesWhatTheEngineOrTheOfficialCodeCannotRun) {
    auto with = [](const char* key, const nlohmann::json& v) {
        nlohmann::json j = tiny7b_config();
        if (v.is_discarded()) j.erase(key);
        else j[key] = v;
        return config_error(j);
    };
    const nlohmann::json erase(nlohmann::json::value_t::discarded);
    EXPECT_THAT(with("mm_image_pool_size", erase), HasSubstr("missing key \"mm_image_pool_size\""));
    EXPECT_THAT(with("mm_time_interval", erase), HasSubstr("missing key \"mm_time_interval\""));
    EXPECT_THAT(with("hidden_act", "gelu"), HasSubstr("unsupported hidden_act \"gelu\""));
    EXPECT_THAT(with("rope_scaling", {{"type", "linear"}}), HasSubstr("\"rope_scaling\" of type \"linear\" is not supported"));
    EXPECT_THAT(with("num_key_value_heads", 3), HasSubstr("not a multiple of num_key_value_heads 3"));
    EXPECT_THAT(with("mm_vision_tower", "openai/clip-vit-large-patch14"), HasSubstr("is a CLIP tower"));
    EXPECT_THAT(with("mm_audio_tower", "audio_tower"), HasSubstr("is not a Whisper tower"));
    EXPECT_THAT(with("mm_image_pool_size", 28), HasSubstr("must be between 2 and the vision tower's 27"));
    EXPECT_THAT(with("hidden_size", 0), HasSubstr("hidden_size"));
}

TEST(Vidi7bCheckpoint, AConfigThatDoesNotFitTheTensorsIsRefusedWithTheTensorsName) {
    test::TempDir tmp("ck7b");
    // A pool of 4 a side needs a 7×7 convolution; the checkpoint holds a 6×6 one.
    const std::string dir = edited_copy(tmp, [](nlohmann::json& j) { j["mm_image_pool_size"] = 4; });
    const model::Checkpoint ck = model::Checkpoint::open(dir);
    EXPECT_FALSE(ck.usable());
    EXPECT_THAT(ck.report().errors,
                testing::Contains("tensor model.mm_rand_img_pool.conv.weight: expected [48, 48, 7, 7] found [48, 48, 6, 6]"));
    EXPECT_THAT(error_of([&] { ck.require_usable(); }), HasSubstr(dir));
}

TEST(Vidi7bCheckpoint, AVidi15CheckpointLabelledMistralIsRefused) {
    test::TempDir tmp("ck7b");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    nlohmann::json j = io::read_json_file(dir + "/config.json");
    j["model_type"] = "dattn_mistral";
    io::write_json_file(dir + "/config.json", j);
    // Its tower directories are not named as the official loader needs (it picks the classes
    // by the words siglip / whisper).
    EXPECT_THAT(error_of([&] { model::Checkpoint::open(dir); }),
                HasSubstr(dir + "/config.json: mm_vision_tower \"vision_tower\" names neither a CLIP nor a SigLIP tower"));
    j.erase("mm_time_interval");
    io::write_json_file(dir + "/config.json", j);
    EXPECT_THAT(error_of([&] { model::Checkpoint::open(dir); }),
                HasSubstr("missing key \"mm_time_interval\" (Vidi-7B has no default for it)"));
}

TEST(Vidi7bCheckpoint, AVidi15DecoderUnderVidi7bConfigIsRefusedTensorByTensor) {
    // The tiny Vidi-7B's config over tiny-a's weights: Gemma2's four norms a layer and its
    // parameter-free image pool are not Vidi-7B's.
    test::TempDir tmp("ck7b");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    nlohmann::json j = tiny7b_config();
    j["mm_vision_tower"] = "siglip_tower";
    j["mm_audio_tower"] = "whisper_tower";
    io::write_json_file(dir + "/config.json", j);
    test::run_command("cp -r " + test::tiny_vidi7b_dir() + "/siglip_tower " + test::tiny_vidi7b_dir() + "/whisper_tower " + dir);
    const model::Checkpoint ck = model::Checkpoint::open(dir);
    EXPECT_FALSE(ck.usable());
    EXPECT_THAT(ck.report().missing, testing::Contains("model.mm_rand_img_pool.conv.weight"));
    EXPECT_THAT(ck.report().unexpected, testing::Contains("model.layers.0.pre_feedforward_layernorm.weight"));
    EXPECT_THAT(error_of([&] { ck.require_usable(); }), HasSubstr("missing tensor model.mm_rand_img_pool.conv.weight"));
}

TEST(Vidi7bCheckpoint, ARandomCheckpointInItsLayoutOpensUsable) {
    test::TempDir tmp("ck7b");
    io::RandomCheckpointOptions opt;
    opt.out_dir = tmp.file("rand");
    opt.seed = 3;
    opt.shard_bytes = 600'000;
    const auto s = model::write_random_checkpoint(tiny7b_config(), test::tiny_vidi7b_dir(), opt);
    EXPECT_GE(s.shards, 2);
    const model::Checkpoint ck = model::Checkpoint::open(opt.out_dir);
    EXPECT_TRUE(ck.usable()) << ck.report().to_string();
    EXPECT_EQ(&ck.family(), &model::vidi7b::family());
    EXPECT_TRUE(ck.store().has("lm_head.weight"));
    // The family's own tokenizer: <unk> 0, <s> 1, </s> 2.
    const io::Tokenizer tok = io::Tokenizer::load(opt.out_dir + "/tokenizer.model");
    EXPECT_EQ(tok.bos_id(), 1);
    EXPECT_EQ(tok.piece_to_id("</s>"), 2);
}
