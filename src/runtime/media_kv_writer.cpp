#include "runtime/media_kv_writer.h"

#include <algorithm>

namespace vidi::runtime {

size_t media_token_bytes(int64_t rows, int64_t dim, DType act_dtype, bool tokens_on_host, int64_t chunk) {
    const int64_t held = tokens_on_host ? std::min(rows, MediaKvWriter::kStagingChunks * chunk) : rows;
    return static_cast<size_t>(held * dim) * dtype_size(act_dtype);
}

MediaKvWriter::MediaKvWriter(LoadedModel& m, int64_t rows, const QuantFormat& kv, bool tokens_on_host,
                             std::string label, int64_t chunk)
    : m_(m), rows_(rows), chunk_(chunk), on_host_(tokens_on_host), label_(std::move(label)) {
    VIDI_CHECK(rows > 0 && chunk > 0 && chunk % kMediaKeyBlock == 0, "media K/V writer: ", rows,
               " rows in chunks of ", chunk);
    const int64_t D = m.config().llm.hidden;
    const DType act = m.backend().act_dtype();
    tokens_ = on_host_ ? Tensor::empty({rows, D}, act) : m.backend().act({rows, D});
    if (on_host_) staging_ = m.backend().act({std::min(rows, kStagingChunks * chunk), D});
    kv_ = std::make_shared<model::MediaKV>(m.decoder().new_media_kv(rows, kv));
}

MediaKvWriter::MediaKvWriter(LoadedModel& m, Tensor tokens, const QuantFormat& kv, std::string label, int64_t chunk)
    : m_(m), rows_(tokens.dim(0)), chunk_(chunk), on_host_(false), label_(std::move(label)) {
    VIDI_CHECK(rows_ > 0 && chunk > 0 && chunk % kMediaKeyBlock == 0 && tokens.device() == m.backend().device(),
               "media K/V writer: ", rows_, " rows in chunks of ", chunk, " on the backend's device");
    tokens_ = std::move(tokens);
    written_ = ready_ = rows_;
    kv_ = std::make_shared<model::MediaKV>(m.decoder().new_media_kv(rows_, kv));
}

void MediaKvWriter::encode(const Tensor& rows) {
    m_.decoder().encode_media_rows(*kv_, encoded_, rows, chunk_);
    encoded_ += rows.dim(0);
    if (!label_.empty()) m_.progress(label_, encoded_, rows_);
}

void MediaKvWriter::put(const Tensor& rows, int64_t at) {
    const int64_t n = rows.dim(0);
    VIDI_CHECK(at >= 0 && at + n <= rows_, "media K/V writer: rows ", at, "..", at + n, " of a stream of ", rows_);
    if (n == 0) return;
    // Not given before: past the gapless start, and clear of the stretches beyond it.
    const auto next = later_.lower_bound(at);
    const bool clear = at >= ready_ && (next == later_.end() || next->first >= at + n) &&
                       (next == later_.begin() || std::prev(next)->second <= at);
    VIDI_CHECK(clear, "media K/V writer: rows ", at, "..", at + n, " were given before");
    VIDI_CHECK(!on_host_ || at == ready_, "media K/V writer: rows ", at, "..", at + n,
               " out of order for tokens kept on the host (", ready_, " expected)");
    Tensor dst = tokens_.rows(at, at + n);
    m_.backend().copy_(dst, rows);  // on the host: copied down as it arrives
    written_ += n;
    later_[at] = at + n;
    for (auto s = later_.begin(); s != later_.end() && s->first == ready_; s = later_.erase(s)) ready_ = s->second;
    if (on_host_) return append_staged(rows);
    const int64_t whole = (ready_ - encoded_) / chunk_ * chunk_;
    if (whole > 0) encode(tokens_.rows(encoded_, encoded_ + whole));
}

void MediaKvWriter::put_frames(const Tensor& rows, const std::vector<int64_t>& frames, int64_t per_frame) {
    VIDI_CHECK(per_frame > 0 && rows.dim(0) == static_cast<int64_t>(frames.size()) * per_frame,
               "media K/V writer: ", rows.dim(0), " rows for ", frames.size(), " frames of ", per_frame);
    for (size_t i = 0; i < frames.size();) {
        size_t j = i + 1;
        while (j < frames.size() && frames[j] == frames[j - 1] + 1) ++j;
        put(rows.rows(static_cast<int64_t>(i) * per_frame, static_cast<int64_t>(j) * per_frame),
            frames[i] * per_frame);
        i = j;
    }
}

void MediaKvWriter::append_staged(const Tensor& rows) {
    const int64_t capacity = staging_.dim(0);
    for (int64_t from = 0; from < rows.dim(0);) {
        const int64_t take = std::min(rows.dim(0) - from, capacity - staged_);
        Tensor dst = staging_.rows(staged_, staged_ + take);
        m_.backend().copy_(dst, rows.rows(from, from + take));
        staged_ += take;
        from += take;
        const int64_t whole = staged_ / chunk_ * chunk_;
        if (whole == 0) continue;
        encode(staging_.rows(0, whole));
        // The rest (less than a chunk) moves to the front; it cannot overlap its old place.
        if (staged_ > whole) {
            Tensor front = staging_.rows(0, staged_ - whole);
            m_.backend().copy_(front, staging_.rows(whole, staged_));
        }
        staged_ -= whole;
    }
}

void MediaKvWriter::finish() {
    VIDI_CHECK(written_ == rows_, "media K/V writer: ", written_, " of ", rows_, " rows arrived");
    if (encoded_ == rows_) return;
    encode(on_host_ ? staging_.rows(0, staged_) : tokens_.rows(encoded_, rows_));
    staged_ = 0;
    staging_ = Tensor();
}

}  // namespace vidi::runtime
