// A second, naive implementation of Vidi's media glue (SPEC.md §3.2-§3.7, §4) in double,
// written straight from the SPEC with plain loops over checkpoint tensors. The tests feed
// it the tower outputs and compare MediaEncoder's f32 results against it.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "backend/reference.h"
#include "io/safetensors.h"

namespace vidi::test::ref {

using Vec = std::vector<double>;

inline Vec tensor_values(const Tensor& t) {
    std::vector<float> f = t.to_f32_vector();
    return Vec(f.begin(), f.end());
}

class Glue {
public:
    Glue(const io::TensorStore& store, int64_t dim) : store_(store), D_(dim) {}

    Vec w(const std::string& name) const { return tensor_values(store_.get("model." + name)); }

    // x[rows, K] · W[N, K]ᵀ + b.
    Vec linear(const Vec& x, int64_t K, const std::string& wname, const std::string& bname = "") const {
        return linear_ref(x, w(wname), bname.empty() ? Vec() : w(bname), K);
    }
    static void gelu(Vec& x) {
        for (double& v : x) v = gelu_erf_ref(v);
    }
    // weight ⊙ x / sqrt(mean(x²) + 1e-5) per row of D (no weight when wname is empty).
    Vec rmsnorm(const Vec& x, const std::string& wname = "") const {
        return wname.empty() ? rms_norm_ref(x, {}, D_, 1e-5, NormWeight::none)
                             : rms_norm_ref(x, w(wname), D_, 1e-5, NormWeight::plain);
    }
    // rmsnorm(pos(N, l)) rows j ∈ idx of module mm_rand_pos_{h,w,t}.
    Vec pos(const std::string& module, int64_t N, int64_t l, const std::vector<int64_t>& idx) const {
        Vec pe(idx.size() * D_);
        for (size_t r = 0; r < idx.size(); ++r) {
            const double q = static_cast<double>(idx[r]) / (l - 1) * (N - 1);
            for (int64_t i = 0; i < D_ / 2; ++i) {
                const double f = std::exp(-2.0 * i * std::log(10000.0) / D_);
                pe[r * D_ + 2 * i] = std::sin(q * f);
                pe[r * D_ + 2 * i + 1] = std::cos(q * f);
            }
        }
        Vec h = linear(pe, D_, module + ".mlp.0.weight", module + ".mlp.0.bias");
        gelu(h);
        return rmsnorm(linear(h, D_, module + ".mlp.2.weight", module + ".mlp.2.bias"));
    }
    Vec project(const Vec& x, int64_t K, const std::string& module) const {
        Vec h = linear(x, K, module + ".model.0.weight", module + ".model.0.bias");
        gelu(h);
        return linear(h, D_, module + ".model.2.weight", module + ".model.2.bias");
    }

    // SPEC §3.2-§3.7 for frames at `positions` of an F-frame video, from the tower output
    // hidden[n, G·G, C]; the grid is padded to `padded` and resized to `side` when smaller.
    Vec image_tokens(const Vec& hidden, int64_t n, int64_t G, int64_t C, int64_t padded, int64_t side,
                     const std::vector<int64_t>& positions, int64_t F) const {
        const int64_t p = 2, h = side / p;
        Vec tokens;
        for (int64_t f = 0; f < n; ++f) {
            auto cell = [&](int64_t y, int64_t x, int64_t c) {  // zero-padded 28×28 grid
                return (y < G && x < G) ? hidden[((f * G + y) * G + x) * C + c] : 0.0;
            };
            // Bilinear, align_corners=False (identity when side == padded).
            Vec grid(static_cast<size_t>(side * side * C));
            for (int64_t oy = 0; oy < side; ++oy)
                for (int64_t ox = 0; ox < side; ++ox) {
                    const double sy = std::max(0.0, (oy + 0.5) * padded / side - 0.5);
                    const double sx = std::max(0.0, (ox + 0.5) * padded / side - 0.5);
                    const int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
                    const int64_t y1 = std::min(y0 + 1, padded - 1), x1 = std::min(x0 + 1, padded - 1);
                    const double ly = sy - y0, lx = sx - x0;
                    for (int64_t c = 0; c < C; ++c)
                        grid[(oy * side + ox) * C + c] = (1 - ly) * ((1 - lx) * cell(y0, x0, c) + lx * cell(y0, x1, c)) +
                                                         ly * ((1 - lx) * cell(y1, x0, c) + lx * cell(y1, x1, c));
                }
            // Space-to-depth, channel-major.
            Vec s2d(static_cast<size_t>(h * h * C * 4));
            for (int64_t y = 0; y < h; ++y)
                for (int64_t x = 0; x < h; ++x)
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t dy = 0; dy < 2; ++dy)
                            for (int64_t dx = 0; dx < 2; ++dx)
                                s2d[(y * h + x) * C * 4 + c * 4 + dy * 2 + dx] =
                                    grid[((2 * y + dy) * side + 2 * x + dx) * C + c];
            Vec t = rmsnorm(project(s2d, C * 4, "mm_rand_img_projector"), "mm_rand_img_norm.weight");
            std::vector<int64_t> cells(static_cast<size_t>(h));
            for (int64_t i = 0; i < h; ++i) cells[i] = i;
            const Vec ph = pos("mm_rand_pos_h", p, h, cells), pw = pos("mm_rand_pos_w", p, h, cells);
            const Vec pt = pos("mm_rand_pos_t", 10000, F, {positions[f]});
            for (int64_t y = 0; y < h; ++y)
                for (int64_t x = 0; x < h; ++x)
                    for (int64_t d = 0; d < D_; ++d) t[(y * h + x) * D_ + d] += ph[y * D_ + d] + pw[x * D_ + d] + pt[d];
            t = rmsnorm(t, "mm_rand_llm_norm.weight");
            tokens.insert(tokens.end(), t.begin(), t.end());
        }
        return tokens;
    }

    // SPEC §4 from the concatenated encoder states[*, A] and mel_frames.
    Vec audio_tokens(const Vec& states, int64_t A, int64_t mel_frames, int64_t k) const {
        const int64_t n = mel_frames * 1500 / 3000, T = n / k;
        const Vec W = w("mm_rand_aud_pool.weight");  // [D, A, k]
        Vec pooled(static_cast<size_t>(T * D_));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t o = 0; o < D_; ++o) {
                double s = 0;
                for (int64_t a = 0; a < A; ++a)
                    for (int64_t j = 0; j < k; ++j) s += W[(o * A + a) * k + j] * states[(t * k + j) * A + a];
                pooled[t * D_ + o] = s;
            }
        Vec x = rmsnorm(project(pooled, D_, "mm_rand_aud_projector"), "mm_rand_aud_norm.weight");
        std::vector<int64_t> steps(static_cast<size_t>(T));
        for (int64_t i = 0; i < T; ++i) steps[i] = i;
        const Vec pt = pos("mm_rand_pos_t", 10000, T, steps);
        for (size_t i = 0; i < x.size(); ++i) x[i] += pt[i];
        return rmsnorm(x, "mm_rand_llm_norm.weight");
    }

private:
    const io::TensorStore& store_;
    int64_t D_;
};

using vidi::test::rel_err;  // tests/backend/reference.h

}  // namespace vidi::test::ref
