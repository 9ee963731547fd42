// The family interface: the registry picks a checkpoint's family, the family's layout names
// exactly the linear weights its modules load (the memory planner and `vidi quantize` go by
// it), and a checkpoint whose chat_template differs from the built-in prompt is warned about.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <utility>
#include <vector>

#include "io/json_file.h"
#include "model/checkpoint.h"
#include "model/common/chat_template.h"
#include "model/family.h"
#include "model/vidi15/family.h"
#include "support/test_support.h"

using namespace vidi;
using test::error_of;
using testing::HasSubstr;

namespace {

nlohmann::json tiny_config() { return io::read_json_file(test::tiny_model_dir() + "/config.json"); }

}  // namespace

TEST(Registry, PicksTheFamilyByModelTypeThenByArchitecture) {
    nlohmann::json c = tiny_config();
    EXPECT_EQ(&model::family_for(c, "cfg"), &model::vidi15::family());
    c["model_type"] = "something_else";  // an unknown type with a known architecture
    EXPECT_EQ(&model::family_for(c, "cfg"), &model::vidi15::family());
    c["model_type"] = nullptr;  // null reads as none: the architectures decide (was a JSON type error)
    EXPECT_EQ(&model::family_for(c, "cfg"), &model::vidi15::family());
    EXPECT_EQ(model::family_disagreement(c, model::vidi15::family(), "cfg"), "");
    c["model_type"] = "something_else";
    c.erase("architectures");
    const std::string err = error_of([&] { model::family_for(c, "cfg"); });
    EXPECT_THAT(err, HasSubstr("cfg: model_type \"something_else\" is not a known model family"));
    EXPECT_THAT(err, HasSubstr("dattn_gemma2 (vidi1.5)"));
    EXPECT_EQ(model::load_config(test::tiny_model_dir()).family, &model::vidi15::family());
}

// A config whose architectures name only another family is read by its model_type, with a
// warning that names both; an architectures entry of its own family (or none known) says nothing.
TEST(Registry, ArchitecturesOfAnotherFamilyAreNamedInAWarning) {
    nlohmann::json c = tiny_config();
    const model::Family& own = model::family_for(c, "cfg");
    EXPECT_EQ(model::family_disagreement(c, own, "cfg"), "");
    c["architectures"] = {"DattnMistralForCausalLM"};
    EXPECT_EQ(&model::family_for(c, "cfg"), &model::vidi15::family());  // model_type decides
    EXPECT_EQ(model::family_disagreement(c, own, "cfg"),
              "cfg: model_type \"dattn_gemma2\" is vidi1.5's, but architectures names DattnMistralForCausalLM "
              "(vidi-7b): read as vidi1.5 by its model_type; check that config.json belongs to these weights");
    c["architectures"] = {"DattnMistralForCausalLM", "DattnGemma2ForCausalLM"};  // one agrees
    EXPECT_EQ(model::family_disagreement(c, own, "cfg"), "");
    c["architectures"] = {"LlamaForCausalLM", 7};  // nothing known, or not a name
    EXPECT_EQ(model::family_disagreement(c, own, "cfg"), "");
    c["architectures"] = "DattnMistralForCausalLM";  // not a list: not read
    EXPECT_EQ(model::family_disagreement(c, own, "cfg"), "");
    c.erase("architectures");
    EXPECT_EQ(model::family_disagreement(c, own, "cfg"), "");
}

TEST(Registry, PresetsComeFromTheFamilies) {
    EXPECT_THAT(model::preset_names(), testing::Contains("vidi1.5-9b"));
    EXPECT_EQ(model::find_preset("vidi1.5-9b").config["model_type"], "dattn_gemma2");
    EXPECT_THAT(error_of([] { model::find_preset("nope"); }), HasSubstr("unknown preset \"nope\" (known: vidi1.5-9b"));
}

TEST(FamilyLayout, LinearAndF32WeightsAreExactlyTheOnesTheModulesLoadSo) {
    for (const std::string& dir : {test::tiny_model_dir(), test::tiny_vidi7b_dir()}) {  // Vidi1.5, Vidi-7B
        const model::Checkpoint ck = model::Checkpoint::open(dir);
        EXPECT_TRUE(ck.usable()) << ck.report().to_string();
        std::set<std::string> loaded, f32;
        auto cpu = make_cpu_backend(1);
        model::LoadOptions opt;
        opt.linear_names = &loaded;
        opt.f32_names = &f32;
        const model::WeightLoader root(ck.store(), *cpu, opt);
        ck.family().make_media(ck.config(), root);
        ck.family().make_decoder(ck.config(), root);
        EXPECT_EQ(ck.linear_weights(), loaded) << dir;
        EXPECT_GT(loaded.size(), 40u);
        EXPECT_TRUE(loaded.count("model.embed_tokens.weight"));
        EXPECT_FALSE(loaded.count("model.mm_rand_pos_t.mlp.0.weight"));  // computed in f32
        EXPECT_EQ(ck.f32_weights(), f32) << dir;
        EXPECT_TRUE(f32.count("model.mm_rand_pos_t.mlp.0.weight"));
        EXPECT_TRUE(f32.count("model.mm_rand_pos_h.mlp.2.bias"));
        // Vidi-7B's own lm_head is a linear; its image pool, a convolution, is kept as loaded.
        EXPECT_EQ(loaded.count("lm_head.weight"), !ck.config().llm.tie_embeddings && ck.store().has("lm_head.weight") ? 1u : 0u) << dir;
        EXPECT_FALSE(loaded.count("model.mm_rand_img_pool.conv.weight"));
    }
}

TEST(ChatTemplate, TheGoldenCheckpointsTemplateIsTheBuiltInOne) {
    const model::Family& f = model::vidi15::family();
    ASSERT_TRUE(model::checkpoint_chat_template(test::tiny_model_dir()));
    EXPECT_FALSE(model::chat_template_warning(test::tiny_model_dir(), f.chat_templates(), f.name()));
}

TEST(ChatTemplate, ADifferentTemplateIsWarnedAboutWithTheDifference) {
    const model::Family& f = model::vidi15::family();
    test::TempDir tmp("chat");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    const std::string path = dir + "/tokenizer_config.json";
    nlohmann::json tc = io::read_json_file(path);
    const std::string original = tc["chat_template"];

    // Gemma-2-it's longer template, with '\n' spelled as Jinja escapes: the same prompt.
    const std::vector<std::string> known = f.chat_templates();
    std::string escaped;
    for (char ch : known[1]) escaped += ch == '\n' ? std::string("\\n") : std::string(1, ch);
    tc["chat_template"] = escaped;
    io::write_json_file(path, tc);
    EXPECT_FALSE(model::chat_template_warning(dir, f.chat_templates(), f.name()));

    // Another role name for the answer: a different prompt.
    std::string changed = original;
    changed.replace(changed.find("'model'"), 7, "'assistant'");
    tc["chat_template"] = changed;
    io::write_json_file(path, tc);
    const auto w = model::chat_template_warning(dir, f.chat_templates(), f.name());
    ASSERT_TRUE(w);
    EXPECT_THAT(*w, HasSubstr(dir + ": the checkpoint's chat_template differs from the vidi1.5 prompt format"));
    EXPECT_THAT(*w, HasSubstr("the checkpoint has \"assistant'"));
    EXPECT_THAT(*w, HasSubstr("where vidi1.5's has \"model'"));

    // No template at all: nothing to compare; a list of named templates: the default one.
    tc.erase("chat_template");
    io::write_json_file(path, tc);
    EXPECT_FALSE(model::checkpoint_chat_template(dir));
    EXPECT_FALSE(model::chat_template_warning(dir, f.chat_templates(), f.name()));
    tc["chat_template"] = {{{"name", "tool_use"}, {"template", "x"}}, {{"name", "default"}, {"template", changed}}};
    io::write_json_file(path, tc);
    EXPECT_EQ(model::checkpoint_chat_template(dir), changed);
    EXPECT_TRUE(model::chat_template_warning(dir, f.chat_templates(), f.name()));

    // A field that holds no template (the official code could not render it): warned about,
    // naming what it holds; null is no template.
    for (const auto& [value, what] : std::vector<std::pair<nlohmann::json, std::string>>{
             {42, "a number"},
             {nlohmann::json::object({{"default", original}}), "an object"},
             {nlohmann::json::array({{{"name", "tool_use"}, {"template", "x"}}}), "a list without a template named"}}) {
        tc["chat_template"] = value;
        io::write_json_file(path, tc);
        EXPECT_FALSE(model::checkpoint_chat_template(dir)) << value;
        const auto bad = model::chat_template_warning(dir, f.chat_templates(), f.name());
        ASSERT_TRUE(bad) << value;
        EXPECT_THAT(*bad, HasSubstr(dir + ": tokenizer_config.json's chat_template is " + what));
        EXPECT_THAT(*bad, HasSubstr("Prompts follow the built-in vidi1.5 format."));
    }
    tc["chat_template"] = nullptr;
    io::write_json_file(path, tc);
    EXPECT_FALSE(model::chat_template_warning(dir, f.chat_templates(), f.name()));
}

// A FIFO in chat_template.jinja's place hung `vidi inspect`: the file was read with no check of its type.
TEST(ChatTemplate, AJinjaThatIsNotARegularFileIsAnErrorNamingIt) {
    test::TempDir tmp("chat");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    nlohmann::json tc = io::read_json_file(dir + "/tokenizer_config.json");
    tc.erase("chat_template");  // the .jinja is read only without it
    io::write_json_file(dir + "/tokenizer_config.json", tc);
    ASSERT_EQ(mkfifo((dir + "/chat_template.jinja").c_str(), 0600), 0);
    EXPECT_THAT(error_of([&] { model::checkpoint_chat_template(dir); }),
                HasSubstr(dir + "/chat_template.jinja: not a regular file"));
}
