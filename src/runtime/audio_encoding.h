// A video's audio on its way to media K/V beside the frames (media_tokens): the samples are
// decoded on a thread of their own (media::AudioPieces), and each batch of whole 30 s pieces
// goes through log-mel, the audio tower and the glue as soon as it is decoded, in the frames'
// waits, above all the first one, which is otherwise the GPU's idle time (H200, 10-minute
// video: the tower from 0.11 s, where the whole audio's samples were there at 0.30-0.35 s).
//
// The positions (pos_t spreads over every token) and the media K/V wait for the audio's end,
// when its length is known; until then the batches' unplaced rows are held where the memory
// plan keeps the audio's tokens (on the device, or on the host with MediaChoice::
// tokens_on_host), and on the device that buffer becomes the tokens themselves. Tokens and
// K/V are the bits of the whole audio's log-mel through MediaTokenizer::audio_tokens.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "media/audio_pieces.h"
#include "runtime/loaded_model.h"

namespace vidi::runtime {

struct MediaCapture;

class AudioEncoding {
public:
    // Starts decoding the audio. expected_tokens: the audio tokens the plan expects (the
    // held rows' first size; a longer audio grows them); kv: the media K/V format;
    // tokens_on_host: the plan keeps the tokens on the host; capture: the log-mel wanted too
    // (or null); t0: where the profile's timeline starts.
    AudioEncoding(LoadedModel& m, const std::string& path, int64_t expected_tokens, const QuantFormat& kv,
                  bool tokens_on_host, MediaCapture* capture, std::chrono::steady_clock::time_point t0);

    // Queues what can go now, without waiting: every whole batch of pieces decoded so far and,
    // once the audio has ended, the rest, the positions and the media K/V. Throws a decoding
    // error once the decoding has ended with it.
    void advance();
    // Everything is queued (or the file has no audio).
    bool done() const { return done_; }
    // Waits up to `timeout` for more pieces to go, or for the audio's end.
    void wait(std::chrono::milliseconds timeout) const { pieces_.wait_beyond(next_piece_ + per_batch_ - 1, timeout); }
    // Waits for the decoding and queues the rest.
    void finish();

    // After done(): the tokens [n, D] and their K/V; undefined / null without audio.
    const Tensor& tokens() const { return tokens_; }
    std::shared_ptr<model::MediaKV> kv() const { return kv_; }
    // The profile's timeline, in seconds from the start (-1: not yet): the first piece decoded,
    // every sample decoded, the first piece's work queued.
    double first_piece_s() const { return first_piece_s_; }
    double samples_s() const { return samples_s_; }
    double tower_from_s() const { return tower_from_s_; }

private:
    void encode_batch(int64_t n, int64_t tokens);  // the next n pieces' first `tokens` tokens
    void hold(const Tensor& rows);                 // appends unplaced rows to held_
    void place_and_encode();                       // positions, then the media K/V

    LoadedModel& m_;
    const std::string path_;
    const QuantFormat kv_format_;
    const bool on_host_;
    MediaCapture* capture_;
    const std::chrono::steady_clock::time_point t0_;
    const int64_t per_batch_, expected_tokens_;
    media::AudioPieces pieces_;
    int64_t next_piece_ = 0;  // pieces through the tower
    int64_t total_ = -1;      // tokens in all, once the audio has ended
    Tensor held_;             // [capacity, D]: the unplaced rows so far, then the placed ones
    int64_t held_rows_ = 0;
    std::vector<int64_t> batch_starts_;  // the first row of each batch (placed batch by batch)
    bool done_ = false;
    Tensor tokens_;
    std::shared_ptr<model::MediaKV> kv_;
    double first_piece_s_ = -1, samples_s_ = -1, tower_from_s_ = -1;
};

}  // namespace vidi::runtime
