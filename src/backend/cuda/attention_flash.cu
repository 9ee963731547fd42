// Tensor-core attention for many query rows without a mask (the towers: SigLIP's head dim
// 72, Whisper's 64), FlashAttention-2's scheme on mma.sync m16n8k16 (bf16 or fp16 operands,
// the activations' type T; f32 accumulation; the probabilities are rounded to T for P·V, as
// FlashAttention does). A block of kWarps warps owns 16·kMT·kWarps query rows of one
// (sequence, head), a warp kMT tiles of 16 rows that share each K and V fragment it loads.
// Tiles of 64 keys pass through shared memory (K and V as rows) in a ring of kStages: cp.async
// fills the next tiles while the warps work on this one, and one barrier a tile both publishes
// a tile and frees the buffer of the one before. K's B fragments come from ldmatrix, V's
// transposed from ldmatrix .trans; scores, the running max and sum and the output stay in
// registers, and the probabilities become the A operand of P·V without a trip through memory.
// Head dim 72 ends its Q·Kᵀ in an m16n8k8 step rather than a k16 step over 8 zero dims. A
// row's arithmetic is the same in every configuration.
// Without a soft-cap (the towers) the softmax runs in base 2 with the scale folded into one
// multiply-add a score (softmax_tile_exp2): H200, 10-minute encode, SigLIP's attention
// 319-328 ms -> 264-265 ms (bench/RESULTS.md).
#include "backend/backend.h"
#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace vidi::cuda {
namespace {

constexpr int kTile = 64;  // keys per tile

// The tile layout of head dim HD: the K (and Q) rows, the V rows, and a stage's bytes.
template <int HD>
struct FlashTile {
    static constexpr int KD = (HD + 15) / 16 * 16;  // head dims padded to the mma's k of 16 (zeros)
    static constexpr int KS = KD + 8;               // row pitch of the K (and Q) tile: no bank conflicts
    // Row pitch of the V tile: an odd multiple of 4 words, so ldmatrix's 8 rows hit distinct banks.
    static constexpr int VS = (HD / 2) % 8 == 4 ? HD : HD + 8;
    static constexpr size_t stage_bytes = size_t(kTile) * (KS + VS) * sizeof(u16);
};

// kWarps warps of 16·kMT query rows each; kMinBlocks: the blocks an SM should hold (registers).
// kExp2: no soft-cap, the softmax in base 2 (softmax_tile_exp2).
template <int HD, class T, int kStages, int kWarps, int kMT, int kMinBlocks, bool kExp2>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) flash_kernel(AttentionArgs a) {
    constexpr int kWarpRows = 16 * kMT;
    constexpr int kRows = kWarpRows * kWarps;  // query rows per block
    using L = FlashTile<HD>;
    constexpr int KD = L::KD, KS = L::KS, VS = L::VS;
    constexpr int NB = HD / 8;        // 8-wide output column blocks
    constexpr int KF = HD / 16;       // whole k16 steps of Q·Kᵀ
    constexpr bool kHalf = HD % 16;   // and one k8 step (head dim 72)
    static_assert(HD % 8 == 0, "head dims in whole 16-byte vectors");
    static_assert(kStages >= 2, "a tile loads while the one before is worked on");
    extern __shared__ __align__(16) u16 flash_smem[];
    u16* const ks = flash_smem;                            // kStages K tiles; first the block's Q rows
    u16* const vs = flash_smem + kStages * kTile * KS;     // kStages V tiles: [key][d]

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int h = blockIdx.y, kvh = h / (a.H / a.KV);
    const int64_t seq = blockIdx.z, q0 = int64_t(blockIdx.x) * kRows;
    const int64_t q_pitch = int64_t(a.H) * HD, kv_pitch = int64_t(a.KV) * HD;
    const u16* q = static_cast<const u16*>(a.q) + seq * a.Tq * q_pitch + int64_t(h) * HD;
    const u16* k = static_cast<const u16*>(a.k) + seq * a.Tk * kv_pitch + int64_t(kvh) * HD;
    const u16* v = static_cast<const u16*>(a.v) + seq * a.Tk * kv_pitch + int64_t(kvh) * HD;

    // Rows first..first+n-1 of a [rows, HD] matrix into dst (pitch P, Wd 16-byte vectors a row)
    // with cp.async; rows past `rows` and the padded dims are zero-filled (so no uninitialised
    // value reaches an mma). The caller commits and waits.
    auto stage_rows = [&](u16* dst, int n, int pitch, int vecs, const u16* base, int64_t src_pitch, int64_t first,
                          int64_t rows) {
        for (int i = threadIdx.x; i < n * vecs; i += blockDim.x) {
            const int r = i / vecs, c = (i % vecs) * 8;
            const bool inside = first + r < rows && c < HD;
            cp_async<16>(&dst[r * pitch + c], inside ? base + (first + r) * src_pitch + c : base, inside ? 16 : 0);
        }
    };
    const int tiles = static_cast<int>((a.Tk + kTile - 1) / kTile);  // (a tower's few thousand keys)
    // Tile `it` into its stage; past the last tile an empty group keeps the count of groups
    // in flight the same at every tile.
    auto load_tile = [&](int it) {
        if (it < tiles) {
            const int st = it % kStages;
            stage_rows(ks + st * kTile * KS, kTile, KS, KD / 8, k, kv_pitch, int64_t(it) * kTile, a.Tk);
            stage_rows(vs + st * kTile * VS, kTile, VS, HD / 8, v, kv_pitch, int64_t(it) * kTile, a.Tk);
        }
        cp_async_commit();
    };

    static_assert(kRows <= kStages * kTile, "the Q rows are staged where the K tiles go");
    stage_rows(ks, kRows, KS, KD / 8, q, q_pitch, q0, a.Tq);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    const int r0 = warp * kWarpRows;
    uint32_t qf[kMT][KD / 16][4];  // (with kHalf the last step's first two registers only are used)
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int kk = 0; kk < KD / 16; ++kk) {
            const u16* row = &ks[(r0 + mt * 16 + g) * KS + kk * 16 + 2 * t];
            qf[mt][kk][0] = pair_at(row);
            qf[mt][kk][1] = pair_at(row + 8 * KS);
            qf[mt][kk][2] = pair_at(row + 8);
            qf[mt][kk][3] = pair_at(row + 8 * KS + 8);
        }
    __syncthreads();

    float o[kMT][NB][4];
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt)
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) o[mt][nb][0] = o[mt][nb][1] = o[mt][nb][2] = o[mt][nb][3] = 0.0f;
    float m[kMT][2], l[kMT][2];  // rows g and g+8 of each of this warp's row tiles
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) m[mt][0] = m[mt][1] = -INFINITY, l[mt][0] = l[mt][1] = 0.0f;
    // ldmatrix row addresses: K rows (keys) for the score fragments, V rows (keys) for P·V.
    const int krow = lane & 7, kcol = (lane >> 3) * 8;              // x4: 4 column blocks of 8 dims
    const int vrow = (lane & 7) + ((lane >> 3) & 1) * 8, vcol = (lane >> 4) * 8;  // x4: 2 column blocks

    // Scores of this warp's rows against the 64 keys of K tile kt: 8 blocks of 8 keys.
    auto scores_of = [&](float (&s)[kMT][8][4], const u16* kt) {
#pragma unroll
        for (int nb = 0; nb < 8; ++nb) {
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt) s[mt][nb][0] = s[mt][nb][1] = s[mt][nb][2] = s[mt][nb][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk + 1 < KF; kk += 2) {  // two k-steps (32 dims) per ldmatrix.x4
                uint32_t b[4];
                ldmatrix_x4(b, &kt[(nb * 8 + krow) * KS + kk * 16 + kcol]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) {
                    mma<T>(s[mt][nb], qf[mt][kk], b[0], b[1]);
                    mma<T>(s[mt][nb], qf[mt][kk + 1], b[2], b[3]);
                }
            }
            if constexpr (KF % 2 == 1) {
                constexpr int kk = KF - 1;
                uint32_t b0, b1;
                ldmatrix_x2(b0, b1, &kt[(nb * 8 + krow) * KS + kk * 16 + (kcol & 8)]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) mma<T>(s[mt][nb], qf[mt][kk], b0, b1);
            }
            if constexpr (kHalf) {
                uint32_t b0;
                ldmatrix_x1(b0, &kt[(nb * 8 + krow) * KS + KF * 16]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) mma_k8<T>(s[mt][nb], qf[mt][KF][0], qf[mt][KF][1], b0);
            }
        }
    };
    // The scores of keys k0.. through the online softmax, then their probabilities times V tile vt.
    auto attend = [&](float (&s)[kMT][8][4], int64_t k0, const u16* vt) {
        uint32_t pf[kMT][4][4];  // the probabilities as the A fragments of P·V
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
            if constexpr (kExp2)
                softmax_tile_exp2<T>(s[mt], k0, t, a.scale * 1.4426950408889634f, a.Tk, m[mt], l[mt], o[mt], pf[mt]);
            else
                softmax_tile<T>(s[mt], k0, t, a.scale, a.softcap, a.Tk, m[mt], l[mt], o[mt], pf[mt]);
        }
        // B fragments of V (16 keys × 8 dims) straight from its rows: ldmatrix .trans hands
        // lane (g, t) the keys 2t, 2t+1 (and +8) of dim g; .x4 covers two blocks of 8 dims.
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
            for (int nb = 0; nb + 1 < NB; nb += 2) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, &vt[(kk * 16 + vrow) * VS + nb * 8 + vcol]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) {
                    mma<T>(o[mt][nb], pf[mt][kk], b[0], b[1]);
                    mma<T>(o[mt][nb + 1], pf[mt][kk], b[2], b[3]);
                }
            }
            if constexpr (NB % 2 == 1) {
                uint32_t b0, b1;
                ldmatrix_x2_trans(b0, b1, &vt[(kk * 16 + vrow) * VS + (NB - 1) * 8]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) mma<T>(o[mt][NB - 1], pf[mt][kk], b0, b1);
            }
        }
    };

    for (int s = 0; s + 1 < kStages; ++s) load_tile(s);
    for (int it = 0; it < tiles; ++it) {
        const int st = it % kStages;
        cp_async_wait<kStages - 2>();  // this thread's copies of tile `it` landed
        // Everyone's copies landed, and every warp is done with tile it - 1: its buffer is free.
        __syncthreads();
        load_tile(it + kStages - 1);
        float s[kMT][8][4];
        scores_of(s, ks + st * kTile * KS);
        attend(s, int64_t(it) * kTile, vs + st * kTile * VS);
    }

    T* out = static_cast<T*>(a.out) + seq * a.Tq * q_pitch + int64_t(h) * HD;
#pragma unroll
    for (int mt = 0; mt < kMT; ++mt) {
        float inv[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float sum = l[mt][r];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            inv[r] = 1.0f / sum;
        }
        const int64_t row = q0 + r0 + mt * 16 + g;
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) {
            const int c = nb * 8 + 2 * t;
            if (row < a.Tq)
                *reinterpret_cast<uint32_t*>(out + row * q_pitch + c) =
                    float2_to_pair<T>(o[mt][nb][0] * inv[0], o[mt][nb][1] * inv[0]);
            if (row + 8 < a.Tq)
                *reinterpret_cast<uint32_t*>(out + (row + 8) * q_pitch + c) =
                    float2_to_pair<T>(o[mt][nb][2] * inv[1], o[mt][nb][3] * inv[1]);
        }
    }
}

}  // namespace

bool flash_attention_supports(int hd) { return gpu_fused_attention(hd); }

namespace {
// One configuration of the kernel over `sequences` sequences (its shared-memory opt-in set).
template <int HD, class T, int kStages, int kWarps, int kMT, int kMinBlocks, bool kExp2>
void launch_flash_as(const AttentionArgs& a, int64_t sequences, cudaStream_t stream) {
    constexpr auto kernel = flash_kernel<HD, T, kStages, kWarps, kMT, kMinBlocks, kExp2>;
    constexpr size_t smem = kStages * FlashTile<HD>::stage_bytes;
    constexpr int rows = 16 * kMT * kWarps;
    resident_blocks_of<kernel>(kWarps * 32, smem);
    const dim3 grid(static_cast<unsigned>((a.Tq + rows - 1) / rows), static_cast<unsigned>(a.H),
                    static_cast<unsigned>(sequences));
    kernel<<<grid, kWarps * 32, smem, stream>>>(a);
}
// Without a soft-cap (the towers) the base-2 softmax.
template <int HD, class T, int kStages, int kWarps, int kMT, int kMinBlocks>
void launch_flash(const AttentionArgs& a, int64_t sequences, cudaStream_t stream) {
    if (a.softcap <= 0.0f)
        launch_flash_as<HD, T, kStages, kWarps, kMT, kMinBlocks, true>(a, sequences, stream);
    else
        launch_flash_as<HD, T, kStages, kWarps, kMT, kMinBlocks, false>(a, sequences, stream);
}
}  // namespace

void flash_attention(const AttentionArgs& a, int64_t sequences, cudaStream_t stream) {
    auto launch = [&](auto tag) {
        using T = decltype(tag);
        switch (a.hd) {
            // Eight warps of two row tiles (256 query rows, four buffers of keys) share each K/V
            // tile, one block an SM in 250 / 232 registers (none spilled). H100, `cuda_micro
            // towers-attention` (bench/RESULTS.md, 2026-12-06): SigLIP's 16 frames 0.214 ->
            // 0.197-0.199 ms, Whisper's 4 pieces 0.231 -> 0.213 ms against eight warps of one
            // row tile, two blocks an SM. Two row tiles in 4-warp blocks alone gained nothing,
            // and a warp computing the next tile's scores before this tile's softmax lost.
            case 64: launch_flash<64, T, 4, 8, 2, 1>(a, sequences, stream); break;
            case 72: launch_flash<72, T, 4, 8, 2, 1>(a, sequences, stream); break;
            case 128: launch_flash<128, T, 2, 8, 1, 1>(a, sequences, stream); break;
            default: fail("flash_attention: head dim ", a.hd, " has no kernel");
        }
    };
    if (a.act == DType::f16) launch(fp16{});
    else launch(bf16{});
    VIDI_CUDA_CHECK_LAUNCH("flash_attention");
}

}  // namespace vidi::cuda
