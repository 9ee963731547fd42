// Cross-attention of a prompt's query rows over long shared K/V (Backend::cross_attention: a
// prompt's queries over a video's media K/V), on tensor cores (mma.sync m16n8k16, 16-bit
// operands, f32 accumulation; the probabilities are rounded to T for P·V, as FlashAttention
// does). A decoding step's rows (AttentionArgs::step_rows) go to attention_cross_step.cu.
//
// Each row's bits are independent of the other rows, so a batch answers as its questions one
// by one: a row's work depends only on its own query, on how the keys are cut (split-K
// slices, tiles, a tile's share of each warp, the merge order) and on the layout, and the
// layout is chosen by the kind of call (AttentionArgs::step_rows), never by the row count.
//
// - Rows are (query, head) pairs of one KV head (GQA): row r is query r / G with head
//   kvh·G + r % G. A block owns RT row tiles of 16 rows of one KV head and one slice of the
//   keys. Its warps are RT × Q: warp w takes row tile w / Q and share w % Q (WK keys) of every
//   tile of Q·WK keys, keeps its own online softmax, and the Q shares' partials merge through
//   shared memory at the end, always in the same order. A prompt's layout: Q = 1, RT = 4,
//   tiles of 32 keys, two stages: four warps of 16 rows share each K/V tile.
// - Tiles (K and V rows) pass through a ring of stages in shared memory (cp.async fills the
//   next ones while the warps work on this one); the block's query rows stay there too. Q's A
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

// Q warps share each tile's keys (WK each) for RT row tiles of 16 rows; STAGES tiles in flight.
template <int HD, int Q, int RT, int WK, int STAGES>
struct CrossLayout {
    static constexpr int kHD = HD, kQ = Q, kRT = RT, kWK = WK, kStages = STAGES;
    static constexpr int kThreads = RT * Q * 32;
    static constexpr int kKeys = Q * WK;   // keys per tile
    static constexpr int kPitch = HD + 8;  // u16 a row: HD / 8 + 1 units of 16 bytes, an odd number
    static constexpr int kQRows = RT * 16 * kPitch;
    static constexpr int kTile = kKeys * kPitch;
    static constexpr size_t kBytes = sizeof(u16) * (kQRows + 2 * STAGES * kTile);
    // The merge, after the last tile: each warp's outputs (16 rows at a pitch of HD + 4 floats,
    // which spreads a warp's float2 stores over the banks), then its rows' max and sum.
    static constexpr int kMergePitch = HD + 4;
    static constexpr int kMergeRows = RT * Q * 16;
    static constexpr size_t kMergeBytes = sizeof(float) * kMergeRows * (kMergePitch + 2);
    static_assert(kMergeBytes <= kBytes, "the merge reuses the tiles' shared memory");
    static_assert(HD % 32 == 0 && WK % 16 == 0, "two k-steps of 16 per score loop; P·V in k-steps of 16 keys");
};
template <int HD>
using PromptLayout = CrossLayout<HD, 1, 4, 32, 2>;
template <class L, class T>
__global__ void __launch_bounds__(L::kThreads) cross_attention_kernel(Problem pb) {
    constexpr int HD = L::kHD, P = L::kPitch, kThreads = L::kThreads, kKeys = L::kKeys, kStages = L::kStages;
    constexpr int NB = HD / 8;         // 8-wide column blocks of the output
    constexpr int NS = L::kWK / 8;     // 8-key blocks of a warp's scores
    constexpr int kVecs = HD / 8;      // 16-byte vectors of a row
    extern __shared__ __align__(16) unsigned char smem[];
    u16* qs = reinterpret_cast<u16*>(smem);
    u16* ks = qs + L::kQRows;              // [kStages][kKeys][P]
    u16* vs = ks + kStages * L::kTile;     // [kStages][kKeys][P]

    const AttentionArgs& a = pb.a;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int rt = warp / L::kQ, share = warp % L::kQ;
    const int G = a.H / a.KV, kvh = blockIdx.y, split = blockIdx.z;
    const int64_t rows = a.Tq * G, row0 = int64_t(blockIdx.x) * L::kRT * 16;
    const int64_t kv_pitch = int64_t(a.KV) * HD;
    const u16* kbase = static_cast<const u16*>(a.k) + int64_t(kvh) * HD;
    const u16* vbase = static_cast<const u16*>(a.v) + int64_t(kvh) * HD;

    // The block's query rows, zero past the last row.
    for (int i = threadIdx.x; i < L::kRT * 16 * kVecs; i += kThreads) {
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
        u16* kd = ks + stage * L::kTile;
        u16* vd = vs + stage * L::kTile;
        for (int i = threadIdx.x; i < kKeys * kVecs; i += kThreads) {
            const int r = i / kVecs, c = (i % kVecs) * 8;
            const bool inside = k0 + r < a.Tk;
            const int64_t off = inside ? (k0 + r) * kv_pitch + c : 0;
            cp_async<16>(&kd[r * P + c], kbase + off, inside ? 16 : 0);
            cp_async<16>(&vd[r * P + c], vbase + off, inside ? 16 : 0);
        }
        cp_async_commit();
    };

    const int r0 = rt * 16, key0 = share * L::kWK;
    const bool active = row0 + r0 < rows;  // warp-uniform
    float o[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8 of the warp
    // ldmatrix row addresses: A fragments (Q) and V's B fragments (.trans) take 16 rows × 2
    // column blocks; K's B fragments 8 rows (keys) × 4 column blocks (two k-steps).
    const int arow = (lane & 7) + ((lane >> 3) & 1) * 8, acol = (lane >> 4) * 8;
    const int krow = lane & 7, kcol = (lane >> 3) * 8;

    // Every step commits one group (empty past the last tile), so that waiting for all but
    // the newest kStages - 1 groups always means this tile's rows are in.
    for (int i = 0; i < kStages - 1; ++i) {
        if (tile_begin + i < tile_end) load_tile(i, (tile_begin + i) * kKeys);
        else cp_async_commit();
    }
    for (int64_t it = tile_begin; it < tile_end; ++it) {
        const int st = static_cast<int>((it - tile_begin) % kStages);
        const int64_t ahead = it + kStages - 1;  // into the stage freed at the last tile's end
        if (ahead < tile_end) load_tile(static_cast<int>((ahead - tile_begin) % kStages), ahead * kKeys);
        else cp_async_commit();
        cp_async_wait<kStages - 1>();
        __syncthreads();
        const u16* kt = ks + st * L::kTile + key0 * P;  // this warp's share of the tile
        const u16* vt = vs + st * L::kTile + key0 * P;
        const int64_t k0 = it * kKeys + key0;
        if (active && k0 < a.Tk) {  // a share with a key: the softmax never sees only -inf
            // Scores of the warp's 16 rows against its keys: NS blocks of 8 keys.
            float s[NS][4];
#pragma unroll
            for (int nb = 0; nb < NS; ++nb) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < HD / 16; kk += 2) {
                uint32_t q0[4], q1[4];
                ldmatrix_x4(q0, &qs[(r0 + arow) * P + kk * 16 + acol]);
                ldmatrix_x4(q1, &qs[(r0 + arow) * P + (kk + 1) * 16 + acol]);
#pragma unroll
                for (int nb = 0; nb < NS; ++nb) {
                    uint32_t b[4];
                    ldmatrix_x4(b, &kt[(nb * 8 + krow) * P + kk * 16 + kcol]);
                    mma<T>(s[nb], q0, b[0], b[1]);
                    mma<T>(s[nb], q1, b[2], b[3]);
                }
            }
            uint32_t pf[NS / 2][4];  // the probabilities as the A fragments of P·V
            softmax_tile<T>(s, k0, t, a.scale, a.softcap, a.Tk, m, l, o, pf);
#pragma unroll
            for (int kk = 0; kk < NS / 2; ++kk)
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
    __syncthreads();     // every warp is done with the tiles: the merge reuses their memory

    // Each warp's partials: outputs (unnormalised), then its rows' max and sum.
    constexpr int MP = L::kMergePitch;
    float* merge_o = reinterpret_cast<float*>(smem);   // [RT·Q warps][16 rows][MP]
    float* merge_ml = merge_o + L::kMergeRows * MP;     // [RT·Q warps][16 rows][2]
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
        const int wr = warp * 16 + g + 8 * half;
        float* po = merge_o + wr * MP;
#pragma unroll
        for (int nb = 0; nb < NB; ++nb)
            *reinterpret_cast<float2*>(po + nb * 8 + 2 * t) = make_float2(o[nb][2 * half], o[nb][2 * half + 1]);
        if (t == 0) {
            merge_ml[wr * 2] = m[half];
            merge_ml[wr * 2 + 1] = l[half];
        }
    }
    __syncthreads();

    // The shares of each row merged in order (a share or slice with no key leaves m = -inf).
    for (int i = threadIdx.x; i < L::kRT * 16 * HD; i += kThreads) {
        const int r = i / HD, d = i % HD;  // r: row of the block
        const int64_t row = row0 + r;
        if (row >= rows) continue;
        const int w0 = (r / 16) * L::kQ, rr = r % 16;
        float mm = -INFINITY;
#pragma unroll
        for (int q = 0; q < L::kQ; ++q) mm = fmaxf(mm, merge_ml[((w0 + q) * 16 + rr) * 2]);
        float acc = 0.0f, ll = 0.0f;
#pragma unroll
        for (int q = 0; q < L::kQ; ++q) {
            const int wr = (w0 + q) * 16 + rr;
            const float mq = merge_ml[wr * 2];
            if (mq == -INFINITY) continue;
            const float c = L::kQ == 1 ? 1.0f : __expf(mq - mm);  // one share: its own values
            acc += merge_o[wr * MP + d] * c;
            ll += merge_ml[wr * 2 + 1] * c;
        }
        write_merged_row<T>(a, pb, kvh, split, row, d, acc, mm, ll);
    }
}

template <class L, class T>
void launch_cross(const Problem& pb, cudaStream_t stream) {
    resident_blocks_of<cross_attention_kernel<L, T>>(L::kThreads, L::kBytes);  // sets the shared-memory opt-in
    const int64_t rows = pb.a.Tq * (pb.a.H / pb.a.KV), per_block = L::kRT * 16;
    const dim3 grid(static_cast<unsigned>((rows + per_block - 1) / per_block), static_cast<unsigned>(pb.a.KV),
                    static_cast<unsigned>(pb.splits));
    cross_attention_kernel<L, T><<<grid, L::kThreads, L::kBytes, stream>>>(pb);
    VIDI_CUDA_CHECK_LAUNCH("cross-attention");
}

template <class T>
void launch_for_head_dim(const Problem& pb, cudaStream_t stream) {
    switch (pb.a.hd) {
        case 32: return launch_cross<PromptLayout<32>, T>(pb, stream);
        case 64: return launch_cross<PromptLayout<64>, T>(pb, stream);
        case 128: return launch_cross<PromptLayout<128>, T>(pb, stream);
        case 256: return launch_cross<PromptLayout<256>, T>(pb, stream);
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
    // Never a function of the rows (a row must get the same cut alone or in a batch).
    if (a.step_rows) return step_cross_attention_splits(a, sm_count);
    // A prompt: about two blocks an SM for one row block, each slice at least 8 tiles.
    const int kv = std::max(1, a.KV);
    const int64_t tiles = (a.Tk + 31) / 32;
    const int64_t by_fill = (2 * int64_t(sm_count) + kv - 1) / kv, by_work = tiles / 8;
    return static_cast<int>(std::clamp<int64_t>(std::min(by_fill, by_work), 1, kAttentionMaxSplits));
}

void cross_attention(const AttentionArgs& a, int splits, void* workspace, cudaStream_t stream) {
    VIDI_CHECK(cross_attention_supports(a), "cross_attention: unsupported problem (head dim ", a.hd, ")");
    if (a.Tq == 0 || a.H == 0) return;
    const Problem pb = split_problem(a, splits, workspace);
    if (a.step_rows) step_cross_attention(pb, stream);
    else if (a.act == DType::f16) launch_for_head_dim<fp16>(pb, stream);
    else launch_for_head_dim<bf16>(pb, stream);
    if (splits > 1) merge_attention_splits(pb, stream);
}

}  // namespace vidi::cuda
