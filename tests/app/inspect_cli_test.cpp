// `vidi inspect` and `vidi make-checkpoint` through the built binary: output and exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "support/test_support.h"

using testing::HasSubstr;
using testing::Not;

namespace {

std::string run_vidi(const std::string& args, int* rc) {
    std::string out;
    *rc = vidi::test::run_command(vidi::test::vidi_binary() + " " + args, &out);
    return out;
}

// A copy of tiny-a with `edit` (a shell command run inside it) applied.
std::string broken_copy(const vidi::test::TempDir& tmp, const std::string& edit) {
    const std::string dir = tmp.file("ck");
    std::string out;
    int rc = vidi::test::run_command("cp -r " + vidi::test::tiny_model_dir() + " " + dir + " && chmod -R u+w " + dir +
                                         " && cd " + dir + " && " + edit,
                                     &out);
    EXPECT_EQ(rc, 0) << out;
    return dir;
}

}  // namespace

TEST(InspectCli, UsableGoldenCheckpointExitsZero) {
    int rc;
    std::string out = run_vidi("inspect " + vidi::test::tiny_model_dir(), &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("4 layers, D 96, 4 heads / 2 KV heads, head dim 32"));
    EXPECT_THAT(out, HasSubstr("sliding window 8"));
    EXPECT_THAT(out, HasSubstr("3 layers (2 used), width 48"));
    EXPECT_THAT(out, HasSubstr("verdict usable"));
}

// The chat line: the built-in format, or a warning naming what the checkpoint's field holds.
TEST(InspectCli, AChatTemplateFieldThatHoldsNoTemplateIsNamed) {
    int rc;
    EXPECT_THAT(run_vidi("inspect " + vidi::test::tiny_model_dir(), &rc),
                HasSubstr("chat    the checkpoint's chat_template is the built-in vidi1.5 prompt format"));
    vidi::test::TempDir tmp("inspect-chat");
    const std::string dir = broken_copy(tmp, "true");
    const std::string config = dir + "/tokenizer_config.json";
    nlohmann::json tc = nlohmann::json::parse(std::ifstream(config));
    tc["chat_template"] = 42;
    std::ofstream(config) << tc.dump();
    const std::string out = run_vidi("inspect " + dir, &rc);
    EXPECT_EQ(rc, 0) << out;  // still usable: prompts follow the built-in format
    EXPECT_THAT(out, HasSubstr("chat    warning: " + dir + ": tokenizer_config.json's chat_template is a number, not a "
                               "template"));
}

TEST(InspectCli, ArchitecturesOfAnotherFamilyAreWarnedAbout) {
    int rc;
    const std::string plain = run_vidi("inspect --json " + vidi::test::tiny_model_dir(), &rc);
    ASSERT_EQ(rc, 0) << plain;
    EXPECT_TRUE(nlohmann::json::parse(plain)["family_warning"].is_null());
    vidi::test::TempDir tmp("inspect-arch");
    const std::string dir =
        broken_copy(tmp, "sed -i 's/DattnGemma2ForCausalLM/DattnMistralForCausalLM/' config.json");
    const std::string out = run_vidi("inspect " + dir, &rc);
    EXPECT_EQ(rc, 0) << out;  // still read, as its model_type says
    EXPECT_THAT(out, HasSubstr("family  vidi1.5\n        warning: " + dir + "/config.json: model_type \"dattn_gemma2\" "
                               "is vidi1.5's, but architectures names DattnMistralForCausalLM (vidi-7b)"));
    const auto j = nlohmann::json::parse(run_vidi("inspect --json " + dir, &rc));
    EXPECT_THAT(j["family_warning"].get<std::string>(), HasSubstr("read as vidi1.5 by its model_type"));
    // The other way round the config fails on the other family's keys: the error says why.
    vidi::test::TempDir tmp2("inspect-type");
    const std::string typed = broken_copy(tmp2, "sed -i 's/\"dattn_gemma2\"/\"dattn_mistral\"/' config.json");
    const std::string err = run_vidi("inspect " + typed, &rc);
    EXPECT_NE(rc, 0) << err;
    EXPECT_THAT(err, HasSubstr("architectures names DattnGemma2ForCausalLM")) << err;
}

TEST(InspectCli, JsonOutput) {
    int rc;
    std::string out = run_vidi("inspect --json " + vidi::test::tiny_model_dir(), &rc);
    ASSERT_EQ(rc, 0) << out;
    auto j = nlohmann::json::parse(out);
    EXPECT_TRUE(j["usable"].get<bool>());
    EXPECT_EQ(j["llm"]["layers"], 4);
    EXPECT_EQ(j["llm"]["kv_heads"], 2);
    EXPECT_EQ(j["vision"]["layers_used"], 2);
    EXPECT_EQ(j["media"]["image_projector_in"], 192);
    // LLM parameters from the config by hand: embed + 4 layers + final norm.
    const int64_t layer = 96 * 128 * 2 + 96 * 64 * 2 + 3 * 96 * 160 + 4 * 96;
    EXPECT_EQ(j["params"]["llm"].get<int64_t>(), 1024 * 96 + 4 * layer + 96);
    EXPECT_EQ(j["bytes"]["bf16"].get<int64_t>(), 2 * j["params"]["total"].get<int64_t>());
    EXPECT_TRUE(j["validation"]["missing"].empty());
}

// config.json's "vidi_quantization" only labels the report: an entry of another type is shown
// as unknown, not an internal error (the weights load whatever it says).
TEST(InspectCli, AQuantizationEntryOfAnotherTypeIsShownAsUnknown) {
    vidi::test::TempDir tmp("inspect-q");
    const std::string q = tmp.file("q8");
    int rc;
    std::string out = run_vidi("quantize -q --model " + vidi::test::tiny_model_dir() + " --out " + q + " --weights int8", &rc);
    ASSERT_EQ(rc, 0) << out;
    auto config = nlohmann::json::parse(std::ifstream(q + "/config.json"));
    for (const nlohmann::json& entry : {nlohmann::json("int8"), nlohmann::json(5), nlohmann::json::array({1}),
                                        nlohmann::json(nullptr), nlohmann::json{{"weights", 8}}}) {
        config["vidi_quantization"] = entry;
        std::ofstream(q + "/config.json") << config.dump();
        out = run_vidi("inspect " + q, &rc);
        EXPECT_EQ(rc, 0) << entry.dump() << out;
        EXPECT_THAT(out, HasSubstr("stored quantised as ?")) << entry.dump();
        out = run_vidi("inspect --json " + q, &rc);
        EXPECT_EQ(rc, 0) << entry.dump() << out;
        EXPECT_EQ(nlohmann::json::parse(out, nullptr, false)["quantization"],
                  entry.is_object() ? entry : nlohmann::json::object())
            << out;
    }
}

TEST(InspectCli, UnusableCheckpointsExitNonZero) {
    {
        vidi::test::TempDir tmp("cli");
        // The config claims 5 layers: layer 4's tensors are missing.
        std::string dir = broken_copy(tmp, "sed -i 's/\"num_hidden_layers\": 4/\"num_hidden_layers\": 5/' config.json");
        int rc;
        std::string out = run_vidi("inspect " + dir, &rc);
        EXPECT_EQ(rc, 1) << out;
        EXPECT_THAT(out, HasSubstr("NOT usable"));
        EXPECT_THAT(out, HasSubstr("missing tensor model.layers.4.self_attn.q_proj.weight"));
        out = run_vidi("inspect --json " + dir, &rc);
        EXPECT_EQ(rc, 1);
        EXPECT_FALSE(nlohmann::json::parse(out)["usable"].get<bool>());
    }
    {
        vidi::test::TempDir tmp("cli");
        std::string dir = broken_copy(tmp, "echo '{ broken' > config.json");
        int rc;
        std::string out = run_vidi("inspect " + dir, &rc);
        EXPECT_EQ(rc, 1);
        EXPECT_THAT(out, HasSubstr("vidi: error: " + dir + "/config.json: malformed JSON"));
        out = run_vidi("inspect --json " + dir, &rc);
        EXPECT_EQ(rc, 1);
        EXPECT_THAT(nlohmann::json::parse(out)["error"].get<std::string>(), HasSubstr("malformed JSON"));
    }
    {
        vidi::test::TempDir tmp("cli");
        std::string dir = broken_copy(tmp, "truncate -s 100000 model-00001-of-00002.safetensors");
        int rc;
        std::string out = run_vidi("inspect " + dir, &rc);
        EXPECT_EQ(rc, 1);
        EXPECT_THAT(out, HasSubstr("model-00001-of-00002.safetensors: truncated"));
    }
    int rc;
    std::string out = run_vidi("inspect /nonexistent/checkpoint", &rc);
    EXPECT_NE(rc, 0);
    EXPECT_THAT(out, HasSubstr("vidi: error:"));
}

// Found by damaging copies of tiny-a: each was loaded as "usable", hung, crashed, filled the
// memory or gave an internal error; each is now an error that names the file and the problem.
// --values reads every floating weight: a NaN written into one (a corrupt download) makes the
// checkpoint unusable, naming the tensor; without --values the scan does not run.
TEST(InspectCli, ValuesFindsANanWeightByName) {
    int rc;
    const std::string clean = run_vidi("inspect --values " + vidi::test::tiny_model_dir(), &rc);
    EXPECT_EQ(rc, 0) << clean;
    EXPECT_THAT(clean, HasSubstr("floating tensors"));
    EXPECT_THAT(clean, HasSubstr("hold numbers only"));
    vidi::test::TempDir tmp("inspect-values");
    const std::string dir = broken_copy(tmp, "true");
    const std::string name = "model.norm.weight";
    {
        const vidi::io::TensorStore store = vidi::io::TensorStore::open(dir);
        const vidi::io::TensorInfo& info = store.info(name);
        std::string shard;
        for (const auto& f : store.files())
            if (f->has(name)) shard = f->path();
        std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
        uint64_t header = 0;
        file.read(reinterpret_cast<char*>(&header), sizeof header);
        const uint32_t nan32 = 0x7fc00000u;  // a quiet NaN in the tensor's dtype, its first value
        const uint16_t nan16 = info.dtype == vidi::DType::f16 ? 0x7e00 : 0x7fc0;
        file.seekp(static_cast<std::streamoff>(8 + header + info.offset));
        if (info.dtype == vidi::DType::f32) file.write(reinterpret_cast<const char*>(&nan32), 4);
        else file.write(reinterpret_cast<const char*>(&nan16), 2);
        ASSERT_TRUE(file.good());
    }
    EXPECT_THAT(run_vidi("inspect " + dir, &rc), HasSubstr("verdict usable"));
    EXPECT_EQ(rc, 0) << "the values are not read without --values";
    const std::string out = run_vidi("inspect --values " + dir, &rc);
    EXPECT_EQ(rc, 1) << out;
    EXPECT_THAT(out, HasSubstr("values  error: 1 tensor(s) hold NaN or infinity: " + name + " (1 NaN, 0 inf)"));
    EXPECT_THAT(out, HasSubstr("verdict unusable: weights hold NaN or infinity"));
    std::string json_out;  // stdout alone: the progress goes to stderr
    rc = vidi::test::run_command("(" + vidi::test::vidi_binary() + " inspect --json --values " + dir + " 2>/dev/null)",
                                 &json_out);
    const nlohmann::json j = nlohmann::json::parse(json_out);
    EXPECT_EQ(rc, 1);
    EXPECT_FALSE(j["usable"].get<bool>());
    ASSERT_EQ(j["values"]["nonfinite"].size(), 1u);
    EXPECT_EQ(j["values"]["nonfinite"][0]["name"], name);
    EXPECT_EQ(j["values"]["nonfinite"][0]["nan"], 1);
    EXPECT_TRUE(nlohmann::json::parse(run_vidi("inspect --json " + dir, &rc))["values"].is_null());
}

TEST(InspectCli, DamagedCheckpointsAreClearErrors) {
    const std::string vidi7b_tokenizer = std::string(VIDI_SOURCE_DIR) + "/tests/data/vidi7b/tiny-vidi7b/tokenizer.model";
    const std::pair<std::string, std::string> cases[] = {
        // The tokenizer: inspect never looked at it; another model's loaded silently.
        {"rm tokenizer.model", "tokenizer.model"},
        {"cp " + vidi7b_tokenizer + " tokenizer.model", "no piece <end_of_turn>"},
        // Values that gave NaN logits and an empty answer with success.
        {R"(sed -i 's/"rms_norm_eps": [0-9.e-]*/"rms_norm_eps": -1.0/' config.json)", "\"rms_norm_eps\" must be positive"},
        {R"(sed -i 's/"bos_token_id": 2/"bos_token_id": 99999/' config.json)", "\"bos_token_id\" 99999 is outside the vocabulary"},
        // A typo that built gigabytes of expected names before comparing one with the files.
        {R"(sed -i 's/"num_hidden_layers": 4/"num_hidden_layers": 1000000/' config.json)", "more than the 1024"},
        {R"(sed -i 's/"num_hidden_layers": 4/"num_hidden_layers": true/' config.json)", "has the wrong type (true)"},
        // A FIFO in a shard's place waited for a writer for ever; a symlink loop was an internal error.
        {"rm model-00002-of-00002.safetensors && mkfifo model-00002-of-00002.safetensors", "not a regular file"},
        {"rm model-00002-of-00002.safetensors && ln -s loop model-00002-of-00002.safetensors && ln -s "
         "model-00002-of-00002.safetensors loop",
         "model-00002-of-00002.safetensors"},
        {"sed -i 's|model-00002-of-00002.safetensors|../x.safetensors|' model.safetensors.index.json",
         "is not a file name in the checkpoint's directory"},
    };
    for (const auto& [edit, words] : cases) {
        vidi::test::TempDir tmp("damaged");
        const std::string dir = broken_copy(tmp, edit);
        int rc;
        const std::string out = run_vidi("inspect " + dir, &rc);
        EXPECT_EQ(rc, 1) << edit << "\n" << out;
        EXPECT_THAT(out, HasSubstr(words)) << edit;
        EXPECT_THAT(out, Not(HasSubstr("internal error"))) << edit;
    }
}

// quantize and make-checkpoint write into OUT/.vidi-partial and move the files up when done: a
// failure leaves no OUT that looks whole (a SIGINT left shards with complete-looking headers
// and no config), and OUT may be a mount point or a symlink to an empty directory.
TEST(MakeCheckpointCli, AFailedOrInterruptedRunLeavesNoOutputThatLooksWhole) {
    namespace fs = std::filesystem;
    vidi::test::TempDir tmp("staged");
    const std::string config = vidi::test::tiny_model_dir() + "/config.json";
    const auto make = [&](const std::string& out_dir, int& rc, const std::string& more = "") {
        return run_vidi("make-checkpoint --config " + config + " --out " + out_dir + " --seed 1" + more, &rc);
    };
    int rc;
    // A bad --tokenizer is refused before the weights are written; nothing is left.
    const std::string bad_tok = tmp.file("bad.model");
    ASSERT_EQ(vidi::test::run_command("echo 'not a model' > " + bad_tok), 0);
    std::string out = make(tmp.file("a"), rc, " --tokenizer " + bad_tok);
    EXPECT_EQ(rc, 1) << out;
    EXPECT_THAT(out, HasSubstr("bad.model"));
    EXPECT_FALSE(fs::exists(tmp.file("a")));
    // What an interrupted run left is cleared by the next.
    fs::create_directories(tmp.file("b/.vidi-partial"));
    ASSERT_EQ(vidi::test::run_command("touch " + tmp.file("b/.vidi-partial/model-00001-of-00003.safetensors")), 0);
    out = make(tmp.file("b"), rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_FALSE(fs::exists(tmp.file("b/.vidi-partial")));
    EXPECT_THAT(run_vidi("inspect " + tmp.file("b"), &rc), HasSubstr("verdict usable"));
    // A run still writing holds its staging directory: a second run into it is refused.
    fs::create_directories(tmp.file("c/.vidi-partial"));
    const int held = open(tmp.file("c/.vidi-partial").c_str(), O_RDONLY | O_DIRECTORY);
    ASSERT_GE(held, 0);
    ASSERT_EQ(flock(held, LOCK_EX), 0);
    out = make(tmp.file("c"), rc);
    close(held);
    EXPECT_EQ(rc, 1) << out;
    EXPECT_THAT(out, HasSubstr("another run is writing it"));
    EXPECT_TRUE(fs::exists(tmp.file("c/.vidi-partial")));
    // Anything else in OUT is refused; a symlink to an empty directory (or a mount point) is
    // written through.
    ASSERT_EQ(vidi::test::run_command("mkdir " + tmp.file("d") + " && touch " + tmp.file("d/notes")), 0);
    EXPECT_THAT(make(tmp.file("d"), rc), HasSubstr("already exists and is not an empty directory"));
    EXPECT_EQ(rc, 1);
    fs::create_directories(tmp.file("target"));
    fs::create_directory_symlink(tmp.file("target"), tmp.file("link"));
    out = make(tmp.file("link"), rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_TRUE(fs::is_symlink(tmp.file("link")));
    EXPECT_TRUE(fs::exists(tmp.file("target/config.json")));
    // quantize stages the same way (a FIFO beside the weights is not a file to copy).
    const std::string src = tmp.file("src");
    ASSERT_EQ(vidi::test::run_command("cp -r " + tmp.file("b") + " " + src + " && mkfifo " + src + "/zz.fifo"), 0);
    out = run_vidi("quantize -q --model " + src + " --out " + tmp.file("q") + " --weights int8", &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_TRUE(fs::exists(tmp.file("q/config.json")));
    EXPECT_FALSE(fs::exists(tmp.file("q/.vidi-partial")));
}

TEST(MakeCheckpointCli, TinyCheckpointInspectsAsUsable) {
    vidi::test::TempDir tmp("cli");
    const std::string out_dir = tmp.file("gen");
    int rc;
    std::string out = run_vidi("make-checkpoint --config " + vidi::test::tiny_model_dir() + "/config.json --out " + out_dir +
                               " --seed 3 --shard-size 600000 --tokenizer " + vidi::test::tiny_model_dir() +
                               "/tokenizer.model",
                           &rc);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("171 tensors, 3 shard(s)"));
    out = run_vidi("inspect " + out_dir, &rc);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("3 shard(s)"));
    // Exactly one of --config / --preset.
    out = run_vidi("make-checkpoint --out " + tmp.file("x") + " --seed 1", &rc);
    EXPECT_NE(rc, 0);
    EXPECT_THAT(out, HasSubstr("exactly one of --config or --preset"));
    out = run_vidi("make-checkpoint --preset nope --out " + tmp.file("x") + " --seed 1", &rc);
    EXPECT_NE(rc, 0);
    EXPECT_THAT(out, HasSubstr("unknown preset \"nope\""));
    // Seeds out of [0, 2^64) were saturated or wrapped: refused, not aliased.
    for (const char* seed : {"-1", "18446744073709551616", "1e3", "0x10", ""}) {
        out = run_vidi("make-checkpoint --preset nope --out " + tmp.file("s") + " --seed '" + seed + "'", &rc);
        EXPECT_EQ(rc, 105) << seed << out;
        EXPECT_THAT(out, HasSubstr("is not a seed")) << seed;
    }
}
