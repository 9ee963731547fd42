#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/attention_kernels.h"

namespace vidi::cpu {

void attention_rows(const float* q, const KvRows& k, const KvRows& v, float* out, const AttentionShape& s,
                    const AttentionParams& p, int threads) {
    const int64_t rep = s.rep(), hd = s.hd, H = s.H, KVH = s.KVH;
    const bool capped = p.softcap > 0;
    const float inv_cap = capped ? 1.0f / p.softcap : 0.0f;
#pragma omp parallel num_threads(threads)
    {
        std::vector<float> scores(static_cast<size_t>(rep * std::max<int64_t>(s.Tk, 1)));
        std::vector<float> acc(static_cast<size_t>(rep * hd));
        std::vector<float> mx(static_cast<size_t>(rep));
        std::vector<double> sum(static_cast<size_t>(rep));
        std::vector<float> row(static_cast<size_t>(hd));
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t i = 0; i < s.Tq; ++i) {
            for (int64_t g = 0; g < KVH; ++g) {
                const float* qg = q + (i * H + g * rep) * hd;  // the group's rep heads are contiguous
                float* og = out + (i * H + g * rep) * hd;
                int64_t lo, hi;
                visible_keys(p, p.q_pos0 + i, s.Tk, &lo, &hi);
                if (hi < lo) {  // nothing visible: define the output as zero
                    std::fill(og, og + rep * hd, 0.0f);
                    continue;
                }
                const int64_t n = hi - lo + 1;
                std::fill(mx.begin(), mx.end(), -std::numeric_limits<float>::infinity());
                for (int64_t j = lo; j <= hi; ++j) {
                    const float* kj = k.row(j, g, row.data());
                    for (int64_t r = 0; r < rep; ++r) {
                        const float* qr = qg + r * hd;
                        float d = 0.0f;
#pragma omp simd reduction(+ : d)
                        for (int64_t e = 0; e < hd; ++e) d += qr[e] * kj[e];
                        d *= p.scale;
                        if (capped) d = p.softcap * std::tanh(d * inv_cap);
                        scores[r * n + (j - lo)] = d;
                        mx[r] = std::max(mx[r], d);
                    }
                }
                for (int64_t r = 0; r < rep; ++r) {
                    double total = 0.0;
                    float* sr = scores.data() + r * n;
                    for (int64_t c = 0; c < n; ++c) {
                        sr[c] = std::exp(sr[c] - mx[r]);
                        total += sr[c];
                    }
                    sum[r] = total;
                }
                std::fill(acc.begin(), acc.end(), 0.0f);
                for (int64_t j = lo; j <= hi; ++j) {
                    const float* vj = v.row(j, g, row.data());
                    for (int64_t r = 0; r < rep; ++r) {
                        const float w = scores[r * n + (j - lo)];
                        float* ar = acc.data() + r * hd;
#pragma omp simd
                        for (int64_t e = 0; e < hd; ++e) ar[e] += w * vj[e];
                    }
                }
                for (int64_t r = 0; r < rep; ++r) {
                    const float inv = static_cast<float>(1.0 / sum[r]);
                    for (int64_t e = 0; e < hd; ++e) og[r * hd + e] = acc[r * hd + e] * inv;
                }
            }
        }
    }
}

}  // namespace vidi::cpu
