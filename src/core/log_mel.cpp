// Whisper's log-mel spectrogram (SPEC §2.5), computed in double as the Hugging Face
// feature extractor's numpy path does, rounded to f32 at the end.
#include <algorithm>
#include <cmath>
#include <complex>
#include <memory>
#include <numbers>

#include "core/fft.h"
#include "core/log_mel.h"
#include "vidi/error.h"

namespace vidi {
namespace {

constexpr int kBins = kNfft / 2 + 1;  // 201
constexpr double kMaxHz = 8000.0;
static_assert(kMelFrames % 2 == 0, "frames are transformed in pairs");

// Slaney mel scale: linear below 1 kHz, logarithmic above.
double hz_to_mel(double f) {
    const double logstep = 27.0 / std::log(6.4);
    return f >= 1000.0 ? 15.0 + std::log(f / 1000.0) * logstep : 3.0 * f / 200.0;
}
double mel_to_hz(double m) {
    const double logstep = std::log(6.4) / 27.0;
    return m >= 15.0 ? 1000.0 * std::exp(logstep * (m - 15.0)) : 200.0 * m / 3.0;
}

// Non-zero range of each filter row, so the product skips the zeros.
struct SparseFilters {
    std::vector<double> weights;  // [n_mels][kBins]
    std::vector<int> begin, end;
};

SparseFilters sparse_filters(int n_mels) {
    SparseFilters f;
    f.weights = mel_filter_bank(n_mels);
    filter_ranges(f.weights, n_mels, f.begin, f.end);
    return f;
}

}  // namespace

void filter_ranges(const std::vector<double>& filters, int n_mels, std::vector<int>& begin, std::vector<int>& end) {
    begin.clear();
    end.clear();
    for (int m = 0; m < n_mels; ++m) {
        const double* row = &filters[static_cast<size_t>(m) * kBins];
        int b = 0, e = kBins;
        while (b < kBins && row[b] == 0.0) ++b;
        while (e > b && row[e - 1] == 0.0) --e;
        begin.push_back(b);
        end.push_back(e);
    }
}

std::vector<double> hann_window() {
    std::vector<double> window(kNfft);  // periodic
    for (int i = 0; i < kNfft; ++i) window[i] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / kNfft);
    return window;
}

std::vector<double> mel_filter_bank(int n_mels) {
    VIDI_CHECK(n_mels > 0 && n_mels <= 512, "mel filter bank: bad n_mels ", n_mels);
    // Filter edges equally spaced in mel (numpy linspace), converted back to Hz.
    const int edges = n_mels + 2;
    const double mel_max = hz_to_mel(kMaxHz), mel_min = hz_to_mel(0.0);
    std::vector<double> edge_hz(edges);
    const double step = (mel_max - mel_min) / (edges - 1);
    for (int i = 0; i < edges; ++i) edge_hz[i] = mel_to_hz(i == edges - 1 ? mel_max : mel_min + i * step);
    std::vector<double> fb(static_cast<size_t>(n_mels) * kBins, 0.0);
    for (int k = 0; k < kBins; ++k) {
        const double hz = kMaxHz * k / (kBins - 1);
        for (int m = 0; m < n_mels; ++m) {
            const double down = -(edge_hz[m] - hz) / (edge_hz[m + 1] - edge_hz[m]);
            const double up = (edge_hz[m + 2] - hz) / (edge_hz[m + 2] - edge_hz[m + 1]);
            const double tri = std::max(0.0, std::min(down, up));
            fb[static_cast<size_t>(m) * kBins + k] = tri * 2.0 / (edge_hz[m + 2] - edge_hz[m]);  // area norm
        }
    }
    return fb;
}

Tensor log_mel_piece(const float* samples, size_t n, int n_mels) {
    VIDI_CHECK(n <= static_cast<size_t>(kPieceSamples), "log_mel_piece: ", n, " samples (at most ",
               kPieceSamples, ")");
    static const Fft fft(kNfft);
    const SparseFilters filters = sparse_filters(n_mels);

    // Zero-pad to 30 s, then reflect-pad n_fft/2 on each side (centred frames).
    constexpr int pad = kNfft / 2;
    std::vector<double> x(kPieceSamples + 2 * pad, 0.0);
    for (size_t i = 0; i < n; ++i) x[pad + i] = samples[i];
    for (int j = 1; j <= pad; ++j) {
        x[pad - j] = x[pad + j];
        x[pad + kPieceSamples - 1 + j] = x[pad + kPieceSamples - 1 - j];
    }
    static const std::vector<double> window = hann_window();

    // log10 mel energies, [n_mels][3000] (the STFT's last frame, 3001st, is dropped).
    std::vector<double> logmel(static_cast<size_t>(n_mels) * kMelFrames);
    std::vector<std::complex<double>> in(kNfft), out(kNfft);
    std::vector<double> power(kBins);
    double peak = -INFINITY;
    auto add_frame = [&](int t) {
        for (int m = 0; m < n_mels; ++m) {
            const double* w = &filters.weights[static_cast<size_t>(m) * kBins];
            double e = 0.0;
            for (int k = filters.begin[m]; k < filters.end[m]; ++k) e += w[k] * power[k];
            const double l = std::log10(std::max(e, 1e-10));
            logmel[static_cast<size_t>(m) * kMelFrames + t] = l;
            peak = std::max(peak, l);
        }
    };
    // Two real frames per complex FFT: frame a in the real part, b in the imaginary part;
    // A[k] = (Z[k] + conj Z[-k]) / 2, B[k] = (Z[k] - conj Z[-k]) / 2i.
    for (int t = 0; t < kMelFrames; t += 2) {
        const double* fa = &x[static_cast<size_t>(t) * kHop];
        const double* fb = fa + kHop;  // kMelFrames is even, so frame t + 1 always exists
        for (int i = 0; i < kNfft; ++i) in[i] = {fa[i] * window[i], fb[i] * window[i]};
        fft.forward(in.data(), out.data());
        for (int k = 0; k < kBins; ++k) {
            const std::complex<double> z = out[k], zc = std::conj(out[(kNfft - k) % kNfft]);
            power[k] = std::norm(z + zc) * 0.25;
        }
        add_frame(t);
        for (int k = 0; k < kBins; ++k) {
            const std::complex<double> z = out[k], zc = std::conj(out[(kNfft - k) % kNfft]);
            power[k] = std::norm(z - zc) * 0.25;
        }
        add_frame(t + 1);
    }
    Tensor mel = Tensor::empty({n_mels, kMelFrames}, DType::f32);
    float* dst = mel.data<float>();
    const double floor = peak - 8.0;
    for (size_t i = 0; i < logmel.size(); ++i) dst[i] = static_cast<float>((std::max(logmel[i], floor) + 4.0) / 4.0);
    return mel;
}

Tensor log_mel_pieces(const float* samples, int64_t n, int n_mels) {
    const int64_t pieces = mel_pieces(n);
    const size_t piece_values = static_cast<size_t>(n_mels) * kMelFrames;
    Tensor mel = Tensor::empty({pieces, n_mels, kMelFrames}, DType::f32);
    float* out = mel.data<float>();
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t p = 0; p < pieces; ++p) {
        const int64_t first = p * kPieceSamples, count = std::min<int64_t>(kPieceSamples, n - first);
        const Tensor m = log_mel_piece(samples + first, static_cast<size_t>(count), n_mels);
        std::copy_n(m.data<float>(), piece_values, out + static_cast<size_t>(p) * piece_values);
    }
    return mel;
}

}  // namespace vidi
