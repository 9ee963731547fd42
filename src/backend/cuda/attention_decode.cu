// Attention for few query rows over many keys: a decoding step (one query, G heads per KV
// head) or a short prompt against the media K/V. Memory bound: every K/V byte is read once,
// so the kernel streams keys straight from global memory with every warp busy (the tiled
// kernel in attention.cu stages tiles through shared memory and leaves most warps idle when
// a KV head has only G rows).
//
// - Block: one KV head and one slice of the keys (split-K); its 4 warps take interleaved
//   tiles of 32 keys and keep their own online softmax, merged through shared memory at
//   the end (and across slices by the merge kernel of attention.cu).
// - Lanes own hd/32 head dimensions (8 at hd 256: one 16-byte bf16 or 8-byte int8 load),
//   so every K and V row is read by the warp as one coalesced line.
// - Scores: each lane dots its dimensions of 16 keys at a time (their rows in flight
//   together) with the queries kept in registers; a warp sum per key and row puts the
//   score of key j in lane j.
// - P·V: each p_j reaches the lanes by shuffle; the V rows of 16 keys are loaded together.
// - int8 K/V: the key's scale multiplies its score, the value's scale its weight p_j.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileKeys = 32;
constexpr int kRows = static_cast<int>(kDecodeMaxRows);

// The raw bytes of N values (N = 2, 4 or 8; bf16 or int8) at element offset `off`, and
// their conversion to floats: loads of many keys can be in flight before any is used.
template <bool kInt8, int N>
struct Raw {
    static constexpr int kBytes = N * (kInt8 ? 1 : 2);
    using Word = std::conditional_t<
        kBytes == 16, uint4,
        std::conditional_t<kBytes == 8, uint2, std::conditional_t<kBytes == 4, uint32_t, unsigned short>>>;
    Word w;
};

template <bool kInt8, int N>
__device__ inline Raw<kInt8, N> load_raw(const void* base, int64_t off) {
    using W = typename Raw<kInt8, N>::Word;
    const char* p = static_cast<const char*>(base) + off * (kInt8 ? 1 : 2);
    return {__ldg(reinterpret_cast<const W*>(p))};  // naturally aligned: offsets are multiples of N
}

template <bool kInt8, int N>
__device__ inline void to_floats(const Raw<kInt8, N>& r, float* f) {
    uint32_t w[(N * (kInt8 ? 1 : 2) + 3) / 4] = {};
    memcpy(w, &r.w, sizeof(r.w));
    if constexpr (kInt8) {
        if constexpr (N >= 4) {
#pragma unroll
            for (int i = 0; i < N / 4; ++i) i8x4_to_float(w[i], f + 4 * i);
        } else {
            float t[4];
            i8x4_to_float(w[0], t);
            f[0] = t[0], f[1] = t[1];
        }
    } else {
#pragma unroll
        for (int i = 0; i < N / 2; ++i) {
            f[2 * i] = __uint_as_float(w[i] << 16);
            f[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
        }
    }
}

// This lane's dimensions of the K (or V) rows of keys key0 + jj0 .. + U - 1 of KV head kvh,
// raw; zeros for keys past `keys` or dimensions past hd. All loads are issued before any is used.
template <bool kInt8, int N, int U>
__device__ inline void load_rows(Raw<kInt8, N> (&out)[U], const void* base, const AttentionArgs& a, int kvh,
                                 int64_t key0, int jj0, int keys, int d_lane, bool owns_dims) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
        out[u] = {};
        if (jj0 + u < keys && owns_dims)
            out[u] = load_raw<kInt8, N>(base, ((key0 + jj0 + u) * a.KV + kvh) * a.hd + d_lane);
    }
}

// Calls f(jj, values) for the keys key0 + jj, jj < keys, with this lane's dimensions of their
// K (or V) rows as floats; the rows of kUnroll keys are in flight together (a load per key in
// turn would wait out the memory latency 32 times a tile).
template <bool kInt8, int kDims, int kUnroll, class F>
__device__ inline void for_each_row(const void* base, const AttentionArgs& a, int kvh, int64_t key0, int keys,
                                    int d_lane, bool owns_dims, F f) {
    for (int jj0 = 0; jj0 < keys; jj0 += kUnroll) {
        Raw<kInt8, kDims> raw[kUnroll];
        load_rows(raw, base, a, kvh, key0, jj0, keys, d_lane, owns_dims);
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            if (jj0 + u >= keys) break;  // warp-uniform
            float values[kDims];
            to_floats<kInt8, kDims>(raw[u], values);
            f(jj0 + u, values);
        }
    }
}

template <int HD, int R, bool kInt8>
__global__ void __launch_bounds__(kThreads) decode_attention_kernel(Problem pb) {
    constexpr int kDims = HD / 32;  // head dimensions per lane (scores and outputs alike)
    constexpr int kUnroll = 16;     // keys whose K (or V) rows are in flight at once
    const AttentionArgs& a = pb.a;
    __shared__ float o_s[kWarps][R][HD];
    __shared__ float m_s[kWarps][R], l_s[kWarps][R];

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int kvh = blockIdx.x, split = blockIdx.y;
    const int G = a.H / a.KV, rows = static_cast<int>(a.Tq) * G;
    const void* kbase = kInt8 ? static_cast<const void*>(a.k8) : static_cast<const void*>(a.k);
    const void* vbase = kInt8 ? static_cast<const void*>(a.v8) : static_cast<const void*>(a.v);
    const int d_lane = lane * kDims;
    const bool owns_dims = d_lane < a.hd;

    // This lane's dimensions of every (scaled) query row, zero beyond the rows and hd.
    float q[R][kDims];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int x = 0; x < kDims; ++x) {
            q[r][x] = 0.0f;
            if (r < rows && owns_dims) {
                const int64_t i = r / G, h = int64_t(kvh) * G + r % G;
                q[r][x] = __bfloat162float(a.q[(i * a.H + h) * a.hd + d_lane + x]) * a.scale;
            }
        }

    int64_t key_lo, key_end;
    visible_keys(a, a.q_pos0, a.q_pos0 + a.Tq - 1, key_lo, key_end);
    const int64_t tiles = (key_end - key_lo + kTileKeys - 1) / kTileKeys;
    const int64_t per_split = (tiles + pb.splits - 1) / pb.splits;
    const int64_t tile_begin = split * per_split, tile_end = min(tiles, tile_begin + per_split);

    float m[R], l[R], o[R][kDims];
    int64_t pos[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        pos[r] = a.q_pos0 + r / G;
#pragma unroll
        for (int x = 0; x < kDims; ++x) o[r][x] = 0.0f;
    }

    for (int64_t t = tile_begin + warp; t < tile_end; t += kWarps) {
        const int64_t key0 = key_lo + t * kTileKeys, j = key0 + lane;
        const int keys = static_cast<int>(key_end - key0 < kTileKeys ? key_end - key0 : kTileKeys);
        const bool valid = lane < keys;

        // Scores: the warp reads each key's row as one coalesced line, every lane dotting its
        // dimensions; the sum over lanes lands in the lane that owns the key.
        float s[R];
#pragma unroll
        for (int r = 0; r < R; ++r) s[r] = 0.0f;
        auto score = [&](int jj, const float (&kf)[kDims]) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (r >= rows) break;
                float part = 0.0f;
#pragma unroll
                for (int x = 0; x < kDims; ++x) part = fmaf(q[r][x], kf[x], part);
                part = warp_sum(part);
                if (lane == jj) s[r] = part;
            }
        };
        for_each_row<kInt8, kDims, kUnroll>(kbase, a, kvh, key0, keys, d_lane, owns_dims, score);
        const float k_scale = kInt8 && valid ? __ldg(a.k_scale + j * a.KV + kvh) : 1.0f;
        const float v_scale = kInt8 && valid ? __ldg(a.v_scale + j * a.KV + kvh) : 1.0f;

        float w[R];  // p_j times the value's scale
#pragma unroll
        for (int r = 0; r < R; ++r) {
            w[r] = 0.0f;
            if (r >= rows) break;
            float sr = s[r] * k_scale;
            if (a.softcap > 0.0f) sr = a.softcap * tanhf(sr / a.softcap);
            if (!valid || !visible(a, pos[r], j)) sr = -INFINITY;
            const float m_new = fmaxf(m[r], warp_max(sr));
            const float p = m_new == -INFINITY ? 0.0f : __expf(sr - m_new);
            const float corr = m[r] == -INFINITY ? 0.0f : __expf(m[r] - m_new);
            l[r] = l[r] * corr + warp_sum(p);
            m[r] = m_new;
#pragma unroll
            for (int x = 0; x < kDims; ++x) o[r][x] *= corr;
            w[r] = p * v_scale;
        }

        // P·V: p_j reaches every lane by shuffle.
        auto accumulate = [&](int jj, const float (&vf)[kDims]) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (r >= rows) break;
                const float wj = __shfl_sync(0xffffffffu, w[r], jj);
#pragma unroll
                for (int x = 0; x < kDims; ++x) o[r][x] = fmaf(wj, vf[x], o[r][x]);
            }
        };
        for_each_row<kInt8, kDims, kUnroll>(vbase, a, kvh, key0, keys, d_lane, owns_dims, accumulate);
    }

    // Merge the warps, then write the output or this slice's partial.
#pragma unroll
    for (int r = 0; r < R; ++r) {
        if (r >= rows) break;
        if (lane == 0) {
            m_s[warp][r] = m[r];
            l_s[warp][r] = l[r];
        }
        if (owns_dims)
#pragma unroll
            for (int x = 0; x < kDims; ++x) o_s[warp][r][d_lane + x] = o[r][x];
    }
    __syncthreads();
    for (int idx = tid; idx < rows * a.hd; idx += kThreads) {
        const int r = idx / a.hd, d = idx % a.hd;
        float mm = -INFINITY;
#pragma unroll
        for (int ww = 0; ww < kWarps; ++ww) mm = fmaxf(mm, m_s[ww][r]);
        float acc = 0.0f, ll = 0.0f;
#pragma unroll
        for (int ww = 0; ww < kWarps; ++ww) {
            if (m_s[ww][r] == -INFINITY) continue;
            const float c = __expf(m_s[ww][r] - mm);
            acc += o_s[ww][r][d] * c;
            ll += l_s[ww][r] * c;
        }
        if (pb.splits == 1) {
            const int64_t i = r / G, h = int64_t(kvh) * G + r % G;
            a.out[(i * a.H + h) * a.hd + d] = __float2bfloat16_rn(ll > 0.0f ? acc / ll : 0.0f);
        } else {
            const int64_t slot = (int64_t(split) * a.KV + kvh) * rows + r;
            pb.part_o[slot * a.hd + d] = acc;
            if (d == 0) {
                pb.part_ml[slot * 2] = mm;
                pb.part_ml[slot * 2 + 1] = ll;
            }
        }
    }
}

template <int HD, int R>
void launch_rows(const Problem& pb, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(pb.a.KV), static_cast<unsigned>(pb.splits));
    if (pb.a.k8)
        decode_attention_kernel<HD, R, true><<<grid, kThreads, 0, stream>>>(pb);
    else
        decode_attention_kernel<HD, R, false><<<grid, kThreads, 0, stream>>>(pb);
    VIDI_CUDA_CHECK_LAUNCH("attention (few rows)");
}

template <int HD>
void launch(const Problem& pb, cudaStream_t stream) {
    const int64_t rows = pb.a.Tq * (pb.a.H / pb.a.KV);
    if (rows <= 1)
        launch_rows<HD, 1>(pb, stream);
    else if (rows <= 2)
        launch_rows<HD, 2>(pb, stream);
    else if (rows <= 4)
        launch_rows<HD, 4>(pb, stream);
    else
        launch_rows<HD, kRows>(pb, stream);
}

}  // namespace

int attention_decode_splits(const AttentionArgs& a, int sm_count) {
    int64_t lo, end;
    visible_keys(a, a.q_pos0, a.q_pos0 + a.Tq - 1, lo, end);
    const int64_t tiles = (end - lo + kTileKeys - 1) / kTileKeys;
    // About 8 blocks per SM (the loads in flight are what sets the speed), each warp with at
    // least two tiles.
    const int64_t by_fill = (int64_t(sm_count) * 8 + a.KV - 1) / a.KV, by_work = tiles / (2 * kWarps);
    return static_cast<int>(std::clamp<int64_t>(std::min(by_fill, by_work), 1, 1024));
}

void attention_decode(const Problem& pb, cudaStream_t stream) {
    if (pb.a.hd <= 64)
        launch<64>(pb, stream);
    else if (pb.a.hd <= 128)
        launch<128>(pb, stream);
    else
        launch<256>(pb, stream);
}

}  // namespace vidi::cuda
