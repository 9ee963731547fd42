// A small double-precision mixed-radix FFT for the Whisper STFT (n_fft = 400 = 4·4·5·5).
// Our own code rather than FFTW: the mel needs double precision (values near the
// max − 8 clamp are 1e-8 of the peak power, where single precision loses digits), the
// project links only the single-precision FFTW, and 400 points are cheap either way.
// Used by core/log_mel; checked against a direct DFT in the tests.
#pragma once

#include <complex>
#include <vector>

namespace vidi {

class Fft {
public:
    // n must factor into 2, 3, 4 and 5.
    explicit Fft(int n);
    int size() const { return n_; }
    // out[k] = Σ_j in[j]·exp(-2πi·jk/n); `out` must not alias `in`.
    void forward(const std::complex<double>* in, std::complex<double>* out) const;

private:
    void recurse(const std::complex<double>* in, std::complex<double>* out, int n, int stride,
                 size_t level) const;
    int n_;
    std::vector<int> radices_;
    std::vector<std::complex<double>> roots_;  // exp(-2πi·j/n), j = 0..n-1
};

}  // namespace vidi
