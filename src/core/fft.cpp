#include "core/fft.h"

#include <cmath>
#include <numbers>

#include "vidi/error.h"

namespace vidi {
namespace {

// Plain complex product: std::complex's operator* also handles inf/NaN (a slow libcall).
inline std::complex<double> mul(std::complex<double> a, std::complex<double> b) {
    return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

}  // namespace

Fft::Fft(int n) : n_(n) {
    VIDI_CHECK(n > 0, "Fft: size ", n);
    int rest = n;
    for (int p : {4, 2, 3, 5})
        while (rest % p == 0) {
            radices_.push_back(p);
            rest /= p;
        }
    VIDI_CHECK(rest == 1, "Fft: size ", n, " has a prime factor above 5");
    roots_.resize(n);
    for (int j = 0; j < n; ++j) {
        const double a = -2.0 * std::numbers::pi * j / n;
        roots_[j] = {std::cos(a), std::sin(a)};
    }
}

// Decimation in time: split into p interleaved sub-sequences, transform each, combine
// with the twiddles exp(-2πi·q·k/n) and a direct p-point DFT.
void Fft::recurse(const std::complex<double>* in, std::complex<double>* out, int n, int stride,
                  size_t level) const {
    if (n == 1) {
        out[0] = in[0];
        return;
    }
    const int p = radices_[level];
    const int m = n / p;
    for (int q = 0; q < p; ++q) recurse(in + q * stride, out + q * m, m, stride * p, level + 1);
    const int root_step = n_ / n;  // roots_[j·root_step] = exp(-2πi·j/n)
    std::complex<double> t[5];
    for (int k = 0; k < m; ++k) {
        for (int q = 0; q < p; ++q) t[q] = mul(out[q * m + k], roots_[(q * k % n) * root_step]);
        for (int s = 0; s < p; ++s) {
            std::complex<double> acc = 0;
            for (int q = 0; q < p; ++q) acc += mul(t[q], roots_[((q * s) % p) * (n_ / p)]);
            out[s * m + k] = acc;
        }
    }
}

void Fft::forward(const std::complex<double>* in, std::complex<double>* out) const {
    recurse(in, out, n_, 1, 0);
}

}  // namespace vidi
