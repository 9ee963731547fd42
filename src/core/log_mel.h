// Whisper's log-mel spectrogram (SPEC §2.5) on 16 kHz mono samples, in double precision as
// the Hugging Face feature extractor's numpy path: the front end's audio math, shared by the
// media layer, the backends' log_mel and the tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vidi/tensor.h"

namespace vidi {

constexpr int kSampleRate = 16000;
constexpr int kPieceSamples = 30 * kSampleRate;  // 480000
constexpr int kHop = 160;
constexpr int kNfft = 400;
constexpr int kMelFrames = kPieceSamples / kHop;  // 3000 per piece

// One 30 s piece (n <= 480000 samples, zero-padded) -> f32 [n_mels, 3000].
Tensor log_mel_piece(const float* samples, size_t n, int n_mels);
// Slaney-scale, area-normalised triangular filters, [n_mels][n_fft/2 + 1] row-major.
std::vector<double> mel_filter_bank(int n_mels);
// Each filter row's non-zero bins [begin[m], end[m]) (the sums skip the zeros).
void filter_ranges(const std::vector<double>& filters, int n_mels, std::vector<int>& begin, std::vector<int>& end);
// The periodic Hann window of n_fft points.
std::vector<double> hann_window();
// 30 s pieces in n samples (the last one partial).
inline int64_t mel_pieces(int64_t n) { return (n + kPieceSamples - 1) / kPieceSamples; }
// Every 30 s piece of n samples (the last zero-padded) -> f32 [mel_pieces(n), n_mels, 3000]
// (pieces in parallel).
Tensor log_mel_pieces(const float* samples, int64_t n, int n_mels);

}  // namespace vidi
