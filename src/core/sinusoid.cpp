#include "core/sinusoid.h"

#include <cmath>

namespace vidi {

std::vector<double> sinusoid_frequencies(int64_t dim) {
    VIDI_CHECK(dim > 0 && dim % 2 == 0, "positional encoding: dimension ", dim, " must be even");
    std::vector<double> freq(static_cast<size_t>(dim / 2));
    for (size_t i = 0; i < freq.size(); ++i)
        freq[i] = std::exp(-static_cast<double>(2 * i) * std::log(10000.0) / static_cast<double>(dim));
    return freq;
}

Tensor sinusoid_table(const std::vector<double>& positions, int64_t dim) {
    const std::vector<double> freq = sinusoid_frequencies(dim);
    const int64_t n = static_cast<int64_t>(positions.size()), half = dim / 2;
    Tensor t = Tensor::empty({n, dim}, DType::f32);
    float* p = t.data<float>();
    // An hour of audio is 36000 rows of sin/cos in double: rows in parallel.
#pragma omp parallel for schedule(static) if (n > 64)
    for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < half; ++i) {
            const double a = positions[static_cast<size_t>(r)] * freq[static_cast<size_t>(i)];
            p[r * dim + 2 * i] = static_cast<float>(std::sin(a));
            p[r * dim + 2 * i + 1] = static_cast<float>(std::cos(a));
        }
    return t;
}

}  // namespace vidi
