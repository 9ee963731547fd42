// LoadedModel::warm_up (run at load on a GPU) leaves nothing behind that a request would see:
// the same video and question give the same tokens, logits and answer, byte for byte, with it
// and without it, for both families' tiny checkpoints.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime/loaded_tiny.h"
#include "runtime/video_encoding.h"

namespace vidi::test {
namespace {

struct Request {
    Tensor image, audio, logits;
    std::vector<int32_t> ids;
};

Request ask(runtime::LoadedModel& m) {
    auto video = runtime::encode_video(m, golden_path("synth.mp4"));
    const runtime::GenerationResult r = m.run(m.prompt("What happens in the video?", true), video.get(), 6, true);
    Backend& be = m.backend();
    return {be.to_host(video->tokens.image), be.to_host(video->tokens.audio), be.to_host(r.prompt_logits), r.ids};
}

bool same(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

class WarmUp : public testing::TestWithParam<std::string> {};

TEST_P(WarmUp, ARequestAfterItIsTheRequestWithoutIt) {
    EngineOptions o;
    o.model_dir = GetParam() == "vidi1.5" ? tiny_model_dir() : tiny_vidi7b_dir();
    o.backend = "cpu";
    o.threads = 2;
    runtime::LoadedModel plain(o), warmed(o);
    warmed.warm_up();
    const Request a = ask(plain), b = ask(warmed);
    EXPECT_TRUE(same(a.image, b.image));
    EXPECT_TRUE(same(a.audio, b.audio));
    EXPECT_TRUE(same(a.logits, b.logits));
    EXPECT_EQ(a.ids, b.ids);
    EXPECT_GT(a.audio.numel(), 0);
}

INSTANTIATE_TEST_SUITE_P(Families, WarmUp, testing::Values("vidi1.5", "vidi7b"),
                         [](const auto& info) { return info.param == "vidi1.5" ? std::string("vidi15") : info.param; });

}  // namespace
}  // namespace vidi::test
