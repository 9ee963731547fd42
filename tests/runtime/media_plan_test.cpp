// The planner's per-video choices at full size (config only, no weights): K/V format and
// token budget follow the memory available, and a refusal says what would fit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/family.h"
#include "runtime/capped_memory.h"
#include "runtime/media_plan.h"
#include "support/test_support.h"

using namespace vidi;
using test::capped;
using testing::HasSubstr;

namespace {

model::ModelConfig vidi_9b() { return model::config_from_json(model::find_preset("vidi1.5-9b").config, "."); }

constexpr int64_t kHourFrames = 3600, kHourAudio = 36000;

}  // namespace

// The audio planned before it is decoded: the container's duration, bounded by what the video's
// packets span (a header that claims hours for seconds of media sized 16 GB of buffers).
TEST(MediaPlan, PlannedAudioIsBoundedByTheVideosPackets) {
    media::VideoInfo info;
    info.has_audio = true;
    info.avg_fps = 25;
    info.frame_count = 15000;  // 600 s of packets
    info.duration = 600;
    EXPECT_EQ(runtime::planned_audio_seconds(info), 600);
    info.duration = 800;  // a soundtrack longer than the picture: room for it
    EXPECT_EQ(runtime::planned_audio_seconds(info), 800);
    info.duration = 4.2e6;  // the header lies
    EXPECT_EQ(runtime::planned_audio_seconds(info), 1.25 * 600 + 60);
    info.avg_fps = 0;  // no rate: the duration as it is
    EXPECT_EQ(runtime::planned_audio_seconds(info), 4.2e6);
    info.has_audio = false;
    EXPECT_EQ(runtime::planned_audio_seconds(info), 0);
}

TEST(MediaPlan, AnHourKeepsSpecTokensWhenMemoryAllows) {
    const auto m = runtime::choose_media(vidi_9b(), kHourFrames, kHourAudio, {}, capped(60), 16, DType::bf16);
    EXPECT_FALSE(m.kv.quantized());  // bf16 K/V: ~43 GB fits in 60 GiB
    EXPECT_EQ(m.step, 1);
    EXPECT_EQ(m.side, 5);            // SPEC's smallest grid, every frame kept (90000 visual tokens)
    EXPECT_EQ(m.visual_tokens(), 90000);
}

TEST(MediaPlan, ShortMemoryPicks8BitThen4BitBeforeALowerBudget) {
    const auto io = vidi_9b();
    const auto kv8 = runtime::choose_media(io, kHourFrames, kHourAudio, {}, capped(30), 16, DType::bf16);
    EXPECT_EQ(kv8.kv.bits, 8);
    EXPECT_EQ(kv8.visual_tokens(), 90000);
    EXPECT_LE(kv8.plan.total(), size_t(30) << 30);
    EXPECT_THAT(kv8.describe(), HasSubstr("bf16 K/V would need"));

    // What an hour needs under --gpu-memory 19GiB beside 4-bit weights (~12.5 GiB left): int8
    // K/V of every frame would need ~24 GiB, so int4 keeps all 3600 frames rather than thinning.
    const auto kv4 = runtime::choose_media(io, kHourFrames, kHourAudio, {}, capped(12.5), 16, DType::bf16);
    EXPECT_EQ(kv4.kv.bits, 4);
    EXPECT_EQ(kv4.step, 1);
    EXPECT_EQ(kv4.visual_tokens(), 90000);
    EXPECT_LE(kv4.plan.total(), size_t(12.5 * double(1ull << 30)));
    EXPECT_THAT(kv4.describe(), HasSubstr("media K/V int4"));
    EXPECT_THAT(kv4.describe(), HasSubstr("int8 K/V would need"));
    EXPECT_THAT(kv4.describe(), HasSubstr("int4 keeps every frame"));
    EXPECT_LT(kv4.plan.media_kv, kv8.plan.media_kv * 55 / 100);  // 4-bit codes plus ~6% of scales

    // What the H200 left for the hour under --gpu-memory 19GiB beside int4 weights (11.90 GiB,
    // bench/RESULTS.md): int4 K/V with the tokens on the device need 12.34 GiB; sending the
    // tokens down to the host as they are made (0.84 GiB less, two chunks staged) keeps
    // every frame, where the planner used to thin to 1 frame in 2.
    const auto host = runtime::choose_media(io, kHourFrames, kHourAudio, {}, capped(11.9), 16, DType::bf16);
    EXPECT_EQ(host.kv.bits, 4);
    EXPECT_EQ(host.step, 1);
    EXPECT_EQ(host.visual_tokens(), 90000);
    EXPECT_TRUE(host.tokens_on_host);
    EXPECT_EQ(host.plan.media_tokens, size_t(2) * 2 * 4096 * 3584 * 2);
    EXPECT_LE(host.plan.total(), size_t(11.9 * double(1ull << 30)));
    EXPECT_EQ(host.plan.total() + size_t(126000) * 3584 * 2, kv4.plan.total() + host.plan.media_tokens);
    EXPECT_THAT(host.describe(), HasSubstr("int4 K/V would need 12.34 GiB"));
    EXPECT_THAT(host.describe(), HasSubstr("int4 with the tokens on the host keeps every frame"));
    EXPECT_THAT(host.describe(), HasSubstr("media tokens kept on the host"));
    EXPECT_FALSE(kv4.tokens_on_host);
    // Asked to keep them on the device, the same card thins instead.
    runtime::MediaRequest device;
    device.tokens = "device";
    const auto thinned = runtime::choose_media(io, kHourFrames, kHourAudio, device, capped(11.9), 16, DType::bf16);
    EXPECT_FALSE(thinned.tokens_on_host);
    EXPECT_GT(thinned.step, 1);
    // int8 K/V is tried with the tokens on the host before int4 is taken.
    const auto kv8_host = runtime::choose_media(io, kHourFrames, kHourAudio, {}, capped(21.8), 16, DType::bf16);
    EXPECT_EQ(kv8_host.kv.bits, 8);
    EXPECT_TRUE(kv8_host.tokens_on_host);

    // Thinning is the last resort, at 4 bits.
    const auto thin = runtime::choose_media(io, kHourFrames, kHourAudio, {}, capped(10), 16, DType::bf16);
    EXPECT_EQ(thin.kv.bits, 4);
    EXPECT_GT(thin.step, 1);
    EXPECT_LT(thin.visual_tokens(), 60000);
    EXPECT_LE(thin.plan.total(), size_t(10) << 30);
    EXPECT_THAT(thin.describe(), HasSubstr("1 frame in"));
    EXPECT_THAT(thin.describe(), HasSubstr("int4 K/V would need"));
    // The densest sampling that fits: one frame in (step - 1) would not.
    const int64_t denser = (kHourFrames + thin.step - 2) / (thin.step - 1);
    const auto more = runtime::plan_video(io, denser, thin.side, kHourAudio, 16, DType::bf16, thin.kv);
    EXPECT_GT(more.total(), size_t(10) << 30);
    // An explicit int8 thins at 8 bits instead.
    runtime::MediaRequest int8;
    int8.kv = "int8";
    const auto thin8 = runtime::choose_media(io, kHourFrames, kHourAudio, int8, capped(12.5), 16, DType::bf16);
    EXPECT_EQ(thin8.kv.bits, 8);
    EXPECT_GT(thin8.step, 1);
}

TEST(MediaPlan, SavedTokensGetTheMostFaithfulKvThatFits) {
    const auto io = vidi_9b();
    const int64_t n = 126000;
    const auto fit = [&](double gib) {
        return runtime::choose_kv_for_tokens(io, n, "auto", capped(gib), DType::bf16).bits;
    };
    EXPECT_EQ(fit(60), 16);
    EXPECT_EQ(fit(30), 8);
    EXPECT_EQ(fit(12), 4);
    EXPECT_EQ(runtime::choose_kv_for_tokens(io, n, "int4", capped(60), DType::bf16).bits, 4);
    EXPECT_EQ(runtime::choose_kv_for_tokens(io, n, "auto", std::nullopt, DType::f32).bits, 16);
    EXPECT_THROW(runtime::choose_kv_for_tokens(io, n, "int2", capped(60), DType::bf16), Error);
}

TEST(MediaPlan, ExplicitChoicesAreKept) {
    runtime::MediaRequest r;
    r.kv = "int8";
    r.visual_budget = 6000;
    const auto m = runtime::choose_media(vidi_9b(), 600, 6000, r, capped(60), 16, DType::bf16);
    EXPECT_TRUE(m.kv.quantized());
    EXPECT_LE(m.visual_tokens(), 6000);
    EXPECT_EQ(m.step, 600 * 25 / 6000 + (600 * 25 % 6000 != 0));
    // On the CPU (no device memory) nothing is lowered on its own.
    const auto cpu = runtime::choose_media(vidi_9b(), 600, 6000, {}, std::nullopt, 16, DType::f32);
    EXPECT_FALSE(cpu.kv.quantized());
    EXPECT_EQ(cpu.visual_tokens(), 600 * 100);  // SPEC: 28·sqrt(60000·4/(600·784)) = 20 -> 10x10 per frame
}

TEST(MediaPlan, RefusalSaysWhatWouldFit) {
    try {
        runtime::choose_media(vidi_9b(), kHourFrames, kHourAudio, {}, capped(4), 16, DType::bf16);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("not enough GPU memory for this video"));
        EXPECT_THAT(e.what(), HasSubstr("it would fit with --gpu-memory"));
        EXPECT_THAT(e.what(), HasSubstr("media K/V int4"));
    }
    runtime::MediaRequest bad;
    bad.kv = "fp4";
    EXPECT_THROW(runtime::choose_media(vidi_9b(), 10, 100, bad, capped(60), 16, DType::bf16), Error);
    runtime::MediaRequest nowhere;
    nowhere.tokens = "disk";
    EXPECT_THAT(test::error_of([&] { runtime::choose_media(vidi_9b(), 10, 100, nowhere, capped(60), 16, DType::bf16); }),
                HasSubstr("media token placement 'disk' is not one of auto, device, host"));
}

TEST(MediaPlan, F16AndBf16CountTheSameBytesAndSayWhichTheyHold) {
    const auto bf = runtime::choose_media(vidi_9b(), 600, 6000, {}, capped(30), 16, DType::bf16);
    const auto f16 = runtime::choose_media(vidi_9b(), 600, 6000, {}, capped(30), 16, DType::f16);
    EXPECT_EQ(f16.plan.total(), bf.plan.total());
    EXPECT_EQ(f16.kv.bits, bf.kv.bits);
    EXPECT_EQ(f16.budget, bf.budget);
    const auto f16_kv = runtime::choose_media(vidi_9b(), 60, 600, {}, capped(60), 16, DType::f16);
    ASSERT_FALSE(f16_kv.kv.quantized());
    EXPECT_THAT(f16_kv.describe(), HasSubstr("media K/V fp16"));
}

// What NVDEC's sessions and frame ring cost a video (`--decoder auto` takes NVDEC only where
// nothing). On an H100 under 19 GiB (bench/RESULTS.md, 2026-12-06) a first estimate of them
// lowered a 10-minute 720p video from int8 to int4 K/V, and the committed one (0.39 GiB) would
// have sent its tokens to the host, which encoded 1.3 s slower.
TEST(MediaPlan, HoldingMoreMemorySaysWhatItWouldCostTheVideo) {
    const auto io = vidi_9b();
    const int64_t frames = 600, audio = 6000;
    const size_t gib = size_t(1) << 30;
    const auto cost = [&](double held_gib, const DeviceMemory& mem) {
        return runtime::cost_of_holding(static_cast<size_t>(held_gib * double(gib)), io, frames, audio, {}, mem, 16,
                                        DType::bf16);
    };
    runtime::MediaRequest int8_host;
    int8_host.kv = "int8";
    int8_host.tokens = "host";
    const size_t need8 = runtime::choose_media(io, frames, audio, int8_host, capped(60), 16, DType::bf16).plan.total();
    // 0.2 GiB to spare: int8 K/V with the tokens on the host; 0.4 GiB more held leaves int4.
    const DeviceMemory tight = capped(double(need8) / double(gib) + 0.2);
    ASSERT_EQ(runtime::choose_media(io, frames, audio, {}, tight, 16, DType::bf16).kv.bits, 8);
    const std::string lower = cost(0.4, tight);
    EXPECT_THAT(lower, HasSubstr("taking 0.40 GiB of GPU memory would make this video "));
    EXPECT_THAT(lower, HasSubstr("media K/V int4"));
    EXPECT_THAT(lower, HasSubstr("instead of 600 frames x 10x10 = 60000 visual + 6000 audio tokens, media K/V int8"));
    EXPECT_EQ(cost(0.1, tight), "");  // the same choice
    // 0.2 GiB to spare with the tokens on the device: 0.39 GiB more sends them to the host.
    runtime::MediaRequest int8_device = int8_host;
    int8_device.tokens = "device";
    const size_t need8_device =
        runtime::choose_media(io, frames, audio, int8_device, capped(60), 16, DType::bf16).plan.total();
    const DeviceMemory roomy = capped(double(need8_device) / double(gib) + 0.2);
    const std::string to_host = cost(0.39, roomy);
    EXPECT_THAT(to_host, HasSubstr("media K/V int8, media tokens kept on the host instead of "));
    EXPECT_THAT(to_host, testing::EndsWith("media K/V int8"));
    EXPECT_EQ(cost(0.4, capped(60)), "");
    // Held bytes come out of what the device has free when there is no cap.
    DeviceMemory uncapped = capped(60);
    uncapped.limit = 0;
    uncapped.free = need8 + gib / 5;
    EXPECT_THAT(cost(0.4, uncapped), HasSubstr("media K/V int4"));
    // Nothing fits either way: no cost to name (the planner's own error says what would fit).
    EXPECT_EQ(cost(0.4, capped(1)), "");
    // The least memory that takes the video at all (to 10 MiB): 1 GiB more held leaves too little.
    double lo = 1, hi = 12;
    while (hi - lo > 0.01) {
        const double mid = (lo + hi) / 2;
        (test::error_of([&] { runtime::choose_media(io, frames, audio, {}, capped(mid), 16, DType::bf16); }).empty()
             ? hi
             : lo) = mid;
    }
    EXPECT_THAT(cost(1, capped(hi)), HasSubstr("taking 1.00 GiB of GPU memory would leave too little for this video"));
}

TEST(WeightBytes, PositionalMlpsAreHeldInF32) {
    // The positional MLPs (three, two linears each) are the f32 weights: 2 bytes more a value.
    const model::Checkpoint ckpt = model::Checkpoint::open(test::tiny_model_dir());
    const std::set<std::string> f32 = ckpt.f32_weights();
    ASSERT_EQ(f32.size(), 12u);
    int64_t values = 0;
    for (const std::string& name : f32) {
        EXPECT_THAT(name, HasSubstr("mm_rand_pos_"));
        values += ckpt.get(name).numel();
    }
    const size_t bytes = runtime::weight_bytes(ckpt, QuantFormat{});
    EXPECT_EQ(bytes, static_cast<size_t>(ckpt.params().used) * 2 + static_cast<size_t>(values) * 2);
}
