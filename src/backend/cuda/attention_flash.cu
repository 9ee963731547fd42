// Tensor-core attention for many query rows without a mask (the towers: SigLIP's head dim
// 72, Whisper's 64), FlashAttention-2's scheme on mma.sync m16n8k16 (bf16 or fp16 operands,
// the activations' type T; f32 accumulation; the probabilities are rounded to T for P·V, as
// FlashAttention does). A block of kWarps warps owns 16·kWarps query rows of one (sequence,
// head), a warp 16 of them. Tiles of 64 keys pass through shared memory (K and V as rows) in a
// ring of kStages: cp.async fills the next tiles while the warps work on this one, and one
// barrier a tile both publishes a tile and frees the buffer of the one before. K's B fragments
// come from ldmatrix, V's transposed from ldmatrix .trans; scores, the running max and sum
// and the output stay in registers, and the probabilities become the A operand of P·V
// without a trip through memory. A row's arithmetic is the same in every configuration.
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

// kWarps warps of 16 query rows each; kMinBlocks: the blocks an SM should hold (registers).
// kExp2: no soft-cap, the softmax in base 2 (softmax_tile_exp2).
template <int HD, class T, int kStages, int kWarps, int kMinBlocks, bool kExp2>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) flash_kernel(AttentionArgs a) {
    constexpr int kRows = 16 * kWarps;  // query rows per block
    using L = FlashTile<HD>;
    constexpr int KD = L::KD, KS = L::KS, VS = L::VS;
    constexpr int NB = HD / 8;  // 8-wide output column blocks
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
    const int r0 = warp * 16;
    uint32_t qf[KD / 16][4];
#pragma unroll
    for (int kk = 0; kk < KD / 16; ++kk) {
        qf[kk][0] = pair_at(&ks[(r0 + g) * KS + kk * 16 + 2 * t]);
        qf[kk][1] = pair_at(&ks[(r0 + g + 8) * KS + kk * 16 + 2 * t]);
        qf[kk][2] = pair_at(&ks[(r0 + g) * KS + kk * 16 + 8 + 2 * t]);
        qf[kk][3] = pair_at(&ks[(r0 + g + 8) * KS + kk * 16 + 8 + 2 * t]);
    }
    __syncthreads();

    float o[NB][4];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) o[nb][0] = o[nb][1] = o[nb][2] = o[nb][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g+8 of this warp
    // ldmatrix row addresses: K rows (keys) for the score fragments, V rows (keys) for P·V.
    const int krow = lane & 7, kcol = (lane >> 3) * 8;              // x4: 4 column blocks of 8 dims
    const int vrow = (lane & 7) + ((lane >> 3) & 1) * 8, vcol = (lane >> 4) * 8;  // x4: 2 column blocks

    for (int s = 0; s + 1 < kStages; ++s) load_tile(s);
    for (int it = 0; it < tiles; ++it) {
        const int st = it % kStages;
        const int64_t k0 = int64_t(it) * kTile;
        cp_async_wait<kStages - 2>();  // this thread's copies of tile `it` landed
        // Everyone's copies landed, and every warp is done with tile it - 1: its buffer is free.
        __syncthreads();
        load_tile(it + kStages - 1);
        const u16* kt = ks + st * kTile * KS;
        const u16* vt = vs + st * kTile * VS;

        // Scores of this warp's 16 rows against the 64 keys: 8 blocks of 8 keys.
        float s[8][4];
#pragma unroll
        for (int nb = 0; nb < 8; ++nb) {
            s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk + 1 < KD / 16; kk += 2) {  // two k-steps (32 dims) per ldmatrix.x4
                uint32_t b[4];
                ldmatrix_x4(b, &kt[(nb * 8 + krow) * KS + kk * 16 + kcol]);
                mma<T>(s[nb], qf[kk], b[0], b[1]);
                mma<T>(s[nb], qf[kk + 1], b[2], b[3]);
            }
            if constexpr ((KD / 16) % 2 == 1) {
                constexpr int kk = KD / 16 - 1;
                uint32_t b0, b1;
                ldmatrix_x2(b0, b1, &kt[(nb * 8 + krow) * KS + kk * 16 + (kcol & 8)]);
                mma<T>(s[nb], qf[kk], b0, b1);
            }
        }
        uint32_t pf[4][4];  // the probabilities as the A fragments of P·V
        if constexpr (kExp2) softmax_tile_exp2<T>(s, k0, t, a.scale * 1.4426950408889634f, a.Tk, m, l, o, pf);
        else softmax_tile<T>(s, k0, t, a.scale, a.softcap, a.Tk, m, l, o, pf);
        // B fragments of V (16 keys × 8 dims) straight from its rows: ldmatrix .trans hands
        // lane (g, t) the keys 2t, 2t+1 (and +8) of dim g; .x4 covers two blocks of 8 dims.
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
            for (int nb = 0; nb + 1 < NB; nb += 2) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, &vt[(kk * 16 + vrow) * VS + nb * 8 + vcol]);
                mma<T>(o[nb], pf[kk], b[0], b[1]);
                mma<T>(o[nb + 1], pf[kk], b[2], b[3]);
            }
            if constexpr (NB % 2 == 1) {
                uint32_t b0, b1;
                ldmatrix_x2_trans(b0, b1, &vt[(kk * 16 + vrow) * VS + (NB - 1) * 8]);
                mma<T>(o[NB - 1], pf[kk], b0, b1);
            }
        }
    }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        l[r] = 1.0f / l[r];
    }
    T* out = static_cast<T*>(a.out) + seq * a.Tq * q_pitch + int64_t(h) * HD;
    const int64_t row = q0 + r0 + g;
#pragma unroll
    for (int nb = 0; nb < NB; ++nb) {
        const int c = nb * 8 + 2 * t;
        if (row < a.Tq)
            *reinterpret_cast<uint32_t*>(out + row * q_pitch + c) = float2_to_pair<T>(o[nb][0] * l[0], o[nb][1] * l[0]);
        if (row + 8 < a.Tq)
            *reinterpret_cast<uint32_t*>(out + (row + 8) * q_pitch + c) =
                float2_to_pair<T>(o[nb][2] * l[1], o[nb][3] * l[1]);
    }
}

}  // namespace

bool flash_attention_supports(int hd) { return gpu_fused_attention(hd); }

namespace {
// One configuration of the kernel over `sequences` sequences (its shared-memory opt-in set).
template <int HD, class T, int kStages, int kWarps, int kMinBlocks, bool kExp2>
void launch_flash_as(const AttentionArgs& a, int64_t sequences, cudaStream_t stream) {
    constexpr auto kernel = flash_kernel<HD, T, kStages, kWarps, kMinBlocks, kExp2>;
    constexpr size_t smem = kStages * FlashTile<HD>::stage_bytes;
    constexpr int rows = 16 * kWarps;
    resident_blocks_of<kernel>(kWarps * 32, smem);
    const dim3 grid(static_cast<unsigned>((a.Tq + rows - 1) / rows), static_cast<unsigned>(a.H),
                    static_cast<unsigned>(sequences));
    kernel<<<grid, kWarps * 32, smem, stream>>>(a);
}
// Without a soft-cap (the towers) the base-2 softmax.
template <int HD, class T, int kStages, int kWarps, int kMinBlocks>
void launch_flash(const AttentionArgs& a, int64_t sequences, cudaStream_t stream) {
    if (a.softcap <= 0.0f)
        launch_flash_as<HD, T, kStages, kWarps, kMinBlocks, true>(a, sequences, stream);
    else
        launch_flash_as<HD, T, kStages, kWarps, kMinBlocks, false>(a, sequences, stream);
}
}  // namespace

void flash_attention(const AttentionArgs& a, int64_t sequences, cudaStream_t stream) {
    auto launch = [&](auto tag) {
        using T = decltype(tag);
        switch (a.hd) {
            // Eight warps (128 query rows) share each K/V tile; at head dims 64 and 72 two
            // blocks an SM in 128 registers (a few bytes spilled). H200, bench/RESULTS.md:
            // SigLIP's 16 frames 0.333 -> 0.272 ms, Whisper's 4 pieces 0.355 -> 0.315 ms.
            case 64: launch_flash<64, T, 2, 8, 2>(a, sequences, stream); break;
            case 72: launch_flash<72, T, 2, 8, 2>(a, sequences, stream); break;
            case 128: launch_flash<128, T, 2, 8, 1>(a, sequences, stream); break;
            default: fail("flash_attention: head dim ", a.hd, " has no kernel");
        }
    };
    if (a.act == DType::f16) launch(fp16{});
    else launch(bf16{});
    VIDI_CUDA_CHECK_LAUNCH("flash_attention");
}

}  // namespace vidi::cuda
