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

TEST_P(MediaKvWriterTest, TooManyOrTooFewRowsAreErrors) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    const Tensor tokens = m.backend().upload(random_tensor({300, m.config().llm.hidden}, DType::f32, 7));
    MediaKvWriter w(m, 200, {}, true, "", kMediaKeyBlock);
    w.append(tokens.rows(0, 150));
    EXPECT_THAT(error_of([&] { w.finish(); }), testing::HasSubstr("150 of 200 rows arrived"));
    EXPECT_THAT(error_of([&] { w.append(tokens.rows(150, 300)); }), testing::HasSubstr("300 rows for a stream of 200"));
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
