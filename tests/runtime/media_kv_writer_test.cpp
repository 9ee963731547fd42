// MediaKvWriter: token rows arriving in batches of any size go into the same K/V bits as one
// encode of the whole stream, whether the tokens are kept on the device or copied to the host
// through the staging buffer (the hour under a 24 GB cap: issue 21), in every K/V format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backend/reference.h"
#include "runtime/loaded_model.h"
#include "runtime/loaded_tiny.h"
#include "runtime/media_kv_writer.h"
#include "runtime/tiny_decoder.h"
#include "support/test_support.h"

namespace vidi::test {
namespace {

using runtime::MediaKvWriter;

class MediaKvWriterTest : public testing::TestWithParam<std::string> {};

TEST_P(MediaKvWriterTest, AnyBatchesAndEitherPlacementGiveTheBitsOfOneEncode) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    Backend& be = m.backend();
    const int64_t chunk = 2 * kMediaKeyBlock, rows = 3 * chunk + 77;
    // Uploaded: in the activation dtype, as the towers hand them over.
    const Tensor tokens = be.upload(random_tensor({rows, m.config().llm.hidden}, DType::f32, 7, -3.0f, 3.0f));
    // 600 rows at once is more than the staging buffer's two chunks: it is fed in pieces.
    const std::vector<int64_t> batches = {1, 130, 600, rows - 731};
    for (const QuantFormat kv : {QuantFormat{}, QuantFormat{8, 0}, QuantFormat{4, 0}}) {
        const model::MediaKV want = m.decoder().encode_media(tokens, kv, chunk);
        for (const bool on_host : {false, true}) {
            SCOPED_TRACE(kv.name() + (on_host ? ", tokens on the host" : ", tokens on the device"));
            MediaKvWriter w(m, rows, kv, on_host, "", chunk);
            int64_t at = 0;
            for (int64_t n : batches) {
                w.append(tokens.rows(at, at + n));
                at += n;
            }
            w.finish();
            EXPECT_TRUE(same_kv(be, *w.kv(), want));
            EXPECT_TRUE(same_bytes(be, w.tokens(), tokens));
            EXPECT_EQ(w.tokens().on_host(), on_host || be.device() == Device::cpu);
        }
    }
}

// Frames in any order (the first batches of interleaved decoding lanes): each chunk goes through
// the layers once every row up to its end is there, with the bits of one encode.
TEST_P(MediaKvWriterTest, FramesInAnyOrderGiveTheBitsOfOneEncode) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    Backend& be = m.backend();
    const int64_t chunk = 2 * kMediaKeyBlock, per_frame = 24, frames = 40, rows = frames * per_frame;
    const Tensor tokens = be.upload(random_tensor({rows, m.config().llm.hidden}, DType::f32, 11, -3.0f, 3.0f));
    const QuantFormat kv{4, 0};
    const model::MediaKV want = m.decoder().encode_media(tokens, kv, chunk);
    // Batches of 4 as three interleaved lanes of 8 frames hand them out, then in order.
    const std::vector<std::vector<int64_t>> batches = {
        {0, 8, 16, 1}, {9, 17, 2, 10}, {18, 3, 11, 19}, {4, 12, 20, 5}, {13, 21, 6, 14}, {22, 7, 15, 23}};
    MediaKvWriter w(m, rows, kv, false, "", chunk);
    for (const auto& b : batches) {
        Tensor batch = be.act({static_cast<int64_t>(b.size()) * per_frame, m.config().llm.hidden});
        for (size_t i = 0; i < b.size(); ++i) {
            Tensor dst = batch.rows(static_cast<int64_t>(i) * per_frame, static_cast<int64_t>(i + 1) * per_frame);
            be.copy_(dst, tokens.rows(b[i] * per_frame, (b[i] + 1) * per_frame));
        }
        w.put_frames(batch, b, per_frame);
    }
    EXPECT_EQ(w.written(), 24 * per_frame);
    w.put_frames(tokens.rows(24 * per_frame, rows), {24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39},
                 per_frame);
    w.finish();
    EXPECT_TRUE(same_kv(be, *w.kv(), want));
    EXPECT_TRUE(same_bytes(be, w.tokens(), tokens));
}

TEST_P(MediaKvWriterTest, RowsGivenTwiceOrOutOfOrderOnTheHostAreErrors) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    const Tensor tokens = m.backend().upload(random_tensor({300, m.config().llm.hidden}, DType::f32, 7));
    MediaKvWriter device(m, 300, {}, false, "", kMediaKeyBlock);
    device.put(tokens.rows(100, 150), 100);
    device.put(tokens.rows(0, 50), 0);
    for (const auto& [from, to] : {std::pair<int64_t, int64_t>{40, 60}, {90, 110}, {140, 160}, {120, 130}})
        EXPECT_THAT(error_of([&] { device.put(tokens.rows(from, to), from); }), testing::HasSubstr("given before"))
            << from << ".." << to;
    EXPECT_THAT(error_of([&] { device.put(tokens.rows(0, 10), 295); }), testing::HasSubstr("of a stream of 300"));
    device.put(tokens.rows(50, 100), 50);
    device.put(tokens.rows(150, 300), 150);
    device.finish();
    MediaKvWriter whole(m, tokens.rows(0, 200), {}, "", kMediaKeyBlock);  // every row given at once
    EXPECT_THAT(error_of([&] { whole.append(tokens.rows(200, 210)); }), testing::HasSubstr("of a stream of 200"));
    EXPECT_THAT(error_of([&] { whole.put(tokens.rows(0, 10), 0); }), testing::HasSubstr("given before"));
    MediaKvWriter host(m, 300, {}, true, "", kMediaKeyBlock);
    host.put(tokens.rows(0, 50), 0);
    EXPECT_THAT(error_of([&] { host.put(tokens.rows(100, 150), 100); }),
                testing::HasSubstr("out of order for tokens kept on the host (50 expected)"));
}

TEST_P(MediaKvWriterTest, TooManyOrTooFewRowsAreErrors) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    const Tensor tokens = m.backend().upload(random_tensor({300, m.config().llm.hidden}, DType::f32, 7));
    MediaKvWriter w(m, 200, {}, true, "", kMediaKeyBlock);
    w.append(tokens.rows(0, 150));
    EXPECT_THAT(error_of([&] { w.finish(); }), testing::HasSubstr("150 of 200 rows arrived"));
    EXPECT_THAT(error_of([&] { w.append(tokens.rows(150, 300)); }), testing::HasSubstr("rows 150..300 of a stream of 200"));
    EXPECT_THAT(error_of([&] { MediaKvWriter(m, 10, {}, false, "", 100); }), testing::HasSubstr("in chunks of 100"));
}

INSTANTIATE_TEST_SUITE_P(Backends, MediaKvWriterTest, testing::ValuesIn(backends_present()),
                         [](const auto& info) { return info.param; });

TEST(MediaTokenBytes, TheHostPlacementHoldsTwoChunksOnTheDevice) {
    EXPECT_EQ(runtime::media_token_bytes(90000, 3584, DType::bf16, false), size_t(90000) * 3584 * 2);
    EXPECT_EQ(runtime::media_token_bytes(90000, 3584, DType::bf16, true), size_t(2 * 4096) * 3584 * 2);
    EXPECT_EQ(runtime::media_token_bytes(1000, 3584, DType::bf16, true), size_t(1000) * 3584 * 2);
}

}  // namespace
}  // namespace vidi::test
