// `--gpu-memory` planning for Vidi-7B at the preset's (assumed) full size, config only: media
// K/V per token as docs/vidi-7b.md §9 counts it, s² tokens every frame (no token budget), and
// under a cap 8-bit K/V first, then fewer frames, never a smaller grid.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/family.h"
#include "runtime/capped_memory.h"
#include "runtime/media_plan.h"
#include "runtime/memory_plan.h"

using namespace vidi;
using test::capped;

namespace {

model::ModelConfig vidi_7b() { return model::config_from_json(model::find_preset("vidi-7b").config, "."); }

}  // namespace

TEST(Vidi7bMemory, MediaKvOfTenMinutesIsTheDocsArithmetic) {
    // 2·L·KV·hd = 65536 values per media token, 128 KiB in bf16; 600 frames × 8² + 6000 audio.
    const auto p = runtime::plan_video(vidi_7b(), 600, 8, 6000, 16, DType::bf16);
    EXPECT_EQ(p.media_kv, size_t(44400) * 131072);
    EXPECT_EQ(p.media_tokens, size_t(44400) * 4096 * 2);
    EXPECT_THAT(p.describe(), testing::HasSubstr("media K/V 5.42 GiB"));
    // The working set covers the image pool's pass over a frame batch (24² cells of 1152·16).
    EXPECT_GT(p.activations, size_t(16) * 24 * 24 * 1152 * 16 * 2 / 4);
    EXPECT_LT(p.activations, size_t(4) << 30);
    const auto q = runtime::plan_video(vidi_7b(), 600, 8, 6000, 16, DType::bf16, QuantFormat{8, 128});
    EXPECT_EQ(q.media_kv, size_t(44400) * 32 * 2 * 8 * (128 + 4));  // int8 + one f32 scale a head
}

TEST(Vidi7bMemory, EveryFrameGivesS2TokensAndShortMemoryThinsFramesNotTheGrid) {
    const model::ModelConfig c = vidi_7b();
    constexpr int64_t hour_frames = 3600, hour_audio = 36000;
    const auto roomy = runtime::choose_media(c, hour_frames, hour_audio, {}, capped(60), 16, DType::bf16);
    EXPECT_FALSE(roomy.kv.quantized());  // 266400 tokens × 128 KiB = 32.5 GiB
    EXPECT_EQ(roomy.side, 8);
    EXPECT_EQ(roomy.step, 1);
    EXPECT_EQ(roomy.visual_tokens(), 3600 * 64);

    // int8 K/V: 16.8 GiB, the tokens 2.0 GiB.
    const auto kv8 = runtime::choose_media(c, hour_frames, hour_audio, {}, capped(24), 16, DType::bf16);
    EXPECT_TRUE(kv8.kv.quantized());
    EXPECT_EQ(kv8.side, 8);
    EXPECT_EQ(kv8.step, 1);
    EXPECT_LE(kv8.plan.total(), size_t(24) << 30);

    const auto thin = runtime::choose_media(c, hour_frames, hour_audio, {}, capped(8), 16, DType::bf16);
    EXPECT_TRUE(thin.kv.quantized());
    EXPECT_EQ(thin.side, 8);  // the grid is the model's; only frames go
    EXPECT_GT(thin.step, 1);
    EXPECT_LE(thin.plan.total(), size_t(8) << 30);
}
