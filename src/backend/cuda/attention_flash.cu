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
// row's arithmetic is the same in every configuration (FlashWarp), and so in the resident
// kernel, which holds all of a sequence's keys in shared memory where they fit (SigLIP's on a
// Hopper) and lets its warps run without meeting at each tile: H100, SigLIP's 16 frames 0.199 ->
// 0.172-0.181 ms (bench/RESULTS.md, 2026-12-07).
// Without a soft-cap (the towers) the softmax runs in base 2 with the scale folded into one
// multiply-add a score (softmax_tile_exp2): H200, 10-minute encode, SigLIP's attention
// 319-328 ms -> 264-265 ms (bench/RESULTS.md).
#include <algorithm>

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
    // The resident kernel's K rows take it too (their reads end at HD).
    static constexpr int VS = (HD / 2) % 8 == 4 ? HD : HD + 8;
    static constexpr size_t stage_bytes = size_t(kTile) * (KS + VS) * sizeof(u16);
    // A sequence's every key, K and V, in the resident kernel.
    static size_t resident_bytes(int64_t Tk) {
        return size_t((Tk + kTile - 1) / kTile) * kTile * 2 * VS * sizeof(u16);
    }
};

// Rows first..first+n-1 of a [rows, HD] matrix into dst (pitch `pitch`, `vecs` 16-byte vectors a
// row) with cp.async by the block's threads; rows past `rows` and the padded dims are zero-filled
// (so no uninitialised value reaches an mma). The caller commits and waits.
template <int HD>
__device__ inline void stage_rows(u16* dst, int n, int pitch, int vecs, const u16* base, int64_t src_pitch,
                                  int64_t first, int64_t rows) {
    for (int i = threadIdx.x; i < n * vecs; i += blockDim.x) {
        const int r = i / vecs, c = (i % vecs) * 8;
        const bool inside = first + r < rows && c < HD;
        cp_async<16>(&dst[r * pitch + c], inside ? base + (first + r) * src_pitch + c : base, inside ? 16 : 0);
    }
}

// One warp's share of the scheme: kMT tiles of 16 query rows, their Q fragments, output, running
// max and sum in registers. kExp2: no soft-cap, the softmax in base 2 (softmax_tile_exp2).
template <int HD, class T, int kMT, bool kExp2>
struct FlashWarp {
    static constexpr int KD = FlashTile<HD>::KD;
    static constexpr int NB = HD / 8;       // 8-wide output column blocks
    static constexpr int KF = HD / 16;      // whole k16 steps of Q·Kᵀ
    static constexpr bool kHalf = HD % 16;  // and one k8 step (head dim 72)
    static_assert(HD % 8 == 0, "head dims in whole 16-byte vectors");

    uint32_t qf[kMT][KD / 16][4];  // (with kHalf the last step's first two registers only are used)
    float o[kMT][NB][4];
    float m[kMT][2], l[kMT][2];  // rows g and g+8 of each row tile

    // The Q fragments of rows 0.. of q (pitch `pitch`, shared or global memory), rows from `valid`
    // on zero; the output and the running max and sum reset.
    __device__ void start(const u16* q, int64_t pitch, int64_t valid) {
        const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
        for (int mt = 0; mt < kMT; ++mt) {
#pragma unroll
            for (int kk = 0; kk < KD / 16; ++kk) {
                const int64_t r = mt * 16 + g;
                const u16* row = q + r * pitch + kk * 16 + 2 * t;
                const bool hi = kk * 16 + 8 < HD;  // the k8 step has no columns 8..15
                qf[mt][kk][0] = r < valid ? pair_at(row) : 0u;
                qf[mt][kk][1] = r + 8 < valid ? pair_at(row + 8 * pitch) : 0u;
                qf[mt][kk][2] = hi && r < valid ? pair_at(row + 8) : 0u;
                qf[mt][kk][3] = hi && r + 8 < valid ? pair_at(row + 8 * pitch + 8) : 0u;
            }
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) o[mt][nb][0] = o[mt][nb][1] = o[mt][nb][2] = o[mt][nb][3] = 0.0f;
            m[mt][0] = m[mt][1] = -INFINITY;
            l[mt][0] = l[mt][1] = 0.0f;
        }
    }

    // Scores of the rows against the 64 keys of K tile kt (rows of pitch KP): 8 blocks of 8 keys.
    template <int KP>
    __device__ void scores(float (&s)[kMT][8][4], const u16* kt) const {
        const int lane = threadIdx.x % 32;
        const int krow = lane & 7, kcol = (lane >> 3) * 8;  // ldmatrix x4: 4 column blocks of 8 dims
#pragma unroll
        for (int nb = 0; nb < 8; ++nb) {
#pragma unroll
            for (int mt = 0; mt < kMT; ++mt) s[mt][nb][0] = s[mt][nb][1] = s[mt][nb][2] = s[mt][nb][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk + 1 < KF; kk += 2) {  // two k-steps (32 dims) per ldmatrix.x4
                uint32_t b[4];
                ldmatrix_x4(b, &kt[(nb * 8 + krow) * KP + kk * 16 + kcol]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) {
                    mma<T>(s[mt][nb], qf[mt][kk], b[0], b[1]);
                    mma<T>(s[mt][nb], qf[mt][kk + 1], b[2], b[3]);
                }
            }
            if constexpr (KF % 2 == 1) {
                constexpr int kk = KF - 1;
                uint32_t b0, b1;
                ldmatrix_x2(b0, b1, &kt[(nb * 8 + krow) * KP + kk * 16 + (kcol & 8)]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) mma<T>(s[mt][nb], qf[mt][kk], b0, b1);
            }
            if constexpr (kHalf) {
                uint32_t b0;
                ldmatrix_x1(b0, &kt[(nb * 8 + krow) * KP + KF * 16]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) mma_k8<T>(s[mt][nb], qf[mt][KF][0], qf[mt][KF][1], b0);
            }
        }
    }

    // The scores of keys k0.. through the online softmax, then their probabilities times V tile vt
    // (rows of pitch VP).
    template <int VP>
    __device__ void attend(float (&s)[kMT][8][4], int64_t k0, const u16* vt, const AttentionArgs& a) {
        const int lane = threadIdx.x % 32, t = lane % 4;
        const int vrow = (lane & 7) + ((lane >> 3) & 1) * 8, vcol = (lane >> 4) * 8;  // x4: 2 column blocks
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
                ldmatrix_x4_trans(b, &vt[(kk * 16 + vrow) * VP + nb * 8 + vcol]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) {
                    mma<T>(o[mt][nb], pf[mt][kk], b[0], b[1]);
                    mma<T>(o[mt][nb + 1], pf[mt][kk], b[2], b[3]);
                }
            }
            if constexpr (NB % 2 == 1) {
                uint32_t b0, b1;
                ldmatrix_x2_trans(b0, b1, &vt[(kk * 16 + vrow) * VP + (NB - 1) * 8]);
#pragma unroll
                for (int mt = 0; mt < kMT; ++mt) mma<T>(o[mt][NB - 1], pf[mt][kk], b0, b1);
            }
        }
    }

    // The rows' outputs, normalised, into out (rows 0.. of pitch `pitch`), rows from `valid` on dropped.
    __device__ void finish(T* out, int64_t pitch, int64_t valid) const {
        const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
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
            const int64_t row = mt * 16 + g;
#pragma unroll
            for (int nb = 0; nb < NB; ++nb) {
                const int c = nb * 8 + 2 * t;
                if (row < valid)
                    *reinterpret_cast<uint32_t*>(out + row * pitch + c) =
                        float2_to_pair<T>(o[mt][nb][0] * inv[0], o[mt][nb][1] * inv[0]);
                if (row + 8 < valid)
                    *reinterpret_cast<uint32_t*>(out + (row + 8) * pitch + c) =
                        float2_to_pair<T>(o[mt][nb][2] * inv[1], o[mt][nb][3] * inv[1]);
            }
        }
    }
};

// This block's (sequence, head) slices of q, k, v and out.
template <int HD, class T>
struct FlashPointers {
    const u16 *q, *k, *v;
    T* out;
    int64_t q_pitch, kv_pitch, out_pitch;
    __device__ explicit FlashPointers(const AttentionArgs& a) {
        const int h = blockIdx.y, kvh = h / (a.H / a.KV);
        const int64_t seq = blockIdx.z;
        out_pitch = int64_t(a.H) * HD;
        q_pitch = a.q_pitch ? a.q_pitch : out_pitch;
        kv_pitch = a.kv_pitch ? a.kv_pitch : int64_t(a.KV) * HD;
        q = static_cast<const u16*>(a.q) + seq * a.Tq * q_pitch + int64_t(h) * HD;
        k = static_cast<const u16*>(a.k) + seq * a.Tk * kv_pitch + int64_t(kvh) * HD;
        v = static_cast<const u16*>(a.v) + seq * a.Tk * kv_pitch + int64_t(kvh) * HD;
        out = static_cast<T*>(a.out) + seq * a.Tq * out_pitch + int64_t(h) * HD;
    }
};

// The streaming kernel: kWarps warps of 16·kMT query rows each; kMinBlocks: the blocks an SM
// should hold (registers).
template <int HD, class T, int kStages, int kWarps, int kMT, int kMinBlocks, bool kExp2>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) flash_kernel(AttentionArgs a) {
    constexpr int kWarpRows = 16 * kMT;
    constexpr int kRows = kWarpRows * kWarps;  // query rows per block
    using L = FlashTile<HD>;
    constexpr int KD = L::KD, KS = L::KS, VS = L::VS;
    static_assert(kStages >= 2, "a tile loads while the one before is worked on");
    extern __shared__ __align__(16) u16 flash_smem[];
    u16* const ks = flash_smem;                            // kStages K tiles; first the block's Q rows
    u16* const vs = flash_smem + kStages * kTile * KS;     // kStages V tiles: [key][d]
    const FlashPointers<HD, T> p(a);
    const int64_t q0 = int64_t(blockIdx.x) * kRows;
    const int r0 = threadIdx.x / 32 * kWarpRows;

    const int tiles = static_cast<int>((a.Tk + kTile - 1) / kTile);  // (a tower's few thousand keys)
    // Tile `it` into its stage; past the last tile an empty group keeps the count of groups
    // in flight the same at every tile.
    auto load_tile = [&](int it) {
        if (it < tiles) {
            const int st = it % kStages;
            stage_rows<HD>(ks + st * kTile * KS, kTile, KS, KD / 8, p.k, p.kv_pitch, int64_t(it) * kTile, a.Tk);
            stage_rows<HD>(vs + st * kTile * VS, kTile, VS, HD / 8, p.v, p.kv_pitch, int64_t(it) * kTile, a.Tk);
        }
        cp_async_commit();
    };

    static_assert(kRows <= kStages * kTile, "the Q rows are staged where the K tiles go");
    stage_rows<HD>(ks, kRows, KS, KD / 8, p.q, p.q_pitch, q0, a.Tq);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    FlashWarp<HD, T, kMT, kExp2> w;
    w.start(ks + r0 * KS, KS, kWarpRows);  // staged rows past Tq are zeros
    __syncthreads();

    for (int s = 0; s + 1 < kStages; ++s) load_tile(s);
    for (int it = 0; it < tiles; ++it) {
        const int st = it % kStages;
        cp_async_wait<kStages - 2>();  // this thread's copies of tile `it` landed
        // Everyone's copies landed, and every warp is done with tile it - 1: its buffer is free.
        __syncthreads();
        load_tile(it + kStages - 1);
        float s[kMT][8][4];
        w.template scores<KS>(s, ks + st * kTile * KS);
        w.template attend<VS>(s, int64_t(it) * kTile, vs + st * kTile * VS, a);
    }
    w.finish(p.out + (q0 + r0) * p.out_pitch, p.out_pitch, a.Tq - q0 - r0);
}

// The resident kernel: a block holds every key of its (sequence, head), K and V, in shared
// memory (loaded once), and its warps go through `rows_per_block` query rows kWarpRows at a time
// with no barrier after the load, so that one warp's softmax runs beside another's mma instead
// of every warp of the block meeting at each tile as in the streaming kernel. Where the keys fit
// a block (SigLIP's 729 keys of head dim 72: 216 KiB, on a Hopper).
template <int HD, class T, int kWarps, int kMT, bool kExp2>
__global__ void __launch_bounds__(kWarps * 32, 1) flash_resident_kernel(AttentionArgs a, int64_t rows_per_block) {
    constexpr int kWarpRows = 16 * kMT;
    constexpr int P = FlashTile<HD>::VS;
    extern __shared__ __align__(16) u16 flash_smem[];
    const FlashPointers<HD, T> p(a);
    const int tiles = static_cast<int>((a.Tk + kTile - 1) / kTile);
    u16* const ks = flash_smem;
    u16* const vs = flash_smem + int64_t(tiles) * kTile * P;
    stage_rows<HD>(ks, tiles * kTile, P, HD / 8, p.k, p.kv_pitch, 0, a.Tk);
    stage_rows<HD>(vs, tiles * kTile, P, HD / 8, p.v, p.kv_pitch, 0, a.Tk);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    const int64_t first = int64_t(blockIdx.x) * rows_per_block;
    const int64_t end = min(a.Tq, first + rows_per_block);
    for (int64_t r0 = first + threadIdx.x / 32 * kWarpRows; r0 < end; r0 += kWarps * kWarpRows) {
        FlashWarp<HD, T, kMT, kExp2> w;
        w.start(p.q + r0 * p.q_pitch, p.q_pitch, end - r0);
        for (int it = 0; it < tiles; ++it) {
            float s[kMT][8][4];
            w.template scores<P>(s, ks + it * kTile * P);
            w.template attend<P>(s, int64_t(it) * kTile, vs + it * kTile * P, a);
        }
        w.finish(p.out + r0 * p.out_pitch, p.out_pitch, end - r0);
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

// The resident kernel in eight warps of two row tiles (255 registers, none spilled).
template <int HD, class T, bool kExp2>
void launch_resident_as(const AttentionArgs& a, int64_t sequences, int sm_count, cudaStream_t stream) {
    constexpr int kWarps = 8, kMT = 2;
    constexpr auto kernel = flash_resident_kernel<HD, T, kWarps, kMT, kExp2>;
    // Opted into at every launch: the bytes vary with the keys, and the setting is the current
    // device's (a driver call of about a microsecond).
    const size_t smem = FlashTile<HD>::resident_bytes(a.Tk);
    VIDI_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    // Every SM busy where the (sequence, head) pairs are fewer than the SMs: their rows split
    // between blocks (each loads the keys again).
    constexpr int64_t warp_rows = 16 * kMT;
    const int64_t pairs = sequences * a.H;
    const int64_t chunks = std::min<int64_t>((sm_count + pairs - 1) / pairs, (a.Tq + warp_rows - 1) / warp_rows);
    const int64_t rows = ((a.Tq + chunks - 1) / chunks + warp_rows - 1) / warp_rows * warp_rows;
    const dim3 grid(static_cast<unsigned>((a.Tq + rows - 1) / rows), static_cast<unsigned>(a.H),
                    static_cast<unsigned>(sequences));
    kernel<<<grid, kWarps * 32, smem, stream>>>(a, rows);
}

// The resident kernel where every key of a sequence fits one block's shared memory (true: launched).
template <int HD, class T>
bool launch_resident(const AttentionArgs& a, int64_t sequences, int sm_count, cudaStream_t stream) {
    if (a.Tk <= 0 || a.Tq <= 0 || !block_fits(FlashTile<HD>::resident_bytes(a.Tk))) return false;
    if (a.softcap <= 0.0f) launch_resident_as<HD, T, true>(a, sequences, sm_count, stream);
    else launch_resident_as<HD, T, false>(a, sequences, sm_count, stream);
    return true;
}

// The streaming kernel in eight warps of kMT row tiles, or the resident one where `which` asks
// for it and the keys fit (false: `resident` asked for and nothing launched).
template <int HD, class T, int kStages, int kMT>
bool launch_mma(const AttentionArgs& a, int64_t sequences, int sm_count, FlashKernel which, cudaStream_t stream) {
    if constexpr (HD <= 72) {  // (head dim 128's rows would spill registers)
        if (which != FlashKernel::streaming && launch_resident<HD, T>(a, sequences, sm_count, stream)) return true;
    }
    if (which == FlashKernel::resident) return false;
    launch_flash<HD, T, kStages, 8, kMT, 1>(a, sequences, stream);
    return true;
}

}  // namespace

bool flash_attention(const AttentionArgs& a, int64_t sequences, int sm_count, cudaStream_t stream,
                     FlashKernel which) {
    bool launched = false;
    auto launch = [&](auto tag) {
        using T = decltype(tag);
        // Eight warps of two row tiles (256 query rows, four buffers of keys) share each K/V
        // tile, one block an SM in 250 / 232 registers (none spilled). H100, `cuda_micro
        // towers-attention` (bench/RESULTS.md, 2026-12-06): SigLIP's 16 frames 0.214 ->
        // 0.197-0.199 ms, Whisper's 4 pieces 0.231 -> 0.213 ms against eight warps of one
        // row tile, two blocks an SM. Two row tiles in 4-warp blocks alone gained nothing,
        // and a warp computing the next tile's scores before this tile's softmax lost.
        switch (a.hd) {
            case 64: launched = launch_mma<64, T, 4, 2>(a, sequences, sm_count, which, stream); break;
            case 72: launched = launch_mma<72, T, 4, 2>(a, sequences, sm_count, which, stream); break;
            case 128: launched = launch_mma<128, T, 2, 1>(a, sequences, sm_count, which, stream); break;
            default: fail("flash_attention: head dim ", a.hd, " has no kernel");
        }
    };
    if (a.act == DType::f16) launch(fp16{});
    else launch(bf16{});
    VIDI_CUDA_CHECK_LAUNCH("flash_attention");
    return launched;
}

}  // namespace vidi::cuda
