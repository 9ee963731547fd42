// The public Engine over a model family: its warnings, its family's name and range format,
// and the media time of an answer.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <mutex>

#include <cstring>
#include <filesystem>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "runtime/loaded_model.h"
#include "support/test_support.h"
#include "vidi/vidi.h"

using namespace vidi;
using testing::HasSubstr;

namespace {

std::unique_ptr<Engine> open_engine(const std::string& dir, std::vector<std::string>& warnings) {
    EngineOptions o;
    o.model_dir = dir;
    o.backend = "cpu";
    o.threads = 2;
    o.warning = [&warnings](const std::string& line) { warnings.push_back(line); };
    return Engine::open(o);
}

std::string contents(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(Engine, NamesItsFamilyAndWarnsOnlyAboutAForeignChatTemplate) {
    std::vector<std::string> warnings;
    auto engine = open_engine(test::tiny_model_dir(), warnings);
    EXPECT_TRUE(warnings.empty()) << warnings.front();
    EXPECT_EQ(engine->family_name(), "vidi1.5");
    EXPECT_EQ(engine->format_range({12.9, 19.2}), "00:00:12-00:00:19");
    EXPECT_GT(engine->media_token_bytes(), 4 * 96);

    test::TempDir tmp("engine");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    nlohmann::json tc = io::read_json_file(dir + "/tokenizer_config.json");
    tc["chat_template"] = "{% for message in messages %}[INST] {{ message['content'] }} [/INST]{% endfor %}";
    io::write_json_file(dir + "/tokenizer_config.json", tc);
    open_engine(dir, warnings);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_THAT(warnings[0], HasSubstr("chat_template differs from the vidi1.5 prompt format"));
    EXPECT_THAT(warnings[0], HasSubstr("from character 1 the checkpoint has \"% for message"));
}

TEST(Engine, WarnsWhenTheConfigsArchitecturesNameAnotherFamily) {
    std::vector<std::string> warnings;
    test::TempDir tmp("engine-arch");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    nlohmann::json config = io::read_json_file(dir + "/config.json");
    config["architectures"] = {"DattnMistralForCausalLM"};
    io::write_json_file(dir + "/config.json", config);
    auto engine = open_engine(dir, warnings);
    EXPECT_EQ(engine->family_name(), "vidi1.5");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_THAT(warnings[0], HasSubstr("config.json: model_type \"dattn_gemma2\" is vidi1.5's, but architectures "
                                       "names DattnMistralForCausalLM (vidi-7b)"));
}

TEST(Engine, TheFirstAnswerAboutAVideoCarriesItsEncodingTime) {
    std::vector<std::string> warnings;
    auto engine = open_engine(test::tiny_model_dir(), warnings);
    auto video = engine->encode_video(test::golden_path("synth.mp4"));
    ASSERT_GT(video->encode_seconds(), 0);
    const Answer first = engine->retrieve(*video, "a moving colour pattern", {4});
    EXPECT_EQ(first.timings.media_s, video->encode_seconds());
    EXPECT_EQ(engine->ask(video.get(), "What is shown?", {2}).timings.media_s, 0);
    EXPECT_EQ(engine->ask(nullptr, "Hello", {2}).timings.media_s, 0);
}

// The media tokens kept on the host (what the planner picks for an hour on a 24 GB card) give
// the answer of tokens kept on the device, bit for bit, with the same K/V formats; the saved
// video is the same file content and loads into the same answer.
TEST(Engine, MediaTokensOnTheHostGiveTheAnswerOfTokensOnTheDevice) {
    std::vector<std::string> warnings;
    test::TempDir tmp("engine-host-tokens");
    for (const char* kv : {"bf16", "int4"}) {
        SCOPED_TRACE(kv);
        std::vector<Answer> answers;
        for (const char* where : {"device", "host"}) {
            EngineOptions o;
            o.model_dir = test::tiny_model_dir();
            o.backend = "cpu";
            o.threads = 2;
            o.media_kv = kv;
            o.media_tokens = where;
            auto engine = Engine::open(o);
            auto video = engine->encode_video(test::golden_path("synth.mp4"));
            answers.push_back(engine->retrieve(*video, "a moving colour pattern", {8}));
            const std::string saved = tmp.file(std::string(kv) + "-" + where + ".safetensors");
            engine->save_video(*video, saved);
            auto again = engine->load_video(saved);
            EXPECT_EQ(engine->retrieve(*again, "a moving colour pattern", {8}).token_ids, answers.back().token_ids);
        }
        EXPECT_EQ(answers[0].token_ids, answers[1].token_ids);
        EXPECT_EQ(answers[0].text, answers[1].text);
        EXPECT_EQ(contents(tmp.file(std::string(kv) + "-device.safetensors")),
                  contents(tmp.file(std::string(kv) + "-host.safetensors")));
    }
}

// Saved media tokens carry the model's fingerprint: weights changed in place (or another
// checkpoint of the same shapes) must give another one, or the server's disk cache would
// answer from the old model's tokens. A copy of the same bytes keeps it (tokens stay usable).
TEST(Engine, TheFingerprintFollowsTheWeightsNotJustTheirShapes) {
    test::TempDir tmp("fingerprint");
    const std::string same = tmp.file("same"), changed = tmp.file("changed");
    test::copy_tiny_model(same);
    test::copy_tiny_model(changed);
    const auto fingerprint = [](const std::string& dir) {
        EngineOptions o;
        o.model_dir = dir;
        o.backend = "cpu";
        o.threads = 2;
        return runtime::LoadedModel(o).fingerprint();
    };
    const std::string original = fingerprint(test::tiny_model_dir());
    EXPECT_EQ(fingerprint(same), original);
    test::write_bf16(changed, "model.mm_vis.encoder.layers.0.mlp.fc1.weight", 0x3F80);  // 1.0
    EXPECT_NE(fingerprint(changed), original);
    // Tokens saved before the digest (no ":weights" in their fingerprint) are refused as such,
    // not blamed on another model.
    std::vector<std::string> warnings;
    auto engine = open_engine(test::tiny_model_dir(), warnings);
    const std::string saved = tmp.file("v.safetensors"), old = tmp.file("old.safetensors");
    engine->save_video(*engine->encode_video(test::golden_path("synth.mp4")), saved);
    {
        auto f = io::SafetensorsFile::open(saved);
        std::vector<std::pair<std::string, Tensor>> all;
        for (const auto& [name, info] : f->tensors()) all.emplace_back(name, f->get(name).clone());
        auto meta = f->metadata();
        meta["vidi_model"] = meta["vidi_model"].substr(0, meta["vidi_model"].find(":weights"));
        io::save_safetensors(old, all, meta);
    }
    EXPECT_NE(engine->load_video(saved), nullptr);
    EXPECT_THAT(test::error_of([&] { engine->load_video(old); }), HasSubstr("media tokens saved by an older vidi"));
}

// NaN weights (or a config value that breaks a norm) made every logit NaN: greedy decoding
// picked id 0 at each step and answered an empty text with success.
TEST(Engine, LogitsThatAreNotNumbersAreAnErrorNotAnEmptyAnswer) {
    test::TempDir tmp("nan-weights");
    const std::string dir = tmp.file("ck");
    test::copy_tiny_model(dir);
    test::write_bf16(dir, "model.norm.weight", 0x7FC0, -1);  // every element NaN
    std::vector<std::string> warnings;
    auto engine = open_engine(dir, warnings);
    GenerateOptions g;
    g.max_new_tokens = 4;
    try {
        const Answer a = engine->ask(nullptr, "hello there", g);
        ADD_FAILURE() << "answered '" << a.text << "'";
    } catch (const vidi::Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("logits are not numbers"));
    }
}

// A Matroska file whose header claims 10^12 s for 2 s of media: the audio's buffers follow the
// video's packets, not the header, which made the first buffer 10^12 s of tokens ("out of host
// memory"; a claim of 4.2e6 s took 16 GB and 106 s). The answers still scale by the header.
TEST(Engine, AContainerDurationThatLiesDoesNotSizeTheAudio) {
    test::TempDir tmp("lying-duration");
    const std::string video = tmp.file("lies.mkv");
    std::string out;
    ASSERT_EQ(0, test::run_command("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=s=160x96:r=25:d=2 -f lavfi -i "
                                   "sine=d=2 -c:v libx264 -preset ultrafast -c:a aac " + video, &out))
        << out;
    std::string bytes = contents(video);
    const size_t at = bytes.find("\x44\x89\x88");  // Segment Duration, an 8-byte float (ms)
    ASSERT_NE(at, std::string::npos);
    const double claimed_ms = 1e15;
    uint64_t bits = 0;
    std::memcpy(&bits, &claimed_ms, 8);
    for (int i = 0; i < 8; ++i) bytes[at + 3 + i] = static_cast<char>(bits >> (56 - 8 * i));
    std::ofstream(video, std::ios::binary | std::ios::trunc) << bytes;

    std::vector<std::string> warnings;
    auto engine = open_engine(test::tiny_model_dir(), warnings);
    auto encoded = engine->encode_video(video);
    EXPECT_GT(encoded->duration(), 1e11);
    EXPECT_EQ(encoded->frames(), 2);
    EXPECT_GT(encoded->audio_tokens(), 0);
}

// While the first frames are still being decoded (a keyframe only at the start: the first
// batch needs 450 pictures decoded), the audio, whose samples are ready within milliseconds,
// goes through its tower first: the GPU would otherwise wait for the frames with nothing to do.
TEST(Engine, TheAudioGoesThroughWhileTheFirstFramesAreDecoded) {
    test::TempDir tmp("audio-first");
    const std::string video = tmp.file("one_gop.mp4");
    std::string out;
    ASSERT_EQ(0, test::run_command("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=s=640x360:r=30:d=40 -f lavfi -i "
                                   "sine=f=440:d=40 -c:v libx264 -preset ultrafast -g 100000 -bf 0 -c:a aac "
                                   "-shortest " + video, &out))
        << out;
    std::vector<std::string> stages;
    std::mutex mu;
    EngineOptions o;
    o.model_dir = test::tiny_model_dir();
    o.backend = "cpu";
    o.threads = 2;
    o.decode_lanes = 2;
    o.progress = [&](const std::string& stage, int64_t done, int64_t) {
        std::lock_guard<std::mutex> lock(mu);
        if (done > 0 && (stages.empty() || stages.back() != stage)) stages.push_back(stage);
    };
    auto engine = Engine::open(o);
    auto encoded = engine->encode_video(video);
    const auto at = [&](const char* stage) { return std::find(stages.begin(), stages.end(), stage) - stages.begin(); };
    ASSERT_LT(at("frames"), static_cast<ptrdiff_t>(stages.size())) << testing::PrintToString(stages);
    EXPECT_LT(at("audio"), at("frames")) << testing::PrintToString(stages);
    EXPECT_LT(at("log-mel"), at("frames")) << testing::PrintToString(stages);
}
