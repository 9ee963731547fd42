#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/attention_kernels.h"

namespace vidi::cpu {
namespace {

constexpr int64_t kQueryBlock = 256;  // at most this many queries per task (times the group's heads = rows)
constexpr int64_t kKeyChunk = 2048;   // keys per sgemm

// Rows [j0, j0+n) of KV group g as an f32 matrix: in place for f32 (leading dimension
// KVH·hd), converted into `scratch` otherwise (leading dimension hd).
const float* key_rows(const KvRows& src, int64_t j0, int64_t n, int64_t g, const AttentionShape& s,
                      std::vector<float>& scratch, int64_t* ld) {
    if (const float* base = src.f32()) {
        *ld = s.KVH * s.hd;
        return base + (j0 * s.KVH + g) * s.hd;
    }
    scratch.resize(static_cast<size_t>(n * s.hd));
    for (int64_t j = 0; j < n; ++j) src.row(j0 + j, g, scratch.data() + j * s.hd);
    *ld = s.hd;
    return scratch.data();
}

}  // namespace

void attention_blocked(const float* q, const KvRows& k, const KvRows& v, float* out, const AttentionShape& s,
                       const AttentionParams& p, int threads) {
    const int64_t rep = s.rep(), hd = s.hd, H = s.H;
    const bool capped = p.softcap > 0;
    const float inv_cap = capped ? 1.0f / p.softcap : 0.0f;
    const float neg_inf = -std::numeric_limits<float>::infinity();
    // Tasks are (KV group, query block); enough of them to keep every thread busy.
    const int64_t blocks_wanted = std::max<int64_t>(1, (2 * threads + s.KVH - 1) / s.KVH);
    const int64_t qblock = std::clamp<int64_t>((s.Tq + blocks_wanted - 1) / blocks_wanted, 8, kQueryBlock);
    const int64_t nblocks = (s.Tq + qblock - 1) / qblock;
    const int64_t max_rows = std::min(qblock, s.Tq) * rep;
#pragma omp parallel num_threads(threads)
    {
        std::vector<float> qb(static_cast<size_t>(max_rows * hd)), ob(static_cast<size_t>(max_rows * hd));
        std::vector<float> sc(static_cast<size_t>(max_rows * kKeyChunk)), m(static_cast<size_t>(max_rows));
        std::vector<double> l(static_cast<size_t>(max_rows));
        std::vector<float> kscratch, vscratch;
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int64_t g = 0; g < s.KVH; ++g) {
            for (int64_t bi = 0; bi < nblocks; ++bi) {
                const int64_t i0 = bi * qblock, nq = std::min(qblock, s.Tq - i0), R = nq * rep;
                // Row ii·rep + r of the block is query i0+ii, head g·rep + r.
                for (int64_t ii = 0; ii < nq; ++ii)
                    std::memcpy(&qb[ii * rep * hd], q + ((i0 + ii) * H + g * rep) * hd,
                                static_cast<size_t>(rep * hd) * 4);
                std::fill(ob.begin(), ob.begin() + R * hd, 0.0f);
                std::fill(m.begin(), m.begin() + R, neg_inf);
                std::fill(l.begin(), l.begin() + R, 0.0);
                // Visible ranges only grow with the position, so the block needs [lo(first), hi(last)].
                int64_t lo, hi, unused;
                visible_keys(p, p.q_pos0 + i0, s.Tk, &lo, &unused);
                visible_keys(p, p.q_pos0 + i0 + nq - 1, s.Tk, &unused, &hi);
                for (int64_t j0 = lo; j0 <= hi; j0 += kKeyChunk) {
                    const int64_t nk = std::min(kKeyChunk, hi + 1 - j0);
                    int64_t ldk, ldv;
                    const float* kc = key_rows(k, j0, nk, g, s, kscratch, &ldk);
                    const float* vc = key_rows(v, j0, nk, g, s, vscratch, &ldv);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(R), static_cast<int>(nk),
                                static_cast<int>(hd), p.scale, qb.data(), static_cast<int>(hd), kc,
                                static_cast<int>(ldk), 0.0f, sc.data(), static_cast<int>(nk));
                    for (int64_t row = 0; row < R; ++row) {
                        int64_t rlo, rhi;
                        visible_keys(p, p.q_pos0 + i0 + row / rep, s.Tk, &rlo, &rhi);
                        float* sr = &sc[row * nk];
                        float cmax = neg_inf;
                        for (int64_t c = 0; c < nk; ++c) {
                            const int64_t j = j0 + c;
                            float x = sr[c];
                            if (capped) x = p.softcap * std::tanh(x * inv_cap);
                            if (j < rlo || j > rhi) x = neg_inf;
                            sr[c] = x;
                            cmax = std::max(cmax, x);
                        }
                        if (cmax == neg_inf) {  // nothing visible in this chunk
                            std::fill(sr, sr + nk, 0.0f);
                            continue;
                        }
                        const float mnew = std::max(m[row], cmax);
                        const float alpha = m[row] == neg_inf ? 0.0f : std::exp(m[row] - mnew);
                        double total = 0.0;
                        for (int64_t c = 0; c < nk; ++c) {
                            sr[c] = sr[c] == neg_inf ? 0.0f : std::exp(sr[c] - mnew);
                            total += sr[c];
                        }
                        l[row] = l[row] * alpha + total;
                        m[row] = mnew;
                        if (alpha != 1.0f)
                            for (int64_t e = 0; e < hd; ++e) ob[row * hd + e] *= alpha;
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(R), static_cast<int>(hd),
                                static_cast<int>(nk), 1.0f, sc.data(), static_cast<int>(nk), vc, static_cast<int>(ldv),
                                1.0f, ob.data(), static_cast<int>(hd));
                }
                for (int64_t row = 0; row < R; ++row) {
                    const int64_t ii = row / rep, r = row % rep;
                    float* dst = out + ((i0 + ii) * H + g * rep + r) * hd;
                    const float inv = l[row] > 0 ? static_cast<float>(1.0 / l[row]) : 0.0f;  // 0: nothing visible
                    for (int64_t e = 0; e < hd; ++e) dst[e] = ob[row * hd + e] * inv;
                }
            }
        }
    }
}

}  // namespace vidi::cpu
