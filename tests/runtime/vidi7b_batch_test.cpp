// Batched generation with Vidi-7B's Mistral decoder (the shared DattnDecoder's prefill_rows and
// decode_rows) against generate() one prompt at a time: the tiny Vidi-7B with its golden media
// tokens and prompts (tests/data/vidi7b), on the CPU and, when there is a GPU, on CUDA in bf16
// and fp16. Every row's ids, margins and stop must be the same bits, with media and text only;
// the prompts (77 tokens) and answers run past the model's sliding window of 16, which every
// Mistral layer applies.
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/vidi7b/mistral.h"
#include "runtime/batch_generate.h"
#include "runtime/generate.h"
#include "runtime/tiny_decoder.h"
#include "support/test_support.h"

using namespace vidi;
using test::ids_of;

namespace {

constexpr int kStop = 2;  // </s>

struct Fixture {
    explicit Fixture(const test::DecoderBackend& b)
        : backend(b.make()), decoder(config, model::WeightLoader(weights, *backend)) {}
    model::ModelConfig config = model::load_config(test::tiny_vidi7b_dir());
    io::TensorStore weights = io::TensorStore::open(test::tiny_vidi7b_dir());
    std::unique_ptr<Backend> backend;
    model::vidi7b::Mistral decoder;
    std::shared_ptr<io::SafetensorsFile> golden =
        io::SafetensorsFile::open(test::vidi7b_data_dir() + "/tiny-vidi7b_synth.golden.safetensors");
    model::MediaKV visual = decoder.encode_media(backend->upload(golden->get("image_tokens")));
    model::MediaKV audio = decoder.encode_media(backend->upload(golden->get("audio_tokens")));
    std::vector<const model::MediaKV*> media{&visual, &audio};
    std::vector<int32_t> prompt = ids_of(golden->get("prompt_ids"));
    std::vector<int32_t> text_prompt = ids_of(golden->get("text_prompt_ids"));

    runtime::GenerationResult alone(const std::vector<int32_t>& p, int max_new,
                                    const std::vector<const model::MediaKV*>& m) const {
        runtime::GenerationRequest req;
        req.prompt = p;
        req.media = m;
        req.max_new_tokens = max_new;
        req.stop_ids = {kStop};
        return runtime::generate(decoder, req);
    }
};

void expect_same(const runtime::GenerationResult& got, const runtime::GenerationResult& want, const std::string& what) {
    EXPECT_EQ(got.ids, want.ids) << what;
    ASSERT_EQ(got.margins.size(), want.margins.size()) << what;
    for (size_t i = 0; i < got.margins.size(); ++i) EXPECT_EQ(got.margins[i], want.margins[i]) << what << " step " << i;
    EXPECT_EQ(got.stopped, want.stopped) << what;
}

// Rows of `prompts` (max_new each) stepped to the end, joined by `late` after two steps.
std::map<int, runtime::GenerationResult> run(const Fixture& f, const std::vector<const model::MediaKV*>& media,
                                             const std::vector<std::vector<int32_t>>& prompts,
                                             const std::vector<int32_t>& late, int max_new, std::vector<int>& rows) {
    runtime::BatchGeneration b(f.decoder, media, {kStop});
    for (const auto& p : prompts) rows.push_back(b.add(p, max_new));
    std::map<int, runtime::GenerationResult> done;
    for (int step = 0; b.rows() > 0; ++step) {
        if (step == 2) rows.push_back(b.add(late, max_new));
        for (const auto& s : b.step())
            if (s.finished) done[s.row] = b.result(s.row);
    }
    return done;
}

class Vidi7bBatch : public testing::TestWithParam<test::DecoderBackend> {};

}  // namespace

TEST_P(Vidi7bBatch, EveryRowIsItsPromptAloneBitForBit) {
    const Fixture f(GetParam());
    auto changed = [](std::vector<int32_t> p, size_t at, int32_t id) {
        p[at] = id;
        return p;
    };
    const auto& p = f.prompt;
    const std::vector<std::vector<int32_t>> prompts{p, changed(p, p.size() / 2, 200),
                                                    std::vector<int32_t>(p.begin(), p.end() - 3)};
    std::vector<int> rows;
    auto done = run(f, f.media, prompts, changed(p, p.size() / 3, 301), 20, rows);
    ASSERT_EQ(done.size(), 4u);
    EXPECT_EQ(done[rows[0]].ids.size(), 20u);  // the golden prompt's answer does not stop before 20
    for (size_t i = 0; i < prompts.size(); ++i)
        expect_same(done[rows[i]], f.alone(prompts[i], 20, f.media), "prompt " + std::to_string(i));
    expect_same(done[rows[3]], f.alone(changed(p, p.size() / 3, 301), 20, f.media), "joined at step 2");

    const auto& t = f.text_prompt;
    std::vector<int> text_rows;
    auto text_done = run(f, {}, {t, changed(t, t.size() / 2, 250)}, changed(t, 1, 99), 20, text_rows);
    expect_same(text_done[text_rows[0]], f.alone(t, 20, {}), "text-only");
    expect_same(text_done[text_rows[1]], f.alone(changed(t, t.size() / 2, 250), 20, {}), "text-only, changed");
    expect_same(text_done[text_rows[2]], f.alone(changed(t, 1, 99), 20, {}), "text-only, joined at step 2");
}

INSTANTIATE_TEST_SUITE_P(Backends, Vidi7bBatch, testing::ValuesIn(test::decoder_backends()),
                         [](const auto& info) { return std::string(info.param.name); });
