// `vidi inspect` and `vidi make-checkpoint` through the built binary: output and exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

using testing::HasSubstr;

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
}
