// A decoding step's cross-attention (AttentionArgs::step_rows): one query of each sequence of
// a batch, G heads each (2 rows per KV head for Vidi1.5-9B), over a video's media K/V, on
// tensor cores (mma.sync m16n8k16, 16-bit operands, f32 accumulation; the probabilities are
// rounded to T for P·V, as FlashAttention does). Memory bound: every K/V byte is read once,
// and the speed is set by how many bytes are in flight.
//
// - Transposed products, so that few rows cost little: scores as Sᵀ = K·Qᵀ (16 keys × 8 rows:
//   K is the A operand, Qᵀ the B operand, both by ldmatrix from shared memory, where the
//   block's query rows stay for the whole call) and outputs as Oᵀ += Vᵀ·Pᵀ (16 dims × 8 rows,
//   64 registers at head dim 256 where a 16-row O took 128). One movmatrix turns each 8×8
//   block of Sᵀ's probabilities into Pᵀ's B fragment.
// - A block owns RT row tiles of 8 rows (query, head pairs of one KV head) and one slice of
//   the keys (split-K). Its kLanes lanes split the slice's 16-key chunks round robin; each
//   keeps its own online softmax, and the lanes' partials merge through shared memory at the
//   end, always in the same order. A lane is one warp per row tile; the RT warps of a lane
//   share its chunks (one copy, a named barrier).
// - Each lane streams its chunks through its own ring of kRing items in shared memory with
//   cp.async, kRing − 1 items ahead of the one its warps work on: an item is 16 keys of K or V
//   and up to 128 dimensions (at head dim 256, 4 KiB: a chunk is two K items, then two V
//   items; blocks of four row tiles take whole rows). The rings fill the shared memory with
//   copies in flight, as the few-row kernel's do (attention_decode.cu): on an H200 this reads
//   66 000 tokens' K/V for one sequence at ~3.9 TB/s, where the tiles of 32 keys that a block's
//   two warps shared (the layout before, ~83 KiB a block) read at ~2.5 TB/s.
// - Rows are independent: a row's bits depend on its query, the split count (a function of the
//   keys), the chunks' order and the merge order, never on the other rows or on RT, so a
//   sequence gets the same bits alone or in a batch (issue 19).
// - Rows in shared memory (items and query rows) are 16-byte units swizzled (unit u of row r at
//   u ^ (r & 7)), so that ldmatrix reads eight rows' units from distinct banks.
#include <cuda_runtime.h>

#include <algorithm>

#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/early_launch.h"
#include "backend/cuda/mma.cuh"

namespace vidi::cuda {
namespace {

constexpr int kLanes = 4;       // warps that split a row tile's chunks
constexpr int kChunkKeys = 16;  // keys a chunk (the m of K·Qᵀ and the k of Vᵀ·Pᵀ)
constexpr int kTileRows = 8;    // rows a warp owns (the n of the products)

// RT row tiles a block: 1 (up to 4 sequences at G = 2; three blocks an H200 SM), 2 (two blocks)
// or 4 (one block of 16 warps, on cards that give a block ~210 KiB of shared memory). The
// ring's depth and its items' width only set how many copies are in flight and how often a
// lane's warps meet: they fill what the blocks an SM holds leave, and change no bits. (Four
// warps meeting at every item of 128 dimensions read 66 000 tokens' K/V for 32 rows in 0.257 ms
// on an H200; at items of the whole head dim, in 0.225 ms.)
template <int HD, int RT>
struct StepShape {
    static constexpr int kThreads = RT * kLanes * 32;
    static constexpr int kMinBlocks = RT == 1 ? 3 : RT == 2 ? 2 : 1;  // an SM, for the register budget
    static constexpr int kRing = RT == 1 ? 4 : RT == 2 ? 5 : 6;  // items a lane's ring holds
    static constexpr int kItemDims = RT == 4 || HD < 128 ? HD : 128;
    static constexpr int kParts = HD / kItemDims;  // K (then V) items of a chunk
    static constexpr int kItem = kChunkKeys * kItemDims;  // u16 values
    static constexpr int kQ = RT * kTileRows * HD;        // u16: the block's query rows
    static constexpr size_t kTileBytes = sizeof(u16) * (kQ + kLanes * kRing * kItem);
    // The merge, after the last chunk, a row tile at a time: each lane's outputs (8 rows at a
    // pitch of HD + 4 floats), then its rows' max and sum.
    static constexpr int kMergePitch = HD + 4;
    static constexpr size_t kMergeBytes = sizeof(float) * kLanes * kTileRows * (kMergePitch + 2);
    static constexpr size_t kBytes = kTileBytes > kMergeBytes ? kTileBytes : kMergeBytes;
    static_assert(HD % 32 == 0 && kItemDims % 32 == 0, "two k-steps of 16 per score loop");
};

// Where 16-byte unit u of row r of a matrix with `width` values a row lives (u16 offset).
template <int width>
__device__ inline int swizzled(int r, int u) {
    constexpr int units = width / 8, mask = (units < 8 ? units : 8) - 1;
    return r * width + ((u ^ (r & mask)) * 8);
}

// The RT warps of a lane meet (named barrier 1 + lane; 0 is __syncthreads').
template <int RT>
__device__ inline void lane_sync(int lane_id) {
    if constexpr (RT == 1) __syncwarp();
    else asm volatile("bar.sync %0, %1;\n" ::"r"(1 + lane_id), "n"(RT * 32) : "memory");
}

// The 8×8 matrix of 16-bit pairs held as mma's C layout (lane (g, t): row g, columns 2t, 2t + 1),
// transposed in the same layout.
__device__ inline uint32_t transpose8x8(uint32_t x) {
    uint32_t y;
    asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
    return y;
}

template <int HD, int RT, class T>
__global__ void __launch_bounds__(StepShape<HD, RT>::kThreads, StepShape<HD, RT>::kMinBlocks)
    step_cross_kernel(Problem pb) {
    using S = StepShape<HD, RT>;
    constexpr int kRing = S::kRing;
    constexpr int KS = HD / 16;                  // k-steps of a score, m-tiles of an output
    constexpr int PartSteps = S::kItemDims / 16;  // of them in one item
    constexpr int kItems = 2 * S::kParts;         // items of a chunk
    extern __shared__ __align__(16) unsigned char smem[];

    const AttentionArgs& a = pb.a;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int rt = warp / kLanes, kl = warp % kLanes;
    u16* qs = reinterpret_cast<u16*>(smem);  // [RT][8 rows][HD]
    u16* ring = qs + S::kQ + kl * kRing * S::kItem;
    const int G = a.H / a.KV, kvh = blockIdx.y, split = blockIdx.z;
    const int64_t rows = a.Tq * G, row0 = (int64_t(blockIdx.x) * RT + rt) * kTileRows;
    const int64_t kv_pitch = int64_t(a.KV) * HD;
    const u16* kbase = static_cast<const u16*>(a.k) + int64_t(kvh) * HD;
    const u16* vbase = static_cast<const u16*>(a.v) + int64_t(kvh) * HD;

    // This slice's chunks (a function of the keys and the split count only), and this lane's.
    const int64_t chunks = (a.Tk + kChunkKeys - 1) / kChunkKeys;
    const int64_t per_split = (chunks + pb.splits - 1) / pb.splits;
    const int64_t c_begin = min(chunks, int64_t(split) * per_split), c_end = min(chunks, c_begin + per_split);
    const int own = c_end - c_begin > kl ? static_cast<int>((c_end - c_begin - kl + kLanes - 1) / kLanes) : 0;
    const int items = own * kItems;
    auto chunk_key0 = [&](int j) { return (c_begin + kl + int64_t(j) * kLanes) * kChunkKeys; };  // of own chunk j

    // Item n of this lane into its ring slot: chunk n / kItems, K then V, kParts each; rows past
    // the last key zero-filled (their scores are masked; zero values keep NaN out of P·V).
    // Every call commits one group (empty past the last item).
    auto issue = [&](int n, int slot_index) {
        if (n < items) {
            const int64_t key0 = chunk_key0(n / kItems);
            const int kind = static_cast<int>(n % kItems);
            const u16* base = (kind < S::kParts ? kbase : vbase) + (kind % S::kParts) * S::kItemDims;
            u16* slot = ring + slot_index * S::kItem;
            constexpr int units = S::kItemDims / 8;
            for (int i = rt * 32 + lane; i < kChunkKeys * units; i += RT * 32) {
                const int r = i / units, u = i % units;
                const bool inside = key0 + r < a.Tk;
                cp_async<16>(&slot[swizzled<S::kItemDims>(r, u)], base + (inside ? (key0 + r) * kv_pitch + u * 8 : 0),
                             inside ? 16 : 0);
            }
        }
        cp_async_commit();
    };

    const bool active = row0 < rows;  // warp-uniform
    float o[KS][4];                   // Oᵀ: dims 16·mt + g (+ 8) × rows 2t, 2t + 1
#pragma unroll
    for (int mt = 0; mt < KS; ++mt) o[mt][0] = o[mt][1] = o[mt][2] = o[mt][3] = 0.0f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows 2t and 2t + 1
    float se[4], so[4];       // Sᵀ's even and odd k-steps (two chains of mma)
    uint32_t pt[2];           // Pᵀ's B fragments: keys 2t, 2t + 1 and 2t + 8, 2t + 9 of row g
    // ldmatrix row addresses of a 16 × 16 A fragment: matrices (keys 0-7, 8-15) × (units u, u + 1)
    // for K, and (units u, u + 1) × (keys 0-7, 8-15) transposed for Vᵀ; of Qᵀ's B fragments of
    // two k-steps: rows 0-7 × units u .. u + 3.
    const int krow = (lane & 7) + ((lane >> 3) & 1) * 8, kunit = lane >> 4;
    const int vrow = (lane & 7) + (lane >> 4) * 8, vunit = (lane >> 3) & 1;
    const u16* qt = qs + rt * kTileRows * HD;

    // The ring's first items, then the block's query rows (zero past the last row), all in
    // before the first item is used. Early launch: the media K/V is there before this step
    // began; the query rows are the q GEMV's, which may still be running until the wait.
    dependents_may_start();
    for (int i = 0; i < kRing - 1; ++i) issue(i, i);
    dependency_wait();
    for (int i = threadIdx.x; i < RT * kTileRows * (HD / 8); i += S::kThreads) {
        const int r = i / (HD / 8), u = i % (HD / 8);
        const int64_t row = int64_t(blockIdx.x) * RT * kTileRows + r;
        const bool inside = row < rows;
        const u16* src = static_cast<const u16*>(a.q);
        if (inside) src += ((row / G) * a.H + int64_t(kvh) * G + row % G) * HD + u * 8;
        cp_async<16>(&qs[(r / kTileRows) * kTileRows * HD + swizzled<HD>(r % kTileRows, u)], src, inside ? 16 : 0);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    int use = 0, fill = kRing - 1;  // ring slots of item n and of item n + kRing - 1
    for (int j = 0; j < own; ++j)
#pragma unroll
    for (int kind = 0; kind < kItems; ++kind) {  // unrolled: registers indexed by part stay registers
        const int n = j * kItems + kind;
        const int part = kind % S::kParts;
        cp_async_wait<kRing - 2>();  // this thread's copies of item n are in
        lane_sync<RT>(kl);           // everyone's are, and everyone is done with item n - 1
        issue(n + kRing - 1, fill);  // into item n - 1's slot
        const u16* it = ring + use * S::kItem;
        fill = use;
        use = use + 1 == kRing ? 0 : use + 1;
        if (!active) continue;
        if (kind < S::kParts) {
            if (part == 0)
#pragma unroll
                for (int e = 0; e < 4; ++e) se[e] = so[e] = 0.0f;
#pragma unroll
            for (int k = 0; k < PartSteps; k += 2) {
                uint32_t ka[4], kb[4], q[4];
                ldmatrix_x4(q, &qt[swizzled<HD>(lane & 7, 2 * (part * PartSteps + k) + (lane >> 3))]);
                ldmatrix_x4(ka, &it[swizzled<S::kItemDims>(krow, 2 * k + kunit)]);
                ldmatrix_x4(kb, &it[swizzled<S::kItemDims>(krow, 2 * (k + 1) + kunit)]);
                mma<T>(se, ka, q[0], q[1]);
                mma<T>(so, kb, q[2], q[3]);
            }
            if (part == S::kParts - 1) {
                // Sᵀ (keys g, g + 8 × rows 2t, 2t + 1) as the softmax's 16 × 8 tile, transposed
                // back: s[0] holds (key g: rows 2t, 2t + 1; key g + 8: the same).
                const int64_t key0 = chunk_key0(j);
                float s[4];
#pragma unroll
                for (int e = 0; e < 4; ++e) s[e] = se[e] + so[e];
                float mx[2] = {m[0], m[1]};
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    float x = s[e] * a.scale;
                    if (a.softcap > 0.0f) x = soft_cap(x, a.softcap);
                    if (key0 + g + (e >> 1) * 8 >= a.Tk) x = -INFINITY;
                    s[e] = x;
                    mx[e & 1] = fmaxf(mx[e & 1], x);
                }
                float alpha[2];
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 4));
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 8));
                    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 16));
                    alpha[r] = __expf(m[r] - mx[r]);
                    m[r] = mx[r];
                    l[r] *= alpha[r];
                }
                // Once the maxima settle, alpha is 1 and the outputs keep their bits: skip the pass.
                if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f))
#pragma unroll
                    for (int mt = 0; mt < KS; ++mt) {
                        o[mt][0] *= alpha[0];
                        o[mt][1] *= alpha[1];
                        o[mt][2] *= alpha[0];
                        o[mt][3] *= alpha[1];
                    }
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    s[e] = __expf(s[e] - m[e & 1]);
                    l[e & 1] += s[e];
                }
                pt[0] = transpose8x8(float2_to_pair<T>(s[0], s[1]));
                pt[1] = transpose8x8(float2_to_pair<T>(s[2], s[3]));
            }
        } else {
#pragma unroll
            for (int k = 0; k < PartSteps; ++k) {
                uint32_t va[4];
                ldmatrix_x4_trans(va, &it[swizzled<S::kItemDims>(vrow, 2 * k + vunit)]);
                mma<T>(o[part * PartSteps + k], va, pt[0], pt[1]);
            }
        }
    }
    cp_async_wait<0>();  // only empty groups are left, but the shared memory is about to be reused
    __syncthreads();

    // Each row's sum over the 8 threads that hold its keys.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 4);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 8);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 16);
    }
    constexpr int MP = S::kMergePitch;
    float* merge_o = reinterpret_cast<float*>(smem);               // [kLanes][8 rows][MP]
    float* merge_ml = merge_o + kLanes * kTileRows * MP;           // [kLanes][8 rows][2]
    for (int round = 0; round < RT; ++round) {
        if (rt == round) {
#pragma unroll
            for (int mt = 0; mt < KS; ++mt)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    merge_o[(kl * kTileRows + 2 * t + (e & 1)) * MP + 16 * mt + g + (e >> 1) * 8] = o[mt][e];
            if (g == 0)
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    merge_ml[(kl * kTileRows + 2 * t + r) * 2] = m[r];
                    merge_ml[(kl * kTileRows + 2 * t + r) * 2 + 1] = l[r];
                }
        }
        __syncthreads();
        // The lanes of each row merged in order (a lane with no key leaves m = -inf).
        const int64_t tile0 = (int64_t(blockIdx.x) * RT + round) * kTileRows;
        for (int i = threadIdx.x; i < kTileRows * HD; i += S::kThreads) {
            const int r = i / HD, d = i % HD;
            const int64_t row = tile0 + r;
            if (row >= rows) continue;
            float mm = -INFINITY;
#pragma unroll
            for (int w = 0; w < kLanes; ++w) mm = fmaxf(mm, merge_ml[(w * kTileRows + r) * 2]);
            float acc = 0.0f, ll = 0.0f;
#pragma unroll
            for (int w = 0; w < kLanes; ++w) {
                const float mw = merge_ml[(w * kTileRows + r) * 2];
                if (mw == -INFINITY) continue;
                const float c = __expf(mw - mm);
                acc += merge_o[(w * kTileRows + r) * MP + d] * c;
                ll += merge_ml[(w * kTileRows + r) * 2 + 1] * c;
            }
            write_merged_row<T>(a, pb, kvh, split, row, d, acc, mm, ll);
        }
        __syncthreads();
    }
}

// The instance's launch setup (its shared-memory opt-in, on first use) and how many of its
// blocks one SM holds.
template <int HD, int RT, class T>
int resident_blocks() {
    return resident_blocks_of<step_cross_kernel<HD, RT, T>>(StepShape<HD, RT>::kThreads, StepShape<HD, RT>::kBytes);
}

template <int HD, int RT, class T>
void launch(const Problem& pb, cudaStream_t stream) {
    using S = StepShape<HD, RT>;
    resident_blocks<HD, RT, T>();
    const int64_t rows = pb.a.Tq * (pb.a.H / pb.a.KV), per_block = RT * kTileRows;
    const dim3 grid(static_cast<unsigned>((rows + per_block - 1) / per_block), static_cast<unsigned>(pb.a.KV),
                    static_cast<unsigned>(pb.splits));
    launch_early(step_cross_kernel<HD, RT, T>, grid, S::kThreads, S::kBytes, stream, pb);
    VIDI_CUDA_CHECK_LAUNCH("step cross-attention");
}

// As few row tiles a block as the rows need, so that each chunk is read once for up to 32
// rows (16 sequences at G = 2); four tiles only where the card has the shared memory for
// their ring (else blocks of two, which read each chunk once for 16 rows). A row's work is the
// same in any of them.
template <int HD, class T>
void launch_rows(const Problem& pb, cudaStream_t stream) {
    const int64_t rows = pb.a.Tq * (pb.a.H / pb.a.KV);
    if (rows <= kTileRows) launch<HD, 1, T>(pb, stream);
    else if (rows <= 2 * kTileRows || !block_fits(StepShape<HD, 4>::kBytes)) launch<HD, 2, T>(pb, stream);
    else launch<HD, 4, T>(pb, stream);
}

template <class T>
void launch_for_head_dim(const Problem& pb, cudaStream_t stream) {
    switch (pb.a.hd) {
        case 32: return launch_rows<32, T>(pb, stream);
        case 64: return launch_rows<64, T>(pb, stream);
        case 128: return launch_rows<128, T>(pb, stream);
        case 256: return launch_rows<256, T>(pb, stream);
        default: fail("step cross-attention: head dim ", pb.a.hd, " has no kernel");
    }
}

// Blocks an SM holds of the one-row-tile instance: a function of the head dim and dtype only.
template <class T>
int one_tile_resident_blocks(int hd) {
    switch (hd) {
        case 32: return resident_blocks<32, 1, T>();
        case 64: return resident_blocks<64, 1, T>();
        case 128: return resident_blocks<128, 1, T>();
        default: return resident_blocks<256, 1, T>();
    }
}

}  // namespace

int step_cross_attention_splits(const AttentionArgs& a, int sm_count) {
    // Never a function of the rows: one wave of one-row-tile blocks, each lane at least 4 chunks.
    const int kv = std::max(1, a.KV);
    const int64_t chunks = (a.Tk + kChunkKeys - 1) / kChunkKeys;
    const int resident =
        a.act == DType::f16 ? one_tile_resident_blocks<fp16>(a.hd) : one_tile_resident_blocks<bf16>(a.hd);
    const int64_t by_fill = std::max<int64_t>(1, int64_t(sm_count) * resident / kv), by_work = chunks / (4 * kLanes);
    return static_cast<int>(std::clamp<int64_t>(std::min(by_fill, by_work), 1, kAttentionMaxSplits));
}

void step_cross_attention(const Problem& pb, cudaStream_t stream) {
    if (pb.a.act == DType::f16) launch_for_head_dim<fp16>(pb, stream);
    else launch_for_head_dim<bf16>(pb, stream);
}

}  // namespace vidi::cuda
