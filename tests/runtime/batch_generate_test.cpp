// Batched generation against generate() one prompt at a time, with tiny-a and the golden
// media tokens, on the CPU and (when there is a GPU) on CUDA: every row's ids, margins (top-1
// minus top-2 logit, a float that any change in the arithmetic moves) and stop must be the same
// bits, whatever the batch holds, when rows join, leave or are cancelled.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "runtime/batch_generate.h"
#include "runtime/generate.h"
#include "runtime/tiny_decoder.h"
#include "support/test_support.h"

using namespace vidi;
using test::ids_of;

namespace {

// tiny-a with the golden media K/V and prompts, on one backend.
struct Fixture : test::TinyDecoder {
    explicit Fixture(const std::string& kind) : TinyDecoder(kind) {}
    std::shared_ptr<io::SafetensorsFile> golden =
        io::SafetensorsFile::open(test::golden_path("tiny-a_synth.golden.safetensors"));
    model::MediaKV visual = decoder.encode_media(backend->upload(golden->get("image_tokens")));
    model::MediaKV audio = decoder.encode_media(backend->upload(golden->get("audio_tokens")));
    std::vector<const model::MediaKV*> media{&visual, &audio};
    std::vector<int32_t> prompt = ids_of(golden->get("prompt_ids"));
    std::vector<int32_t> text_prompt = ids_of(golden->get("text_prompt_ids"));
};

// The fixture of the backend under test, made once per process.
std::string current_kind = "cpu";
Fixture& fixture() {
    static std::map<std::string, std::unique_ptr<Fixture>> made;
    auto& f = made[current_kind];
    if (!f) f = std::make_unique<Fixture>(current_kind);
    return *f;
}

class BatchGenerate : public testing::TestWithParam<std::string> {
protected:
    void SetUp() override { current_kind = GetParam(); }
};

// Prompts that differ: the golden one, with a word swapped, shortened, longer.
std::vector<std::vector<int32_t>> prompts() {
    const auto& p = fixture().prompt;
    std::vector<std::vector<int32_t>> out{p, p, std::vector<int32_t>(p.begin(), p.end() - 3), p};
    out[1][p.size() / 2] = 200;
    out[3].insert(out[3].end() - 4, {300, 301, 302});
    return out;
}

runtime::GenerationResult alone(const std::vector<int32_t>& prompt, int max_new, int stop_id,
                                const std::vector<const model::MediaKV*>& media) {
    runtime::GenerationRequest req;
    req.prompt = prompt;
    req.media = media;
    req.max_new_tokens = max_new;
    req.stop_ids = {stop_id};
    return runtime::generate(fixture().decoder, req);
}

void expect_same(const runtime::GenerationResult& got, const runtime::GenerationResult& want, const std::string& what) {
    EXPECT_EQ(got.ids, want.ids) << what;
    ASSERT_EQ(got.margins.size(), want.margins.size()) << what;
    for (size_t i = 0; i < got.margins.size(); ++i) EXPECT_EQ(got.margins[i], want.margins[i]) << what << " step " << i;
    EXPECT_EQ(got.stopped, want.stopped) << what;
    EXPECT_EQ(got.prompt_tokens, want.prompt_tokens) << what;
}

// Steps the batch until every row has finished; returns each row's result by id.
std::map<int, runtime::GenerationResult> drain(runtime::BatchGeneration& b) {
    std::map<int, runtime::GenerationResult> done;
    while (b.rows() > 0)
        for (const auto& s : b.step())
            if (s.finished) done[s.row] = b.result(s.row);
    return done;
}

}  // namespace

TEST_P(BatchGenerate, EveryRowIsItsPromptAloneBitForBit) {
    Fixture& f = fixture();
    const auto ps = prompts();
    const std::vector<int> limits = {16, 9, 0, 1};
    runtime::BatchGeneration b(f.decoder, f.media, {107});
    std::vector<int> rows;
    for (size_t i = 0; i < ps.size(); ++i) rows.push_back(b.add(ps[i], limits[i]));
    auto done = drain(b);
    ASSERT_EQ(done.size(), ps.size());
    for (size_t i = 0; i < ps.size(); ++i)
        expect_same(done[rows[i]], alone(ps[i], limits[i], 107, f.media), "prompt " + std::to_string(i));
    EXPECT_TRUE(done[rows[2]].ids.empty());
    EXPECT_EQ(done[rows[3]].ids.size(), 1u);
}

TEST_P(BatchGenerate, RowsJoiningLateAndCancelledRowsLeaveTheOthersUnchanged) {
    Fixture& f = fixture();
    const auto ps = prompts();
    runtime::BatchGeneration b(f.decoder, f.media, {107});
    const int r0 = b.add(ps[0], 12), r1 = b.add(ps[1], 12);
    std::map<int, runtime::GenerationResult> done;
    std::vector<int> tokens_of_r1;
    for (int i = 0; i < 3; ++i)
        for (const auto& s : b.step())
            if (s.row == r1 && s.token >= 0) tokens_of_r1.push_back(s.token);
    const int r2 = b.add(ps[2], 12), r3 = b.add(ps[3], 5);
    EXPECT_EQ(b.rows(), 4);
    b.step();
    b.cancel(r1);
    EXPECT_EQ(b.rows(), 3);
    for (auto& [row, r] : drain(b)) done[row] = r;
    EXPECT_EQ(done.count(r1), 0u);
    expect_same(done[r0], alone(ps[0], 12, 107, f.media), "r0");
    expect_same(done[r2], alone(ps[2], 12, 107, f.media), "r2 (joined at step 3)");
    expect_same(done[r3], alone(ps[3], 5, 107, f.media), "r3 (joined at step 3)");
    // What r1 produced before it was cancelled is what it would have produced alone.
    const auto r1_alone = alone(ps[1], 12, 107, f.media);
    ASSERT_EQ(tokens_of_r1.size(), 3u);
    for (size_t i = 0; i < tokens_of_r1.size(); ++i) EXPECT_EQ(tokens_of_r1[i], r1_alone.ids[i]);
}

TEST_P(BatchGenerate, ARowStopsOnItsStopIdAndTextOnlyRowsBatchToo) {
    Fixture& f = fixture();
    // Stop on the third token the golden prompt generates: that row stops, the others go on.
    const auto ps = prompts();
    const int stop = alone(ps[0], 3, 107, f.media).ids.back();
    runtime::BatchGeneration b(f.decoder, f.media, {stop});
    const int r0 = b.add(ps[0], 10), r1 = b.add(ps[1], 10);
    auto done = drain(b);
    const auto want0 = alone(ps[0], 10, stop, f.media);
    EXPECT_TRUE(want0.stopped);
    expect_same(done[r0], want0, "stopped row");
    expect_same(done[r1], alone(ps[1], 10, stop, f.media), "other row");

    runtime::BatchGeneration text(f.decoder, {}, {107});
    auto other = f.text_prompt;
    other[other.size() / 2] = 250;
    const int t0 = text.add(f.text_prompt, 16), t1 = text.add(other, 7);
    auto text_done = drain(text);
    expect_same(text_done[t0], alone(f.text_prompt, 16, 107, {}), "text-only");
    expect_same(text_done[t1], alone(other, 7, 107, {}), "text-only, changed");
}

// 4-bit media K/V (--media-kv int4) through the batch's cross-attention (on CUDA the few-row
// kernel a few queries at a time, as int8): every row is still its prompt alone.
TEST_P(BatchGenerate, RowsOverInt4MediaKvAreTheirPromptsAlone) {
    Fixture& f = fixture();
    model::MediaKV visual = f.decoder.encode_media(f.backend->upload(f.golden->get("image_tokens")), QuantFormat{4, 0});
    model::MediaKV audio = f.decoder.encode_media(f.backend->upload(f.golden->get("audio_tokens")), QuantFormat{4, 0});
    ASSERT_EQ(visual.k[0].bits, 4);
    const std::vector<const model::MediaKV*> media{&visual, &audio};
    const auto ps = prompts();
    runtime::BatchGeneration b(f.decoder, media, {107});
    std::vector<int> rows;
    for (const auto& p : ps) rows.push_back(b.add(p, 8));
    auto done = drain(b);
    ASSERT_EQ(done.size(), ps.size());
    for (size_t i = 0; i < ps.size(); ++i)
        expect_same(done[rows[i]], alone(ps[i], 8, 107, media), "int4 K/V, prompt " + std::to_string(i));
}

TEST_P(BatchGenerate, APromptPastTheContextIsRefusedAloneInItsBatch) {
    Fixture& f = fixture();
    runtime::BatchGeneration b(f.decoder, f.media, {107});
    const int r0 = b.add(f.prompt, 6);
    std::vector<int32_t> huge(static_cast<size_t>(f.config.llm.max_positions) + 5, 300);
    EXPECT_THROW(b.add(huge, 4), Error);
    EXPECT_EQ(b.rows(), 1);
    auto done = drain(b);
    expect_same(done[r0], alone(f.prompt, 6, 107, f.media), "the row beside the refused one");
}

INSTANTIATE_TEST_SUITE_P(Backends, BatchGenerate, testing::ValuesIn(test::backends_present()),
                         [](const testing::TestParamInfo<std::string>& i) { return i.param; });
