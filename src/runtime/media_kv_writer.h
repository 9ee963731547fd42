// One media stream's tokens (visual or audio) on their way into per-layer media K/V while the
// towers still produce them: rows arrive a batch at a time, in order or (kept on the device) in
// any order, and go through the decoder's layers in whole chunks (whole blocks of 4-bit keys)
// as soon as every row from the start up to a chunk's end is there.
//
// The tokens themselves are kept for saving the video later (token files). Where they live is
// the memory plan's choice (MediaChoice::tokens_on_host):
// - on the device: one [n, D] tensor, the chunks read from it (no copies; the usual case);
// - on the host: each batch is copied down as it arrives and the device holds only a staging
//   buffer of two chunks (kStagingChunks), which is what lets an hour's 126 000 tokens
//   (0.84 GiB at full size) stay out of a 24 GB card's budget.
// Either way the K/V are the same bits: the chunks start at the same rows.
#pragma once

#include <cstdint>
#include <memory>
#include <map>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "runtime/loaded_model.h"

namespace vidi::runtime {

class MediaKvWriter {
public:
    static constexpr int64_t kStagingChunks = 2;

    // `rows` tokens in all; `label`: the progress stage ("tokens"; empty: none); `chunk`:
    // rows per pass through the layers (a multiple of kMediaKeyBlock).
    MediaKvWriter(LoadedModel& m, int64_t rows, const QuantFormat& kv, bool tokens_on_host, std::string label,
                  int64_t chunk = model::kMediaKvChunk);

    // A stream whose every row is there already: `tokens` [n, D] on the device become the
    // writer's own (no copy; the audio's, placed once its length was known); finish()
    // encodes them.
    MediaKvWriter(LoadedModel& m, Tensor tokens, const QuantFormat& kv, std::string label,
                  int64_t chunk = model::kMediaKvChunk);

    // The next rows [n, D] (on the backend), in order.
    void append(const Tensor& rows) { put(rows, ready_); }
    // Rows [at, at + n) := rows [n, D]: any stretch not given before, in any order where the
    // tokens are kept on the device (on the host they come in order).
    void put(const Tensor& rows, int64_t at);
    // A batch of frames' rows, per_frame each, frame-major: frame frames[i] := rows
    // [i·per_frame, (i+1)·per_frame). Runs of consecutive frames go in one copy.
    void put_frames(const Tensor& rows, const std::vector<int64_t>& frames, int64_t per_frame);
    // After the last rows: encodes what is left. Every row must have arrived.
    void finish();

    int64_t rows() const { return rows_; }
    int64_t written() const { return written_; }  // rows given so far, wherever they go
    Tensor& tokens() { return tokens_; }  // [rows, D]: on the device, or on the host
    std::shared_ptr<model::MediaKV> kv() const { return kv_; }

private:
    void encode(const Tensor& rows);  // the next rows of K/V, from rows [k·chunk, D]
    void append_staged(const Tensor& rows);

    LoadedModel& m_;
    const int64_t rows_, chunk_;
    const bool on_host_;
    const std::string label_;
    Tensor tokens_;
    Tensor staging_;           // on_host_: [kStagingChunks·chunk, D] on the device
    int64_t staged_ = 0;       // rows waiting in staging_ (fewer than a chunk between appends)
    int64_t written_ = 0;      // rows given
    int64_t ready_ = 0;        // rows given from row 0 on, without a gap
    std::map<int64_t, int64_t> later_;  // stretches given beyond a gap: begin -> end
    int64_t encoded_ = 0;      // rows whose K/V are written
    std::shared_ptr<model::MediaKV> kv_;
};

// Bytes the device holds for a stream's tokens while they are written (the staging buffer of
// host-kept tokens, the whole [n, D] otherwise).
size_t media_token_bytes(int64_t rows, int64_t dim, DType act_dtype, bool tokens_on_host,
                         int64_t chunk = model::kMediaKvChunk);

}  // namespace vidi::runtime
