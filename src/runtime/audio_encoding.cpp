#include "runtime/audio_encoding.h"

#include <algorithm>

#include "core/log_mel.h"
#include "runtime/media_kv_writer.h"
#include "runtime/seconds_since.h"
#include "runtime/video_encoding.h"

namespace vidi::runtime {
AudioEncoding::AudioEncoding(LoadedModel& m, const std::string& path, int64_t expected_tokens, const QuantFormat& kv,
                             bool tokens_on_host, MediaCapture* capture, std::chrono::steady_clock::time_point t0)
    : m_(m),
      path_(path),
      kv_format_(kv),
      on_host_(tokens_on_host),
      capture_(capture),
      t0_(t0),
      per_batch_(m.media().audio_pieces_per_batch()),
      expected_tokens_(std::max<int64_t>(1, expected_tokens)),
      pieces_(path, m.options().media_inputs, per_batch_) {}

void AudioEncoding::advance() {
    const model::MediaTokenizer& media = m_.media();
    while (!done_) {
        const bool ended = pieces_.finished();  // first: then ready() below counts the last piece
        const int64_t ready = pieces_.ready();
        if (first_piece_s_ < 0 && ready > 0) first_piece_s_ = seconds_since(t0_);
        if (!ended) {
            if (ready - next_piece_ < per_batch_) return;
            encode_batch(per_batch_, media.audio_token_count(per_batch_ * kMelFrames));
            continue;
        }
        if (total_ < 0) {
            samples_s_ = seconds_since(t0_);
            if (!pieces_.present()) {  // (a decoding error is thrown here)
                done_ = true;
                return;
            }
            const int64_t mel_frames = pieces_.samples() / kHop;
            total_ = media.audio_token_count(mel_frames);
            VIDI_CHECK(total_ >= 2, path_, ": its audio lasts ", static_cast<double>(pieces_.samples()) / kSampleRate,
                       " s (", mel_frames, " mel frames), which gives fewer than two audio tokens, the fewest the model "
                       "takes (the official code fails on it too)");
            if (capture_) {  // the f32 features of the host's log-mel, before any dtype rounding
                const media::AudioSamples all = pieces_.all();
                capture_->mel = log_mel_pieces(all.pcm.data<float>(), all.pcm.numel(), m_.config().audio.mel_bins);
                capture_->mel_frames = all.mel_frames;
            }
        }
        if (held_rows_ < total_) {  // the last batch: its pieces' tokens up to the total
            VIDI_CHECK(next_piece_ < ready, "audio: ", held_rows_, " of ", total_, " tokens from all ", ready,
                       " pieces");
            const int64_t n = std::min(per_batch_, ready - next_piece_);
            encode_batch(n, std::min(total_ - held_rows_, media.audio_token_count(n * kMelFrames)));
            continue;
        }
        place_and_encode();
        done_ = true;
    }
}

void AudioEncoding::finish() {
    while (!done_) {
        advance();
        if (!done_) wait(std::chrono::milliseconds(100));
    }
}

void AudioEncoding::encode_batch(int64_t n, int64_t tokens) {
    if (tower_from_s_ < 0) tower_from_s_ = seconds_since(t0_);
    Backend& be = m_.backend();
    Tensor mel;
    {
        const Section s = be.section("log-mel");
        mel = be.log_mel(pieces_.pieces(next_piece_, n), m_.config().audio.mel_bins);
    }
    batch_starts_.push_back(held_rows_);
    hold(m_.media().unplaced_audio_tokens(mel, tokens));
    next_piece_ += n;
    // Pieces in all: what the container's duration said, until the audio's end says.
    const int64_t per_piece = std::max<int64_t>(1, m_.media().audio_token_count(kMelFrames));
    const int64_t pieces = pieces_.finished() ? pieces_.ready()
                                              : std::max(next_piece_, (expected_tokens_ + per_piece - 1) / per_piece);
    m_.progress("log-mel", next_piece_, pieces);
    m_.progress("audio", next_piece_, pieces);
}

void AudioEncoding::hold(const Tensor& rows) {
    Backend& be = m_.backend();
    const int64_t n = rows.dim(0), D = rows.dim(1);
    if (!held_.defined() || held_rows_ + n > held_.dim(0)) {  // the first rows, or more than expected
        const int64_t capacity = std::max(held_rows_ + n, held_.defined() ? held_.dim(0) * 5 / 4 : expected_tokens_);
        Tensor bigger = on_host_ ? Tensor::empty({capacity, D}, be.act_dtype()) : be.act({capacity, D});
        if (held_rows_ > 0) {
            Tensor dst = bigger.rows(0, held_rows_);
            be.copy_(dst, held_.rows(0, held_rows_));
        }
        held_ = bigger;
    }
    Tensor dst = held_.rows(held_rows_, held_rows_ + n);
    be.copy_(dst, rows);  // on the host: copied down as it arrives
    held_rows_ += n;
}

void AudioEncoding::place_and_encode() {
    Backend& be = m_.backend();
    const model::MediaTokenizer& media = m_.media();
    batch_starts_.push_back(total_);
    if (on_host_) {  // placed batch by batch into a writer of host-kept tokens
        MediaKvWriter w(m_, total_, kv_format_, true, "");
        for (size_t i = 0; i + 1 < batch_starts_.size(); ++i) {
            const int64_t a = batch_starts_[i], b = batch_starts_[i + 1];
            w.append(media.place_audio_tokens(be.upload(held_.rows(a, b)), a, total_));
        }
        w.finish();
        tokens_ = w.tokens();
        kv_ = w.kv();
    } else {  // placed where they are, which become the tokens
        Tensor all = held_.rows(0, total_);
        if (held_.dim(0) > total_ + total_ / 8) {  // an audio much shorter than expected: no idle rows kept
            all = be.act({total_, held_.dim(1)});
            be.copy_(all, held_.rows(0, total_));
        }
        for (size_t i = 0; i + 1 < batch_starts_.size(); ++i) {
            const int64_t a = batch_starts_[i], b = batch_starts_[i + 1];
            Tensor rows = all.rows(a, b);
            be.copy_(rows, media.place_audio_tokens(rows, a, total_));
        }
        MediaKvWriter w(m_, all, kv_format_, "");
        w.finish();
        tokens_ = w.tokens();
        kv_ = w.kv();
    }
    held_ = Tensor();
}

}  // namespace vidi::runtime
