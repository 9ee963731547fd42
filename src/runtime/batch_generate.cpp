#include "runtime/batch_generate.h"

#include <algorithm>

#include "runtime/seconds_since.h"
namespace vidi::runtime {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

BatchGeneration::BatchGeneration(const model::Decoder& model, std::vector<const model::MediaKV*> media,
                                 std::vector<int32_t> stop_ids, ProgressFn progress)
    : model_(model), media_(std::move(media)), stop_ids_(std::move(stop_ids)), progress_(std::move(progress)) {}

BatchGeneration::Row* BatchGeneration::find(int row) {
    for (auto& r : rows_)
        if (r->id == row) return r.get();
    return nullptr;
}

const BatchGeneration::Row* BatchGeneration::find(int row) const {
    for (auto& r : rows_)
        if (r->id == row) return r.get();
    return nullptr;
}

int BatchGeneration::add(const std::vector<int32_t>& prompt, int max_new_tokens) {
    VIDI_CHECK(max_new_tokens >= 0, "max_new_tokens must not be negative");
    VIDI_CHECK(!prompt.empty(), "an empty prompt");
    check_token_ids(prompt.data(), static_cast<int64_t>(prompt.size()), model_.vocab(), "prompt");
    auto row = std::make_unique<Row>();
    row->max_new_tokens = max_new_tokens;
    row->cache = model_.new_cache(context_for(model_, prompt.size(), max_new_tokens));
    row->prompt = prompt;
    row->result.prompt_tokens = static_cast<int>(prompt.size());
    row->id = next_id_++;
    rows_.push_back(std::move(row));
    return rows_.back()->id;
}

void BatchGeneration::prefill(const std::vector<Row*>& rows) {
    std::vector<std::vector<int32_t>> prompts;
    std::vector<model::TextCache*> caches;
    int64_t tokens = 0;
    for (Row* r : rows) {
        prompts.push_back(r->prompt);
        caches.push_back(&r->cache);
        tokens += static_cast<int64_t>(r->prompt.size());
    }
    const auto t0 = Clock::now();
    if (progress_) progress_("prefill", 0, tokens);
    Backend& be = model_.backend();
    {
        const Section s = be.section("prefill");
        const std::vector<Tensor> logits = model_.prefill_rows(prompts, caches, media_);
        for (size_t i = 0; i < rows.size(); ++i) rows[i]->pick = checked_top_picks(be, logits[i])[0];
    }
    const double seconds = seconds_since(t0);
    for (Row* r : rows) {
        r->result.prefill_s = seconds;
        r->result.prefill_rows = static_cast<int>(rows.size());
        r->prompt.clear();
        r->prefilled = true;
    }
}

void BatchGeneration::cancel(int row) {
    rows_.erase(std::remove_if(rows_.begin(), rows_.end(), [&](const auto& r) { return r->id == row; }), rows_.end());
}

std::vector<BatchGeneration::RowStep> BatchGeneration::step() {
    // Rows that joined since the last step are prefilled together, kMaxStepRows at a time
    // (each with the bits of its prompt alone), and take part in this step.
    std::vector<Row*> joined;
    for (auto& rp : rows_)
        if (!rp->prefilled) joined.push_back(rp.get());
    const size_t group = static_cast<size_t>(model::kMaxStepRows);
    for (size_t g = 0; g < joined.size(); g += group)
        prefill(std::vector<Row*>(joined.begin() + g, joined.begin() + std::min(joined.size(), g + group)));

    std::vector<RowStep> out;
    std::vector<Row*> going;
    int64_t most = 0;
    for (auto& rp : rows_) {
        Row& r = *rp;
        if (r.finished) continue;
        if (!r.started) {
            r.started = true;
            r.first_step = Clock::now();
        }
        RowStep s{r.id, -1, false};
        GenerationResult& g = r.result;
        // generate()'s loop, one iteration: a row whose limit is 0 never looks at its pick.
        if (static_cast<int>(g.ids.size()) >= r.max_new_tokens) {
            s.finished = true;
        } else if (std::find(stop_ids_.begin(), stop_ids_.end(), r.pick.id) != stop_ids_.end()) {
            g.stopped = true;
            s.finished = true;
        } else {
            g.ids.push_back(r.pick.id);
            g.margins.push_back(r.pick.margin);
            s.token = r.pick.id;
            s.finished = static_cast<int>(g.ids.size()) == r.max_new_tokens || r.cache.length >= r.cache.capacity;
        }
        if (s.finished) {
            r.finished = true;
            g.generate_s = seconds_since(r.first_step);
        } else {
            going.push_back(&r);
            most = std::max<int64_t>(most, r.max_new_tokens);
        }
        out.push_back(s);
    }
    ++steps_;
    if (progress_ && !out.empty()) progress_("generate", steps_, most);
    if (!going.empty()) forward(going);
    return out;
}

void BatchGeneration::forward(const std::vector<Row*>& rows) {
    Backend& be = model_.backend();
    const size_t group = static_cast<size_t>(model::kMaxStepRows);
    const size_t groups = (rows.size() + group - 1) / group;
    steps_recorded_.resize(groups);  // recordings of groups that are gone go with them
    for (size_t g = 0; g < groups; ++g) {
        std::vector<int32_t> ids;
        std::vector<model::TextCache*> caches;
        for (size_t i = g * group; i < std::min(rows.size(), (g + 1) * group); ++i) {
            ids.push_back(rows[i]->pick.id);
            caches.push_back(&rows[i]->cache);
        }
        Tensor logits;
        {
            const Section s = be.section("decoding step");
            logits = model_.decode_rows(ids, caches, media_, steps_recorded_[g]);
        }
        const std::vector<TopPick> picks = checked_top_picks(be, logits);
        for (size_t i = 0; i < ids.size(); ++i) rows[g * group + i]->pick = picks[i];
    }
}

const GenerationResult& BatchGeneration::result(int row) const {
    const Row* r = find(row);
    VIDI_CHECK(r, "batch: no row ", row);
    return r->result;
}

void BatchGeneration::drop(int row) { cancel(row); }

int BatchGeneration::rows() const {
    return static_cast<int>(std::count_if(rows_.begin(), rows_.end(), [](const auto& r) { return !r->finished; }));
}

}  // namespace vidi::runtime
