// Cross-attention of independent query rows over long shared K/V (Backend::cross_attention:
// a prompt's queries, or one query of each sequence of a batched decoding step, over a video's
// media K/V), on tensor cores (mma.sync m16n8k16, 16-bit operands, f32 accumulation; the
// probabilities are rounded to T for P·V, as FlashAttention does).
//
// Each row's bits are independent of the other rows, so a batch answers as its questions one
// by one: a row's work depends only on its own query and on how the keys are cut, and the cut
// (split-K slices, tiles of 32 keys, taken in order) is a function of the keys alone.
//
// - Rows are (query, head) pairs of one KV head (GQA): row r is query r / G with head
//   kvh·G + r % G. A block owns 64 rows of one KV head and one slice of the keys; each of its 4
//   warps owns 16 rows (one m16 tile) and goes through every tile of the slice; a warp whose
//   rows are all past the last takes part in the loads only.
// - Tiles of 32 keys (K and V rows) pass through shared memory, two in flight (cp.async fills
//   the next while the warps work on this one); the block's query rows stay there too. Q's A
//   fragments and K's B fragments come from ldmatrix, V's from ldmatrix .trans; row pitches of
//   an odd number of 16-byte units keep ldmatrix free of bank conflicts.
// - Scores, the running max and sum and the output stay in registers; the probabilities
//   become the A operand of P·V in place. Slices write unnormalised partials that
//   merge_attention_splits() combines (the few-row kernel's layout).
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/mma.cuh"

namespace vidi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerBlock = 16 * kWarps;
constexpr int kKeys = 32;   // keys per tile
constexpr int kStages = 2;  // tiles in shared memory at once

template <int HD>
struct CrossSmem {
    static constexpr int kPitch = HD + 8;  // u16 a row: HD / 8 + 1 units of 16 bytes, an odd number
    static constexpr int kQ = kRowsPerBlock * kPitch;
    static constexpr int kTile = kKeys * kPitch;
    static constexpr size_t kBytes = sizeof(u16) * (kQ + 2 * kStages * kTile);
};

template <int HD, class T>
__global__ void __launch_bounds__(kThreads) cross_attention_kernel(Problem pb) {
    using S = CrossSmem<HD>;
    constexpr int P = S::kPitch;
    constexpr int NB = HD / 8;      // 8-wide column blocks of the output
    constexpr int kVecs = HD / 8;   // 16-byte vectors of a row
    static_assert(HD % 32 == 0, "the score loop takes two k-steps of 16 at a time");
    extern __shared__ __align__(16) unsigned char smem[];
    u16* qs = reinterpret_cast<u16*>(smem);
    u16* ks = qs + S::kQ;                  // [kStages][kKeys][P]
    u16* vs = ks + kStages * S::kTile;     // [kStages][kKeys][P]

    const AttentionArgs& a = pb.a;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int G = a.H / a.KV, kvh = blockIdx.y, split = blockIdx.z;
    const int64_t rows = a.Tq * G, row0 = int64_t(blockIdx.x) * kRowsPerBlock;
    const int64_t kv_pitch = int64_t(a.KV) * HD;
    const u16* kbase = static_cast<const u16*>(a.k) + int64_t(kvh) * HD;
    const u16* vbase = static_cast<const u16*>(a.v) + int64_t(kvh) * HD;

    // The block's query rows, zero past the last row.
    for (int i = threadIdx.x; i < kRowsPerBlock * kVecs; i += kThreads) {
        const int r = i / kVecs, c = (i % kVecs) * 8;
        const int64_t row = row0 + r;
        const bool inside = row < rows;
        const u16* src = static_cast<const u16*>(a.q);
        if (inside) src += ((row / G) * a.H + int64_t(kvh) * G + row % G) * HD + c;
        cp_async<16>(&qs[r * P + c], src, inside ? 16 : 0);
    }
    cp_async_commit();

    // This slice's tiles: a function of the keys and the split count only.
    const int64_t tiles = (a.Tk + kKeys - 1) / kKeys;
    const int64_t per_split = (tiles + pb.splits - 1) / pb.splits;
    const int64_t tile_begin = min(tiles, int64_t(split) * per_split), tile_end = min(tiles, tile_begin + per_split);
    // Keys k0.. into a stage, rows past the last key zero-filled (their scores are masked; zero
    // values keep NaN out of P·V).
    auto load_tile = [&](int stage, int64_t k0) {
        u16* kd = ks + stage * S::kTile;
        u16* vd = vs + stage * S::kTile;
        for (int i = threadIdx.x; i < kKeys * kVecs; i += kThreads) {
            const int r = i / kVecs, c = (i % kVecs) * 8;
            const bool inside = k0 + r < a.Tk;
            const int64_t off = inside ? (k0 + r) * kv_pitch + c : 0;
            cp_async<16>(&kd[r * P + c], kbase + off, inside ? 16 : 0);
            cp_async<16>(&vd[r * P + c], vbase + off, inside ? 16 : 0);
        }
        cp_async_commit();
    };

    const int r0 = warp * 16;
    const bool active = row0 + r0 < rows;  // warp-uniform
    float o[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8 of the warp
    // ldmatrix row addresses: A fragments (Q) and V's B fragments (.trans) take 16 rows × 2
    // column blocks; K's B fragments 8 rows (keys) × 4 column blocks (two k-steps).
    const int arow = (lane & 7) + ((lane >> 3) & 1) * 8, acol = (lane >> 4) * 8;
    const int krow = lane & 7, kcol = (lane >> 3) * 8;

    if (tile_begin < tile_end) load_tile(0, tile_begin * kKeys);
    for (int64_t it = tile_begin; it < tile_end; ++it) {
        const int st = static_cast<int>((it - tile_begin) & 1);
        if (it + 1 < tile_end) {
            load_tile(st ^ 1, (it + 1) * kKeys);  // the other stage, free since the last tile's end
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        const u16* kt = ks + st * S::kTile;
        const u16* vt = vs + st * S::kTile;
        if (active) {
            // Scores of the warp's 16 rows against the 32 keys: 4 blocks of 8 keys.
            float s[4][4];
#pragma unroll
            for (int nb = 0; nb < 4; ++nb) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < HD / 16; kk += 2) {
                uint32_t q0[4], q1[4];
                ldmatrix_x4(q0, &qs[(r0 + arow) * P + kk * 16 + acol]);
                ldmatrix_x4(q1, &qs[(r0 + arow) * P + (kk + 1) * 16 + acol]);
#pragma unroll
                for (int nb = 0; nb < 4; ++nb) {
                    uint32_t b[4];
                    ldmatrix_x4(b, &kt[(nb * 8 + krow) * P + kk * 16 + kcol]);
                    mma<T>(s[nb], q0, b[0], b[1]);
                    mma<T>(s[nb], q1, b[2], b[3]);
                }
            }
            const int64_t k0 = it * kKeys;
            uint32_t pf[2][4];  // the probabilities as the A fragments of P·V
            softmax_tile<T>(s, k0, t, a.scale, a.softcap, a.Tk, m, l, o, pf);
#pragma unroll
            for (int kk = 0; kk < 2; ++kk)
#pragma unroll
                for (int nb = 0; nb < NB; nb += 2) {
                    uint32_t b[4];
                    ldmatrix_x4_trans(b, &vt[(kk * 16 + arow) * P + nb * 8 + acol]);
                    mma<T>(o[nb], pf[kk], b[0], b[1]);
                    mma<T>(o[nb + 1], pf[kk], b[2], b[3]);
                }
        }
        __syncthreads();  // before a later load overwrites this stage
    }
    cp_async_wait<0>();  // the query rows, when the slice had no tile
    if (!active) return;

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int64_t row = row0 + r0 + g + 8 * half;
        if (row >= rows) continue;
        if (pb.splits == 1) {
            const float inv = l[half] > 0.0f ? 1.0f / l[half] : 0.0f;
            const int64_t base = ((row / G) * a.H + int64_t(kvh) * G + row % G) * HD;
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) {
                attention_out<T>(a, base + nb * 8 + 2 * t, o[nb][2 * half] * inv);
                attention_out<T>(a, base + nb * 8 + 2 * t + 1, o[nb][2 * half + 1] * inv);
            }
        } else {
            const int64_t slot = (int64_t(split) * a.KV + kvh) * rows + row;
            float* po = pb.part_o + slot * HD;
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) {
                po[nb * 8 + 2 * t] = o[nb][2 * half];
                po[nb * 8 + 2 * t + 1] = o[nb][2 * half + 1];
            }
            if (t == 0) {
                pb.part_ml[slot * 2] = m[half];
                pb.part_ml[slot * 2 + 1] = l[half];
            }
        }
    }
}

template <int HD, class T>
void launch_cross(const Problem& pb, cudaStream_t stream) {
    static const bool opted_in = [] {
        VIDI_CUDA_CHECK(cudaFuncSetAttribute(cross_attention_kernel<HD, T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(CrossSmem<HD>::kBytes)));
        return true;
    }();
    (void)opted_in;
    const int64_t rows = pb.a.Tq * (pb.a.H / pb.a.KV);
    const dim3 grid(static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(pb.a.KV),
                    static_cast<unsigned>(pb.splits));
    cross_attention_kernel<HD, T><<<grid, kThreads, CrossSmem<HD>::kBytes, stream>>>(pb);
    VIDI_CUDA_CHECK_LAUNCH("cross-attention");
}

template <class T>
void launch_for_head_dim(const Problem& pb, cudaStream_t stream) {
    switch (pb.a.hd) {
        case 32: return launch_cross<32, T>(pb, stream);
        case 64: return launch_cross<64, T>(pb, stream);
        case 128: return launch_cross<128, T>(pb, stream);
        case 256: return launch_cross<256, T>(pb, stream);
        default: fail("cross_attention: head dim ", pb.a.hd, " has no kernel");
    }
}

}  // namespace

bool cross_attention_supports(const AttentionArgs& a) {
    const bool head_dim = a.hd == 32 || a.hd == 64 || a.hd == 128 || a.hd == 256;
    auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    return head_dim && !a.k8 && !a.causal && a.window == 0 && !a.q_pos && a.KV > 0 && a.H % a.KV == 0 &&
           aligned(a.q) && aligned(a.k) && aligned(a.v);
}

int cross_attention_splits(const AttentionArgs& a, int sm_count) {
    // About two blocks an SM for one row block (a decoding step), each slice at least 8 tiles;
    // never a function of the rows (a row must get the same cut alone or in a batch).
    const int64_t tiles = (a.Tk + kKeys - 1) / kKeys;
    const int64_t by_fill = (2 * int64_t(sm_count) + a.KV - 1) / a.KV, by_work = tiles / 8;
    return static_cast<int>(std::clamp<int64_t>(std::min(by_fill, by_work), 1, kAttentionMaxSplits));
}

void cross_attention(const AttentionArgs& a, int splits, void* workspace, cudaStream_t stream) {
    VIDI_CHECK(cross_attention_supports(a), "cross_attention: unsupported problem (head dim ", a.hd, ")");
    if (a.Tq == 0 || a.H == 0) return;
    const Problem pb = split_problem(a, splits, workspace);
    if (a.act == DType::f16) launch_for_head_dim<fp16>(pb, stream);
    else launch_for_head_dim<bf16>(pb, stream);
    if (splits > 1) merge_attention_splits(pb, stream);
}

}  // namespace vidi::cuda
