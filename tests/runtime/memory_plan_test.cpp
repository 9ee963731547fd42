#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/common/dattn_decoder.h"
#include "model/common/tower_memory.h"
#include "model/vidi15/family.h"
#include "runtime/memory_plan.h"
#include "support/test_support.h"

using namespace vidi;
using runtime::parse_bytes;

namespace {
model::ModelConfig vidi_9b() {
    model::ModelConfig c;
    c.family = &model::vidi15::family();
    c.llm.hidden = 3584, c.llm.intermediate = 14336, c.llm.layers = 42, c.llm.heads = 16, c.llm.kv_heads = 8,
    c.llm.head_dim = 256;
    c.vision = model::builtin_vision_config("google/siglip2-so400m-patch14-384");
    c.audio = model::builtin_audio_config("openai/whisper-large-v3");
    return c;
}
}  // namespace

TEST(MemoryPlan, MediaKvOfTenMinutesMatchesTheSpecArithmetic) {
    // SPEC §8: 2·KV·head_dim bf16 values per layer and media token = 8 KiB.
    auto p = runtime::plan_video(vidi_9b(), 600, 10, 6000, 16, DType::bf16);
    EXPECT_EQ(p.media_kv, size_t(66000) * 42 * 8192);
    EXPECT_EQ(p.media_tokens, size_t(66000) * 3584 * 2);
    EXPECT_GT(p.activations, size_t(256) << 20);
    EXPECT_LT(p.activations, size_t(2) << 30);
    EXPECT_THAT(p.describe(), testing::HasSubstr("media K/V 21.15 GiB"));
}

TEST(MemoryPlan, MediaKvInEightAndFourBits) {
    // int8: hd codes and one f32 scale per head and token. int4: hd/2 bytes of codes per side,
    // key scales and zeros (f16) per channel and block of 128 tokens of each stream, value
    // scales (f16) per token and group of 64.
    const auto c = vidi_9b();
    const int64_t visual = 90000, audio = 36000;
    auto p8 = runtime::plan_video(c, 3600, 5, audio, 16, DType::bf16, QuantFormat{8, 0});
    EXPECT_EQ(p8.media_kv, size_t(visual + audio) * 42 * 2 * 8 * (256 + 4));
    auto p4 = runtime::plan_video(c, 3600, 5, audio, 16, DType::bf16, QuantFormat{4, 0});
    auto blocks = [](int64_t t) { return size_t((t + 127) / 128); };
    const size_t per_layer = size_t(visual + audio) * 8 * (128 + 128 + 4 * 2) +
                             (blocks(visual) + blocks(audio)) * 8 * 256 * 2 * 2;
    EXPECT_EQ(p4.media_kv, per_layer * 42);
    EXPECT_THAT(p4.describe(), testing::HasSubstr("media K/V 10.7"));  // ~10.7 GiB for an hour
}

TEST(MemoryPlan, RefusalSaysNeededAndAvailable) {
    DeviceMemory m;
    m.total = size_t(80) << 30;
    m.free = size_t(50) << 30;
    m.in_use = size_t(21) << 30;
    m.limit = size_t(30) << 30;
    EXPECT_EQ(runtime::available_bytes(m), size_t(9) << 30);  // the cap binds
    try {
        runtime::require_fits("this video", size_t(22) << 30, m);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), testing::HasSubstr("needs 22.00 GiB but only 9.00 GiB is available"));
        EXPECT_THAT(e.what(), testing::HasSubstr("--gpu-memory 30.00 GiB"));
    }
    m.limit = 0;
    EXPECT_EQ(runtime::available_bytes(m), size_t(50) << 30);
    EXPECT_NO_THROW(runtime::require_fits("this video", size_t(22) << 30, m));
}

TEST(MemoryPlan, ParsesSizesAndRejectsNonsense) {
    EXPECT_EQ(parse_bytes("19GiB"), size_t(19) << 30);
    EXPECT_EQ(parse_bytes("20g"), size_t(20) << 30);
    EXPECT_EQ(parse_bytes("512MiB"), size_t(512) << 20);
    EXPECT_EQ(parse_bytes("2GB"), size_t(2000000000));
    EXPECT_EQ(parse_bytes("1.5GiB"), size_t(3) << 29);
    EXPECT_EQ(parse_bytes("4096"), size_t(4096));
    EXPECT_THROW(parse_bytes("lots"), Error);
    EXPECT_THROW(parse_bytes("19 parsecs"), Error);
    EXPECT_THROW(parse_bytes("0GiB"), Error);
    // Found by probing the flag: "1.2.3G" was 1.2G, and a size past 2^64 an undefined cast.
    EXPECT_THROW(parse_bytes("1.2.3G"), Error);
    EXPECT_THROW(parse_bytes("99999999999999999999G"), Error);
    // Under a byte the size would be 0, which means "no limit".
    EXPECT_THAT(test::error_of([] { parse_bytes("0.4"); }), testing::HasSubstr("'0.4' is less than a byte"));
    EXPECT_EQ(parse_bytes("1"), size_t(1));
}

TEST(MemoryPlan, Fp8CopiesOfTheMediaLayersWeights) {
    // K and V in every layer; O, gate, up and down in all but the last (the media tokens' last
    // update feeds nothing): one byte a value and an f32 scale a row. O is folded over the 2
    // heads that share each of the 8 K/V heads ([3584, 2048]), its 16-bit fold kept beside.
    const auto c = vidi_9b();
    const size_t kv = 2 * (2048 * 3584 + 4 * 2048);
    const size_t rest = (3584 * 2048 + 4 * 3584) + 2 * (14336 * 3584 + 4 * 14336) + (3584 * 14336 + 4 * 3584);
    EXPECT_EQ(model::media_fp8_copy_bytes(c.llm), 42 * kv + 41 * rest);  // 6.75 GiB at Vidi1.5-9B's size
    EXPECT_EQ(model::media_fold_bytes(c.llm, 2), size_t(41) * 3584 * 2048 * 2);  // 0.56 GiB
    auto own = c.llm;  // every head its own K/V head: nothing to fold
    own.kv_heads = own.heads;
    EXPECT_EQ(model::media_fold_bytes(own, 2), 0u);
    const size_t own_kv = 2 * (4096 * 3584 + 4 * 4096);
    const size_t own_rest = (3584 * 4096 + 4 * 3584) + 2 * (14336 * 3584 + 4 * 14336) + (3584 * 14336 + 4 * 3584);
    EXPECT_EQ(model::media_fp8_copy_bytes(own), 42 * own_kv + 41 * own_rest);
}

TEST(MemoryPlan, Fp8CopiesOfTheTowersNormedLinears) {
    // q, k, v and fc1 of the 26 SigLIP layers run (select_layer -2 of 27) and of Whisper's 32:
    // one byte a value and an f32 scale a row, and q, k and v's biases joined in 16 bits, 0.56
    // GiB at Vidi1.5-9B's size. A width the FP8 GEMM does not take (K not a multiple of 16)
    // keeps no copy.
    auto c = vidi_9b();
    ASSERT_EQ(c.vision_layers_used(), 26);
    const size_t vision = 3 * (1152 * 1152 + 4 * 1152 + 2 * 1152) + (4304 * 1152 + 4 * 4304);
    const size_t audio = 3 * (1280 * 1280 + 4 * 1280 + 2 * 1280) + (5120 * 1280 + 4 * 5120);
    EXPECT_EQ(model::tower_fp8_copy_bytes(c), 26 * vision + 32 * audio);
    c.audio.d_model = 40;  // tiny-a's Whisper
    EXPECT_EQ(model::tower_fp8_copy_bytes(c), 26 * vision);
}

TEST(MemoryPlan, Fp8CopiesAreKeptWhereTheyTakeAQuarterOfWhatTheWeightsLeave) {
    DeviceMemory m;
    m.total = size_t(141) << 30;
    m.free = size_t(140) << 30;
    const size_t copies = size_t(7) << 30, weights = size_t(18) << 30;
    auto c = runtime::choose_fp8_copies(copies, weights, m);  // 122 GiB left: kept
    EXPECT_TRUE(c.keep);
    EXPECT_THAT(c.note, testing::HasSubstr("kept (7.00 GiB of the 122.00 GiB left after the weights)"));
    m.limit = size_t(46) << 30;  // 28 GiB left, a quarter is 7 GiB: still kept
    EXPECT_TRUE(runtime::choose_fp8_copies(copies, weights, m).keep);
    m.limit = size_t(40) << 30;  // 22 GiB left: converted at each call, and said why
    c = runtime::choose_fp8_copies(copies, weights, m);
    EXPECT_FALSE(c.keep);
    EXPECT_THAT(c.note, testing::HasSubstr("converted to FP8 at each call"));
    EXPECT_THAT(c.note, testing::HasSubstr("(7.00 GiB) would take more than a quarter of the 22.00 GiB"));
    m.limit = size_t(10) << 30;  // less than the weights: nothing left, never kept
    EXPECT_FALSE(runtime::choose_fp8_copies(copies, weights, m).keep);
}
