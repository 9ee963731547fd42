// Attention, FlashAttention-style: K/V tiles of 32 keys pass through shared memory once
// per block of 16 query rows, with an online softmax in f32, so the Tq×Tk score matrix
// never exists. One kernel serves prefill, decode and cross-attention:
//
// - Rows. A block works for one KV head; its "rows" are (query, head) pairs of the H/KV
//   query heads that share that KV head (GQA), so their queries reuse each K/V tile.
// - Keys. Each block first narrows the key range to what its rows can see (causal and
//   sliding-window bounds), so masked-out tiles are never loaded.
// - Split-K (flash-decoding). When rows × KV heads give too few blocks to fill the GPU
//   (few queries over many keys), the key range is cut into slices, one block per slice,
//   each writing an unnormalised partial (o, max, sum) to a workspace; a second kernel
//   merges the slices.
//
// Per warp: 4 rows. Scores: lane j owns key j of the tile and computes its full dot
// product with the 4 query rows (K rows padded to an odd number of words, so the 32
// lanes read 32 different banks; queries are broadcast reads). P·V: lane owns pairs of
// output dimensions, p_j reaches all lanes by shuffle. Math is f32 CUDA cores.
//
// Quantised media K/V (8-bit with one scale per key and KV head; 4-bit keys per channel over
// blocks of tokens with zero points and values per token in groups) are dequantised to the
// activations' 16-bit type T as a tile is loaded into shared memory (the kBits 8 and 4
// instantiations), so the rest of the kernel is the same and K/V traffic from memory drops
// to a half or a quarter; no 16-bit copy of K/V exists.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/attention_common.cuh"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerWarp = 4;
constexpr int kRowsPerBlock = kWarps * kRowsPerWarp;
constexpr int kTileKeys = 32;  // one key per lane

template <int HD_MAX>
struct Smem {
    static constexpr int kWords = HD_MAX / 2;      // 16-bit pairs per head vector
    static constexpr int kKStride = kWords + 1;    // odd: conflict-free column reads
    static constexpr size_t q_bytes = sizeof(float) * kRowsPerBlock * HD_MAX;
    static constexpr size_t k_bytes = sizeof(uint32_t) * kTileKeys * kKStride;
    static constexpr size_t v_bytes = sizeof(uint32_t) * kTileKeys * kWords;
    static constexpr size_t bytes = q_bytes + k_bytes + v_bytes;
};

// Eight int8 values at p times `scale` -> eight T in a 16-byte vector (the rounding of a
// host dequantise followed by an upload).
template <class T>
__device__ inline uint4 dequant8(const int8_t* p, float scale) {
    const uint2 c = *reinterpret_cast<const uint2*>(p);
    float f[8];
    i8x4_to_float(c.x, f);
    i8x4_to_float(c.y, f + 4);
    uint4 r;
    r.x = float2_to_pair<T>(__fmul_rn(f[0], scale), __fmul_rn(f[1], scale));
    r.y = float2_to_pair<T>(__fmul_rn(f[2], scale), __fmul_rn(f[3], scale));
    r.z = float2_to_pair<T>(__fmul_rn(f[4], scale), __fmul_rn(f[5], scale));
    r.w = float2_to_pair<T>(__fmul_rn(f[6], scale), __fmul_rn(f[7], scale));
    return r;
}

// Eight 4-bit keys of token j, head kvh, from channel d (a multiple of 8): zero + c·scale with
// the block's per-channel scales and zeros; eight values: (c − 8)·scale of their group. As T,
// rounded once (a host dequantise followed by an upload).
template <class T>
__device__ inline uint4 dequant4_key(const AttentionArgs& a, int64_t j, int kvh, int d) {
    const uint32_t c = *reinterpret_cast<const uint32_t*>(a.k4 + ((j * a.KV + kvh) * a.hd + d) / 2);
    const int64_t s0 = ((j / a.key_block) * a.KV + kvh) * a.hd + d;
    float f[8], sc[8], z[8];
    u4x8_to_float<0>(c, f);
    load8(a.k4_scale + s0, sc);
    load8(a.k4_zero + s0, z);
    uint32_t r[4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
        r[i] = float2_to_pair<T>(__fadd_rn(z[2 * i], __fmul_rn(f[2 * i], sc[2 * i])),
                                 __fadd_rn(z[2 * i + 1], __fmul_rn(f[2 * i + 1], sc[2 * i + 1])));
    return make_uint4(r[0], r[1], r[2], r[3]);
}
template <class T>
__device__ inline uint4 dequant4_value(const AttentionArgs& a, int64_t j, int kvh, int d) {
    const uint32_t c = *reinterpret_cast<const uint32_t*>(a.v4 + ((j * a.KV + kvh) * a.hd + d) / 2);
    const float scale = __half2float(a.v4_scale[(j * a.KV + kvh) * (a.hd / a.v_group) + d / a.v_group]);
    float f[8];
    u4x8_to_float<8>(c, f);
    uint32_t r[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) r[i] = float2_to_pair<T>(__fmul_rn(f[2 * i], scale), __fmul_rn(f[2 * i + 1], scale));
    return make_uint4(r[0], r[1], r[2], r[3]);
}

template <int HD_MAX, int kBits, class T>
__global__ void __launch_bounds__(kThreads) flash_attention_kernel(Problem pb) {
    using S = Smem<HD_MAX>;
    constexpr int kPairsPerLane = HD_MAX / 64;  // output dimension pairs owned by a lane
    const AttentionArgs& a = pb.a;
    extern __shared__ __align__(16) unsigned char smem[];
    float* q_s = reinterpret_cast<float*>(smem);
    uint32_t* k_s = reinterpret_cast<uint32_t*>(smem + S::q_bytes);
    uint32_t* v_s = reinterpret_cast<uint32_t*>(smem + S::q_bytes + S::k_bytes);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int G = a.H / a.KV, words = a.hd / 2, chunks = a.hd / kVec;
    const int kvh = blockIdx.y, split = blockIdx.z;
    const int64_t rows = a.Tq * G;
    const int64_t row0 = int64_t(blockIdx.x) * kRowsPerBlock;
    const int64_t row_last = min(row0 + kRowsPerBlock, rows) - 1;

    // Queries of this block, pre-multiplied by the scale, as f32.
    for (int idx = tid; idx < kRowsPerBlock * words; idx += kThreads) {
        const int r = idx / words, w = idx % words;
        const int64_t row = row0 + r;
        float2 qv = make_float2(0.0f, 0.0f);
        if (row < rows) {
            const int64_t i = row / G, h = int64_t(kvh) * G + row % G;
            const T* row_q = static_cast<const T*>(a.q) + (i * a.H + h) * a.hd;
            const uint32_t* src = reinterpret_cast<const uint32_t*>(row_q);
            qv = pair_to_float2<T>(src[w]);
            qv.x *= a.scale;
            qv.y *= a.scale;
        }
        *reinterpret_cast<float2*>(q_s + r * HD_MAX + 2 * w) = qv;
    }

    // This block's slice of the visible key tiles.
    int64_t key_lo, key_end;
    visible_keys(a, a.q_pos0 + row0 / G, a.q_pos0 + row_last / G, key_lo, key_end);
    const int64_t tiles = (key_end - key_lo + kTileKeys - 1) / kTileKeys;
    const int64_t per_split = (tiles + pb.splits - 1) / pb.splits;
    const int64_t tile_begin = split * per_split, tile_end = min(tiles, tile_begin + per_split);

    float m[kRowsPerWarp], l[kRowsPerWarp];
    float2 o[kRowsPerWarp][kPairsPerLane];
    int64_t pos[kRowsPerWarp];
    bool live[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        const int64_t row = row0 + warp * kRowsPerWarp + r;
        live[r] = row < rows;
        pos[r] = a.q_pos0 + row / G;
#pragma unroll
        for (int t = 0; t < kPairsPerLane; ++t) o[r][t] = make_float2(0.0f, 0.0f);
    }

    for (int64_t tile = tile_begin; tile < tile_end; ++tile) {
        const int64_t key0 = key_lo + tile * kTileKeys;
        __syncthreads();  // previous tile fully consumed (and q_s written, first time)
        for (int idx = tid; idx < kTileKeys * chunks; idx += kThreads) {
            const int jj = idx / chunks, c = idx % chunks;
            const int64_t j = key0 + jj;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);  // zeros: 0·V must stay 0
            if (j < key_end) {
                const int64_t off = (j * a.KV + kvh) * a.hd + c * kVec;
                if constexpr (kBits == 8) {
                    kv = dequant8<T>(a.k8 + off, a.k_scale[j * a.KV + kvh]);
                    vv = dequant8<T>(a.v8 + off, a.v_scale[j * a.KV + kvh]);
                } else if constexpr (kBits == 4) {
                    kv = dequant4_key<T>(a, j, kvh, c * kVec);
                    vv = dequant4_value<T>(a, j, kvh, c * kVec);
                } else {
                    kv = *reinterpret_cast<const uint4*>(static_cast<const T*>(a.k) + off);
                    vv = *reinterpret_cast<const uint4*>(static_cast<const T*>(a.v) + off);
                }
            }
            uint32_t* kd = k_s + jj * S::kKStride + c * 4;
            kd[0] = kv.x;
            kd[1] = kv.y;
            kd[2] = kv.z;
            kd[3] = kv.w;
            *reinterpret_cast<uint4*>(v_s + jj * S::kWords + c * 4) = vv;
        }
        __syncthreads();

        // Scores of key (key0 + lane) against this warp's rows.
        float s[kRowsPerWarp] = {};
        const uint32_t* krow = k_s + lane * S::kKStride;
        const float* qw = q_s + warp * kRowsPerWarp * HD_MAX;
#pragma unroll 4
        for (int w = 0; w < words; ++w) {
            const float2 kf = pair_to_float2<T>(krow[w]);
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
                const float2 qf = *reinterpret_cast<const float2*>(qw + r * HD_MAX + 2 * w);
                s[r] = fmaf(qf.x, kf.x, fmaf(qf.y, kf.y, s[r]));
            }
        }

        // Online softmax update.
        const int64_t j = key0 + lane;
        float p[kRowsPerWarp];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
            float sr = s[r];
            if (a.softcap > 0.0f) sr = soft_cap(sr, a.softcap);
            if (!live[r] || j >= key_end || !visible(a, pos[r], j)) sr = -INFINITY;
            const float m_new = fmaxf(m[r], warp_max(sr));
            // A row that has seen no visible key yet keeps m = -inf, l = 0, o = 0.
            p[r] = m_new == -INFINITY ? 0.0f : __expf(sr - m_new);
            const float corr = m[r] == -INFINITY ? 0.0f : __expf(m[r] - m_new);
            l[r] = l[r] * corr + warp_sum(p[r]);
            m[r] = m_new;
#pragma unroll
            for (int t = 0; t < kPairsPerLane; ++t) {
                o[r][t].x *= corr;
                o[r][t].y *= corr;
            }
        }

        // o += P · V.
        for (int jj = 0; jj < kTileKeys; ++jj) {
            float pj[kRowsPerWarp];
            bool any = false;
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
                pj[r] = __shfl_sync(0xffffffffu, p[r], jj);
                any |= pj[r] != 0.0f;
            }
            if (!any) continue;  // warp-uniform: masked keys cost no P·V work
            const uint32_t* vrow = v_s + jj * S::kWords;
#pragma unroll
            for (int t = 0; t < kPairsPerLane; ++t) {
                const int w = lane + 32 * t;
                if (w < words) {
                    const float2 vf = pair_to_float2<T>(vrow[w]);
#pragma unroll
                    for (int r = 0; r < kRowsPerWarp; ++r) {
                        o[r][t].x = fmaf(pj[r], vf.x, o[r][t].x);
                        o[r][t].y = fmaf(pj[r], vf.y, o[r][t].y);
                    }
                }
            }
        }
    }

    // Write: the normalised output, or this slice's partial for the merge kernel.
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
        if (!live[r]) continue;
        const int64_t row = row0 + warp * kRowsPerWarp + r;
        if (pb.splits == 1) {
            const int64_t i = row / G, h = int64_t(kvh) * G + row % G;
            uint32_t* dst = reinterpret_cast<uint32_t*>(static_cast<T*>(a.out) + (i * a.H + h) * a.hd);
            const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;  // no visible key: zeros
#pragma unroll
            for (int t = 0; t < kPairsPerLane; ++t) {
                const int w = lane + 32 * t;
                if (w < words) dst[w] = float2_to_pair<T>(o[r][t].x * inv, o[r][t].y * inv);
            }
        } else {
            const int64_t slot = (int64_t(split) * a.KV + kvh) * rows + row;
            float2* dst = reinterpret_cast<float2*>(pb.part_o + slot * a.hd);
#pragma unroll
            for (int t = 0; t < kPairsPerLane; ++t) {
                const int w = lane + 32 * t;
                if (w < words) dst[w] = o[r][t];
            }
            if (lane == 0) {
                pb.part_ml[slot * 2] = m[r];
                pb.part_ml[slot * 2 + 1] = l[r];
            }
        }
    }
}

// One block per (KV head, row): merges the slices' partials with their softmax weights.
// Warp 0 turns the slices' maxima and sums into one weight per slice (in shared memory);
// then each thread sums its output dimensions over the slices, several loads in flight
// (one slice after another, each waiting for its load, cost ~25 µs at 50 slices).
constexpr int kMergeThreads = 256;

template <class T>
__global__ void __launch_bounds__(kMergeThreads) merge_splits_kernel(Problem pb) {
    __shared__ float weight[kAttentionMaxSplits];
    __shared__ float inv_sum;
    dependents_may_start();
    const AttentionArgs& a = pb.a;
    const int G = a.H / a.KV;
    const int64_t rows = a.Tq * G;
    const int64_t gr = blockIdx.x;  // kvh * rows + row
    const int kvh = static_cast<int>(gr / rows);
    const int64_t row = gr % rows;
    const int64_t first_slot = int64_t(kvh) * rows + row, slot_step = int64_t(a.KV) * rows;
    if (threadIdx.x < 32) {
        float m_all = -INFINITY;
        for (int s = threadIdx.x; s < pb.splits; s += 32) m_all = fmaxf(m_all, pb.part_ml[(first_slot + s * slot_step) * 2]);
        m_all = warp_max(m_all);
        float l_all = 0.0f;
        for (int s = threadIdx.x; s < pb.splits; s += 32) {
            const float* ml = pb.part_ml + (first_slot + s * slot_step) * 2;
            const float w = ml[0] == -INFINITY ? 0.0f : __expf(ml[0] - m_all);
            weight[s] = w;
            l_all += w * ml[1];
        }
        l_all = warp_sum(l_all);
        if (threadIdx.x == 0) inv_sum = l_all > 0.0f ? 1.0f / l_all : 0.0f;
    }
    __syncthreads();
    const int64_t i = row / G, h = int64_t(kvh) * G + row % G, out0 = (i * a.H + h) * a.hd;
    for (int d = threadIdx.x; d < a.hd; d += blockDim.x) {
        float acc = 0.0f;
#pragma unroll 8
        for (int s = 0; s < pb.splits; ++s) acc += weight[s] * pb.part_o[(first_slot + s * slot_step) * a.hd + d];
        attention_out<T>(a, out0 + d, acc * inv_sum);
    }
}

template <int HD_MAX, int kBits, class T>
void launch_flash(const Problem& pb, cudaStream_t stream) {
    const size_t smem = Smem<HD_MAX>::bytes;
    // Above 48 KB (hd 256) a block needs the opt-in; cheap, and per device, so set each time.
    VIDI_CUDA_CHECK(cudaFuncSetAttribute(flash_attention_kernel<HD_MAX, kBits, T>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    const int64_t rows = pb.a.Tq * (pb.a.H / pb.a.KV);
    const dim3 grid(static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock), pb.a.KV, pb.splits);
    flash_attention_kernel<HD_MAX, kBits, T><<<grid, kThreads, smem, stream>>>(pb);
    VIDI_CUDA_CHECK_LAUNCH("attention");
}

template <int kBits, class T>
void launch_for_head_dim(const Problem& pb, cudaStream_t stream) {
    if (pb.a.hd <= 64)
        launch_flash<64, kBits, T>(pb, stream);
    else if (pb.a.hd <= 128)
        launch_flash<128, kBits, T>(pb, stream);
    else
        launch_flash<256, kBits, T>(pb, stream);
}

// The tiled kernel (and the merge of its or the few-row kernel's slices) for the activations' type.
template <class T>
void launch_attention(const Problem& pb, cudaStream_t stream) {
    const AttentionArgs& a = pb.a;
    if (few_rows(a))
        attention_decode(pb, stream);
    else if (a.k8)
        launch_for_head_dim<8, T>(pb, stream);
    else if (a.k4)
        launch_for_head_dim<4, T>(pb, stream);
    else
        launch_for_head_dim<16, T>(pb, stream);
    if (pb.splits > 1) merge_attention_splits(pb, stream);
}

int64_t row_blocks(const AttentionArgs& a) {
    return (a.Tq * (a.H / a.KV) + kRowsPerBlock - 1) / kRowsPerBlock;
}

}  // namespace

void merge_attention_splits(const Problem& pb, cudaStream_t stream) {
    const AttentionArgs& a = pb.a;
    const unsigned merged_rows = static_cast<unsigned>(int64_t(a.KV) * a.Tq * (a.H / a.KV));
    if (a.act == DType::f16) merge_splits_kernel<fp16><<<merged_rows, kMergeThreads, 0, stream>>>(pb);
    else merge_splits_kernel<bf16><<<merged_rows, kMergeThreads, 0, stream>>>(pb);
    VIDI_CUDA_CHECK_LAUNCH("attention merge");
}

int attention_splits(const AttentionArgs& a, int sm_count) {
    if (few_rows(a)) return attention_decode_splits(a, sm_count);
    const int64_t blocks = row_blocks(a) * a.KV;
    const int64_t target = int64_t(sm_count) * 4;  // about 4 resident blocks per SM at hd 256
    if (blocks >= target / 2) return 1;
    // Keys the busiest block sees; each slice keeps at least 4 tiles of work.
    int64_t lo, end;
    visible_keys(a, a.q_pos0, a.q_pos0 + a.Tq - 1, lo, end);
    const int64_t tiles = (end - lo + kTileKeys - 1) / kTileKeys;
    const int64_t by_work = tiles / 4, by_fill = (target + blocks - 1) / blocks;
    return static_cast<int>(std::clamp<int64_t>(std::min(by_work, by_fill), 1, kAttentionMaxSplits));
}

size_t attention_workspace_bytes(const AttentionArgs& a, int splits) {
    if (splits <= 1) return 0;
    const size_t slots = size_t(splits) * a.KV * size_t(a.Tq) * (a.H / a.KV);
    return slots * (size_t(a.hd) + 2) * sizeof(float);
}

bool attention_can_accumulate(const AttentionArgs& a) { return few_rows(a); }

void attention(const AttentionArgs& a, int splits, void* workspace, cudaStream_t stream) {
    VIDI_CHECK(!a.accumulate || few_rows(a), "attention: only the few-row kernel adds into its output");
    VIDI_CHECK(!a.q_pos || few_rows(a), "attention: a position read on the device needs at most ", kDecodeMaxRows,
               " query rows per KV head (", a.Tq, " queries × ", a.H / a.KV, " heads)");
    if (a.Tq == 0 || a.H == 0 || a.hd == 0) return;
    const Problem pb = split_problem(a, splits, workspace);
    if (a.act == DType::f16) launch_attention<fp16>(pb, stream);
    else launch_attention<bf16>(pb, stream);
}

}  // namespace vidi::cuda
