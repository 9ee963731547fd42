#include "media/audio_pieces.h"

#include <algorithm>
#include <cstring>

#include "core/log_mel.h"

namespace vidi::media {
namespace {

struct Stopped {};  // thrown out of the sink to end a decoding nobody waits for

}  // namespace

AudioPieces::AudioPieces(std::string path, MediaInputs inputs, int64_t pieces_per_block)
    : block_samples_(std::max<int64_t>(1, pieces_per_block) * kPieceSamples) {
    worker_ = std::thread([this, path = std::move(path), inputs] { decode(path, inputs); });
}

AudioPieces::~AudioPieces() {
    stop_ = true;
    if (worker_.joinable()) worker_.join();
}

void AudioPieces::decode(const std::string& path, MediaInputs inputs) {
    bool present = false;
    std::exception_ptr error;
    try {
        present = decode_audio_mono16k(path, [this](const int16_t* s, size_t n) { append(s, n); }, inputs) &&
                  written_.load() > 0;
    } catch (const Stopped&) {
    } catch (...) {
        error = std::current_exception();
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        present_ = present;
        error_ = error;
        finished_ = true;
    }
    cv_.notify_all();
}

void AudioPieces::append(const int16_t* s, size_t n) {
    if (stop_) throw Stopped{};
    const int64_t before = written_.load();
    for (size_t i = 0; i < n;) {
        const int64_t at = before + static_cast<int64_t>(i);
        const int64_t block = at / block_samples_, offset = at % block_samples_;
        float* dst;
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (block == static_cast<int64_t>(blocks_.size()))
                blocks_.push_back(std::shared_ptr<float[]>(new float[static_cast<size_t>(block_samples_)]));
            dst = blocks_[static_cast<size_t>(block)].get() + offset;
        }
        const size_t take = std::min(n - i, static_cast<size_t>(block_samples_ - offset));
        for (size_t j = 0; j < take; ++j) dst[j] = sample_value(s[i + j]);
        i += take;
    }
    written_ = before + static_cast<int64_t>(n);  // published after the samples themselves
    if (before / kPieceSamples != written_.load() / kPieceSamples) {
        std::lock_guard<std::mutex> lock(mu_);  // (a waiter checks under the lock)
        cv_.notify_all();
    }
}

int64_t AudioPieces::ready() const {
    const bool done = finished_.load();
    const int64_t n = written_.load();
    return done ? mel_pieces(n) : n / kPieceSamples;
}

bool AudioPieces::finished() const { return finished_.load(); }

void AudioPieces::wait_beyond(int64_t have, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return finished_.load() || written_.load() / kPieceSamples > have; });
}

void AudioPieces::check_finished(const char* what) const {
    VIDI_CHECK(finished_.load(), "AudioPieces::", what, " before the decoding finished");
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) std::rethrow_exception(error_);
}

bool AudioPieces::present() const {
    check_finished("present");
    return present_;
}

int64_t AudioPieces::samples() const {
    check_finished("samples");
    return written_.load();
}

Tensor AudioPieces::pieces(int64_t first, int64_t count) const {
    const int64_t n = written_.load(), s0 = first * kPieceSamples;
    const int64_t s1 = std::min(n, (first + count) * kPieceSamples);
    VIDI_CHECK(first >= 0 && count > 0 && first + count <= ready() && s0 / block_samples_ == (s1 - 1) / block_samples_,
               "AudioPieces: pieces ", first, "..", first + count - 1, " are not ready pieces of one block");
    std::shared_ptr<float[]> block;
    {
        std::lock_guard<std::mutex> lock(mu_);
        block = blocks_[static_cast<size_t>(s0 / block_samples_)];
    }
    float* data = block.get() + s0 % block_samples_;
    return Tensor::wrap(data, {s1 - s0}, DType::f32, Device::cpu, std::shared_ptr<void>(block, data));
}

AudioSamples AudioPieces::all() const {
    AudioSamples a;
    if (!present()) return a;
    const int64_t n = written_.load();
    a.present = true;
    a.mel_frames = n / kHop;
    a.pcm = Tensor::empty({n}, DType::f32);
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t at = 0; at < n; at += block_samples_)
        std::memcpy(a.pcm.data<float>() + at, blocks_[static_cast<size_t>(at / block_samples_)].get(),
                    static_cast<size_t>(std::min(block_samples_, n - at)) * sizeof(float));
    return a;
}

}  // namespace vidi::media
