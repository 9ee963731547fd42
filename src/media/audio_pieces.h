// A file's audio (SPEC §2.4) decoded on a thread of its own and handed out in whole 30 s
// pieces (§2.5) as each one is complete, so that the first pieces go through log-mel and the
// audio tower while the rest is still being decoded: each piece's log-mel is its own (its own
// padding and peak clamp), so a piece's features do not wait for the audio's end. The
// samples are those of load_audio_samples(), bit for bit.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "media/media.h"

namespace vidi::media {

class AudioPieces {
public:
    // Starts decoding `path`'s first audio stream now. The samples are kept in blocks of
    // `pieces_per_block` pieces, the unit pieces() hands out without copying.
    AudioPieces(std::string path, MediaInputs inputs, int64_t pieces_per_block);
    ~AudioPieces();  // stops the decoding where it is
    AudioPieces(const AudioPieces&) = delete;
    AudioPieces& operator=(const AudioPieces&) = delete;

    // Pieces whose samples are final: the whole ones so far; after the end every one, the
    // last maybe short.
    int64_t ready() const;
    // The decoding is over: every sample is there, or it failed (present() says which).
    bool finished() const;
    // Waits up to `timeout` for a piece beyond the first `have`, or for the end.
    void wait_beyond(int64_t have, std::chrono::milliseconds timeout) const;
    // After finished(): false where the file has no audio stream or no sample in it; a
    // decoding error is thrown here.
    bool present() const;
    int64_t samples() const;  // after finished(): 16 kHz mono samples in all

    // f32 samples of the ready pieces first..first+count-1, which lie in one block (no copy).
    Tensor pieces(int64_t first, int64_t count) const;
    // After finished(): all the samples, as load_audio_samples() gives them (a copy).
    AudioSamples all() const;

private:
    void decode(const std::string& path, MediaInputs inputs);
    void append(const int16_t* s, size_t n);
    void check_finished(const char* what) const;

    const int64_t block_samples_;
    mutable std::mutex mu_;
    mutable std::condition_variable cv_;
    std::deque<std::shared_ptr<float[]>> blocks_;  // each block_samples_ long; filled in order
    std::atomic<int64_t> written_{0};              // samples final so far
    std::atomic<bool> finished_{false}, stop_{false};
    bool present_ = false;      // set before finished_
    std::exception_ptr error_;  // set before finished_
    std::thread worker_;        // last: starts once the rest is set up
};

}  // namespace vidi::media
