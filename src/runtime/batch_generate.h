// Greedy generation of several prompts over one set of media K/V, stepped together
// (Engine::batch): each row has its own text cache, its own limit and stops on its own; rows
// join at any step (the prompts that joined since the last step are prefilled together at the
// next, the media K/V read once for all) and leave when they stop. A row's tokens are the ones
// generate() gives for its prompt alone: the batched prefill and steps compute each row
// exactly as the one-row calls would (Decoder::prefill_rows, decode_rows).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/generate.h"

namespace vidi::runtime {

class BatchGeneration {
public:
    BatchGeneration(const model::Decoder& model, std::vector<const model::MediaKV*> media,
                    std::vector<int32_t> stop_ids, ProgressFn progress = nullptr);

    // A new row for `prompt` (prefilled at the next step); returns its id. Errors (a prompt past
    // the context, a token outside the vocabulary, no memory for its cache) leave the other
    // rows as they were.
    int add(const std::vector<int32_t>& prompt, int max_new_tokens);
    // The row leaves the batch at once, without a result.
    void cancel(int row);

    struct RowStep {
        int row = 0;
        int32_t token = -1;     // appended this step (-1: none)
        bool finished = false;  // result(row) is final
    };
    // The next token of every row (rows that joined are prefilled first): rows that stop
    // (a stop id, limit, full context) finish; the others go through the decoder together for
    // the token after.
    std::vector<RowStep> step();

    // A row's tokens so far (and, once finished, its result); valid until the row is dropped.
    const GenerationResult& result(int row) const;
    // Forgets a finished row.
    void drop(int row);
    int rows() const;  // unfinished rows

private:
    struct Row {
        int id = 0;
        model::TextCache cache;
        std::vector<int32_t> prompt;  // until prefilled
        bool prefilled = false;
        TopPick pick;  // the token the next step appends (from the last forward)
        int max_new_tokens = 0;
        bool finished = false;
        bool started = false;
        std::chrono::steady_clock::time_point first_step;
        GenerationResult result;
    };
    Row* find(int row);
    const Row* find(int row) const;
    // The prompts of `rows` through the decoder together; sets each row's first pick.
    void prefill(const std::vector<Row*>& rows);
    // One token for each of `rows` through the decoder, kMaxStepRows rows a step (each group
    // with its own recording): sets each row's next pick.
    void forward(const std::vector<Row*>& rows);

    const model::Decoder& model_;
    std::vector<const model::MediaKV*> media_;
    std::vector<int32_t> stop_ids_;  // the family's (Family::stop_ids)
    ProgressFn progress_;
    std::vector<std::unique_ptr<Row>> rows_;  // in add() order
    std::vector<model::RecordedRowsStep> steps_recorded_;  // one per group of rows
    int next_id_ = 0;
    int64_t steps_ = 0;
};

}  // namespace vidi::runtime
