// Attention for few query rows over many keys: a decoding step (one query, G heads per KV
// head) or a short prompt against the media K/V. Memory bound: every K/V byte is read once,
// and the speed is set by how many bytes are in flight while the warps compute.
//
// - Block: one KV head and one slice of the keys (split-K); its 4 warps take interleaved
//   tiles of 32 keys and keep their own online softmax, merged through shared memory at
//   the end (and across slices by the merge kernel of attention.cu).
// - Each warp streams its tiles' rows, 8 keys a chunk (a tile: 4 chunks of K, then 4 of V),
//   into its own ring of kRing chunks in shared memory with cp.async, kRing - 1 chunks ahead
//   of the one it works on, so copies stay in flight while it computes. (Loading 16 rows into
//   registers and then using them read K/V at ~1.4 TB/s on an H100.)
// - Lanes own hd/32 head dimensions (8 at hd 256: one 16-byte 16-bit, 8-byte int8 or 4-byte
//   int4 word of a row), so the warp reads a row from shared memory without bank conflicts.
// - Scores: each lane dots its dimensions of a chunk's 8 keys with the queries (kept in
//   registers); one butterfly sums the 8 partials over the warp (10 shuffles, not 40) and the
//   score of the tile's key j lands in lane j.
// - P·V: each p_j reaches the lanes by shuffle.
// - int8 K/V: the key's scale multiplies its score, the value's scale its weight p_j.
// - int4 K/V: a lane holds its dimensions' key scales and zeros for the block of the tile
//   (loaded a tile ahead) and dequantises each key as zero + c·scale; the values' group scales
//   travel with each V chunk in the ring (8 bytes a key at most), and p_j·scale multiplies the
//   codes (c − 8).
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
constexpr int kChunkKeys = 8;
constexpr int kChunksPerTile = kTileKeys / kChunkKeys;
constexpr int kItemsPerTile = 2 * kChunksPerTile;  // K chunks, then V chunks
constexpr int kRing = 4;                           // chunks per warp in shared memory
constexpr int kRows = static_cast<int>(kDecodeMaxRows);

// Shared memory of one block: each warp's ring of chunks (rows at a pitch of HD values; with
// 4-bit K/V the chunk's value scales after its rows), later reused for merging the warps'
// outputs.
constexpr int kValueScaleBytes = 8;  // the most bytes of value scales a 4-bit key has (4 groups)
template <int HD, int R, int kBits>
struct Smem {
    static constexpr int kPitch = HD * kBits / 8;  // bytes per row
    static constexpr int kScaleOffset = kChunkKeys * kPitch;
    static constexpr int kChunkBytes = kScaleOffset + (kBits == 4 ? kChunkKeys * kValueScaleBytes : 0);
    static constexpr int kRingBytes = kWarps * kRing * kChunkBytes;
    static constexpr int kMergeBytes = kWarps * R * (HD + 2) * 4;  // o, m, l per warp and row
    static constexpr int kBytes = kRingBytes > kMergeBytes ? kRingBytes : kMergeBytes;
};

// The word that holds a lane's N values of a row (N = 2, 4 or 8; 16-bit, int8 or int4).
template <int kBits, int N>
struct Raw {
    static constexpr int kBytes = N * kBits / 8;
    using Word = std::conditional_t<
        kBytes == 16, uint4,
        std::conditional_t<kBytes == 8, uint2,
                           std::conditional_t<kBytes == 4, uint32_t,
                                              std::conditional_t<kBytes == 2, unsigned short, unsigned char>>>>;
};

// This lane's N values of a row in shared memory (int8, int4 codes less kBias, or the
// activations' type T) as floats (zeros if it owns none).
template <int kBits, int N, class T, int kBias = 0>
__device__ inline void row_values(const char* row, int d_lane, bool owns_dims, float* f) {
    using W = typename Raw<kBits, N>::Word;
    W raw{};
    if (owns_dims) raw = *reinterpret_cast<const W*>(row + d_lane * kBits / 8);
    uint32_t w[(Raw<kBits, N>::kBytes + 3) / 4] = {};
    memcpy(w, &raw, sizeof(raw));
    if constexpr (kBits == 4) {
        float t[8];
        u4x8_to_float<kBias>(w[0], t);
#pragma unroll
        for (int i = 0; i < N; ++i) f[i] = owns_dims ? t[i] : 0.0f;
    } else if constexpr (kBits == 8) {
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
            const float2 p = pair_to_float2<T>(w[i]);
            f[2 * i] = p.x;
            f[2 * i + 1] = p.y;
        }
    }
}

// Sums each of p[0..7] over the warp by halving: the sum of p[k] lands in lanes 4k..4k+3.
__device__ inline float warp_sum8(const float (&p)[8], int lane) {
    float a[4], b[2];
    const bool hi16 = lane & 16, hi8 = lane & 8, hi4 = lane & 4;
#pragma unroll
    for (int i = 0; i < 4; ++i)  // lanes with bit 4 keep p[4..7], the others p[0..3]
        a[i] = (hi16 ? p[i + 4] : p[i]) + __shfl_xor_sync(0xffffffffu, hi16 ? p[i] : p[i + 4], 16);
#pragma unroll
    for (int i = 0; i < 2; ++i)
        b[i] = (hi8 ? a[i + 2] : a[i]) + __shfl_xor_sync(0xffffffffu, hi8 ? a[i] : a[i + 2], 8);
    float c = (hi4 ? b[1] : b[0]) + __shfl_xor_sync(0xffffffffu, hi4 ? b[0] : b[1], 4);
    c += __shfl_xor_sync(0xffffffffu, c, 2);
    return c + __shfl_xor_sync(0xffffffffu, c, 1);
}

// The rows one warp streams: item n is chunk n % 4 of the K (then V) rows of its tile n / 8.
// A lane copies `unit` bytes (16, or 8 where int8 rows are not 16-byte multiples) at `off` of
// rows u0, u0 + u_step, ... of a chunk: one row needs row_bytes / unit lanes. With 4-bit
// values, lanes 0..7 also copy their key's group scales (scale_bytes, 4 or 8) into the chunk.
struct WarpStream {
    const char* k;
    const char* v;
    int64_t row_stride;  // bytes from one key's row of this KV head to the next
    const char* v_scales = nullptr;  // 4-bit values: this KV head's first key's scales
    int64_t scale_stride = 0;        // bytes from one key's scales to the next
    int scale_bytes = 0, scale_offset = 0;
    int64_t key_lo, key_end, first_tile;
    int tile_step;
    int64_t items;
    int unit, off, u0, u_step;

    __device__ void init_lane(int lane, int row_bytes, bool unit16) {
        unit = unit16 ? 16 : 8;
        const int lanes_per_row = row_bytes / unit;  // at most 32: rows are at most 512 bytes
        u_step = 32 / lanes_per_row;
        u0 = lane / lanes_per_row;
        off = (lane % lanes_per_row) * unit;
        if (u0 >= u_step) u0 = kChunkKeys;  // a lane left over: copies nothing
    }
    __device__ int64_t key0(int64_t n) const {
        return key_lo + (first_tile + (n / kItemsPerTile) * tile_step) * kTileKeys + (n % kChunksPerTile) * kChunkKeys;
    }
    // Queues the copy of item n into `slot` (zeros for keys past the end), then commits a group
    // (empty past the last item, so that every wait counts the same number of groups).
    __device__ void issue(int64_t n, char* slot, int pitch) const {
        if (n < items) {
            const bool values = (n % kItemsPerTile) >= kChunksPerTile;
            const char* base = values ? v : k;
            const int64_t k0 = key0(n);
            for (int u = u0; u < kChunkKeys; u += u_step) {
                const bool in = k0 + u < key_end;
                const char* src = base + (in ? (k0 + u) * row_stride : 0) + off;
                if (unit == 16) cp_async<16>(slot + u * pitch + off, src, in ? 16 : 0);
                else cp_async<8>(slot + u * pitch + off, src, in ? 8 : 0);
            }
            const int lane = threadIdx.x & 31;
            if (values && v_scales && lane < kChunkKeys) {
                const bool in = k0 + lane < key_end;
                const char* src = v_scales + (in ? (k0 + lane) * scale_stride : 0);
                char* dst = slot + scale_offset + lane * kValueScaleBytes;
                if (scale_bytes == 8) cp_async<8>(dst, src, in ? 8 : 0);
                else cp_async<4>(dst, src, in ? 4 : 0);
            }
        }
        cp_async_commit();
    }
};

// The row of KV head kvh's first key of a K or V operand (16-bit, int8 or int4 codes).
template <int kBits>
__device__ inline const char* head_rows(const AttentionArgs& a, bool values, int kvh) {
    const void* base = kBits == 16 ? (values ? a.v : a.k)
                       : kBits == 8 ? static_cast<const void*>(values ? a.v8 : a.k8)
                                    : static_cast<const void*>(values ? a.v4 : a.k4);
    return static_cast<const char*>(base) + int64_t(kvh) * a.hd * kBits / 8;
}

template <int HD, int R, int kBits, class T>
__global__ void __launch_bounds__(kThreads) decode_attention_kernel(Problem pb, bool unit16, StepRows step) {
    using S = Smem<HD, R, kBits>;
    constexpr int kDims = HD / 32;  // head dimensions per lane (scores and outputs alike)
    extern __shared__ __align__(16) char smem[];
    dependents_may_start();  // o_proj's GEMV may fetch its weights meanwhile
    AttentionArgs a = pb.a;
    if (step.n > 0) {  // a batched step: this block's row's own problem
        const StepRow& row = step.row[blockIdx.z];
        a.q = row.q;
        a.k = row.k;
        a.v = row.v;
        a.out = row.out;
        a.q_pos = row.q_pos;
        a.Tk = row.Tk;
    }

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int kvh = blockIdx.x, split = blockIdx.y;
    const int G = a.H / a.KV, rows = static_cast<int>(a.Tq) * G;
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
                q[r][x] = to_float(static_cast<const T*>(a.q)[(i * a.H + h) * a.hd + d_lane + x]) * a.scale;
            }
        }

    const int64_t q_pos0 = a.q_pos ? *a.q_pos : a.q_pos0;
    int64_t key_lo, key_end;
    visible_keys(a, q_pos0, q_pos0 + a.Tq - 1, key_lo, key_end);
    const int64_t tiles = (key_end - key_lo + kTileKeys - 1) / kTileKeys;
    const int64_t per_split = (tiles + pb.splits - 1) / pb.splits;
    const int64_t tile_begin = split * per_split, tile_end = min(tiles, tile_begin + per_split);
    const int64_t my_tiles = max(int64_t(0), (tile_end - tile_begin - warp + kWarps - 1) / kWarps);

    WarpStream st;
    st.k = head_rows<kBits>(a, false, kvh);
    st.v = head_rows<kBits>(a, true, kvh);
    st.row_stride = int64_t(a.KV) * a.hd * kBits / 8;
    const int v_groups = kBits == 4 ? a.hd / a.v_group : 0;  // 2 or 4 (core's media_kv_format)
    if constexpr (kBits == 4) {
        st.v_scales = reinterpret_cast<const char*>(a.v4_scale + int64_t(kvh) * v_groups);
        st.scale_stride = int64_t(a.KV) * v_groups * 2;
        st.scale_bytes = v_groups * 2;
        st.scale_offset = S::kScaleOffset;
    }
    st.key_lo = key_lo;
    st.key_end = key_end;
    st.first_tile = tile_begin + warp;
    st.tile_step = kWarps;
    st.items = my_tiles * kItemsPerTile;
    st.init_lane(lane, a.hd * kBits / 8, unit16);
    char* ring = smem + warp * kRing * S::kChunkBytes;
    for (int n = 0; n < kRing - 1; ++n) st.issue(n, ring + n * S::kChunkBytes, S::kPitch);

    // Waits for item n's rows, queues item n + kRing - 1 into the slot freed last, and hands
    // the rows (a chunk in shared memory) to f.
    int64_t n = 0;
    auto consume = [&](auto f) {
        st.issue(n + kRing - 1, ring + ((n + kRing - 1) % kRing) * S::kChunkBytes, S::kPitch);
        cp_async_wait<kRing - 1>();
        __syncwarp();
        f(ring + (n % kRing) * S::kChunkBytes);
        __syncwarp();  // every lane is done with the slot before it is refilled
        ++n;
    };

    float m[R], l[R], o[R][kDims];
    int64_t pos[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        m[r] = -INFINITY;
        l[r] = 0.0f;
        pos[r] = q_pos0 + r / G;
#pragma unroll
        for (int x = 0; x < kDims; ++x) o[r][x] = 0.0f;
    }

    // 4-bit keys: this lane's dimensions of the scales and zeros of a tile's block (tiles lie
    // within one block: blocks are whole tiles and key ranges start at 0), a tile ahead.
    float ks[kDims] = {}, kz[kDims] = {}, ks_next[kDims] = {}, kz_next[kDims] = {};
    auto load_key_scales = [&](int64_t key0, float* sc, float* z) {
        if (!owns_dims) return;
        const int64_t at = ((key0 / a.key_block) * a.KV + kvh) * a.hd + d_lane;
#pragma unroll
        for (int x = 0; x < kDims; ++x) {
            sc[x] = __half2float(a.k4_scale[at + x]);
            z[x] = __half2float(a.k4_zero[at + x]);
        }
    };
    if constexpr (kBits == 4)
        if (my_tiles > 0) load_key_scales(st.key0(0), ks_next, kz_next);
    const int v_group_lane = kBits == 4 ? d_lane / a.v_group : 0;  // this lane's value group

    for (int64_t i = 0; i < my_tiles; ++i) {
        const int64_t key0 = st.key0(n), j = key0 + lane;
        const bool valid = j < key_end;
        const float k_scale = kBits == 8 && valid ? __ldg(a.k_scale + j * a.KV + kvh) : 1.0f;
        const float v_scale = kBits == 8 && valid ? __ldg(a.v_scale + j * a.KV + kvh) : 1.0f;
        if constexpr (kBits == 4) {
#pragma unroll
            for (int x = 0; x < kDims; ++x) ks[x] = ks_next[x], kz[x] = kz_next[x];
            if (i + 1 < my_tiles) load_key_scales(st.key0(n + kItemsPerTile), ks_next, kz_next);
        }

        // Scores: the partial dot products of a chunk's 8 keys, summed over the warp at once.
        float s[R];
#pragma unroll
        for (int r = 0; r < R; ++r) s[r] = 0.0f;
#pragma unroll 1  // the body is large: four copies would not fit the instruction cache
        for (int c = 0; c < kChunksPerTile; ++c)
            consume([&](const char* chunk) {
                float part[R][kChunkKeys];
#pragma unroll
                for (int u = 0; u < kChunkKeys; ++u) {
                    float kf[kDims];
                    row_values<kBits, kDims, T>(chunk + u * S::kPitch, d_lane, owns_dims, kf);
                    if constexpr (kBits == 4)
#pragma unroll
                        for (int x = 0; x < kDims; ++x) kf[x] = fmaf(kf[x], ks[x], kz[x]);
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        float d = 0.0f;
#pragma unroll
                        for (int x = 0; x < kDims; ++x) d = fmaf(q[r][x], kf[x], d);
                        part[r][u] = d;
                    }
                }
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    if (r >= rows) break;
                    const float sum = __shfl_sync(0xffffffffu, warp_sum8(part[r], lane), (lane & 7) << 2);
                    if ((lane >> 3) == c) s[r] = sum;
                }
            });

        float w[R];  // p_j times the value's scale (int8)
#pragma unroll
        for (int r = 0; r < R; ++r) {
            w[r] = 0.0f;
            if (r >= rows) break;
            float sr = s[r] * k_scale;
            if (a.softcap > 0.0f) sr = soft_cap(sr, a.softcap);
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

        // P·V: p_j reaches every lane by shuffle (4-bit: times the key's scale of this lane's group).
#pragma unroll 1
        for (int c = 0; c < kChunksPerTile; ++c)
            consume([&](const char* chunk) {
#pragma unroll
                for (int u = 0; u < kChunkKeys; ++u) {
                    float vf[kDims];
                    row_values<kBits, kDims, T, 8>(chunk + u * S::kPitch, d_lane, owns_dims, vf);
                    float vs = 1.0f;
                    if constexpr (kBits == 4)  // a lane past hd has no group (and no values)
                        vs = owns_dims ? __half2float(reinterpret_cast<const fp16*>(
                                             chunk + S::kScaleOffset + u * kValueScaleBytes)[v_group_lane])
                                       : 0.0f;
#pragma unroll
                    for (int r = 0; r < R; ++r) {
                        if (r >= rows) break;
                        const float wj = __shfl_sync(0xffffffffu, w[r], c * kChunkKeys + u) * vs;
#pragma unroll
                        for (int x = 0; x < kDims; ++x) o[r][x] = fmaf(wj, vf[x], o[r][x]);
                    }
                }
            });
    }
    cp_async_wait<0>();  // only empty groups are left, but the ring is about to be reused
    __syncthreads();

    // Merge the warps, then write the output or this slice's partial.
    float* o_s = reinterpret_cast<float*>(smem);  // [kWarps][R][HD]
    float* m_s = o_s + kWarps * R * HD;           // [kWarps][R]
    float* l_s = m_s + kWarps * R;
#pragma unroll
    for (int r = 0; r < R; ++r) {
        if (r >= rows) break;
        if (lane == 0) {
            m_s[warp * R + r] = m[r];
            l_s[warp * R + r] = l[r];
        }
        if (owns_dims)
#pragma unroll
            for (int x = 0; x < kDims; ++x) o_s[(warp * R + r) * HD + d_lane + x] = o[r][x];
    }
    __syncthreads();
    for (int idx = tid; idx < rows * a.hd; idx += kThreads) {
        const int r = idx / a.hd, d = idx % a.hd;
        float mm = -INFINITY;
#pragma unroll
        for (int ww = 0; ww < kWarps; ++ww) mm = fmaxf(mm, m_s[ww * R + r]);
        float acc = 0.0f, ll = 0.0f;
#pragma unroll
        for (int ww = 0; ww < kWarps; ++ww) {
            if (m_s[ww * R + r] == -INFINITY) continue;
            const float c = __expf(m_s[ww * R + r] - mm);
            acc += o_s[(ww * R + r) * HD + d] * c;
            ll += l_s[ww * R + r] * c;
        }
        write_merged_row<T>(a, pb, kvh, split, r, d, acc, mm, ll);
    }
}

// Calls f.template run<HD, R, kBits, T>() for the kernel instance that serves `a`.
template <int HD, int kBits, class T, class F>
void with_rows(const AttentionArgs& a, F& f) {
    const int64_t rows = a.Tq * (a.H / a.KV);
    if (rows <= 1) f.template run<HD, 1, kBits, T>();
    else if (rows <= 2) f.template run<HD, 2, kBits, T>();
    else if (rows <= 4) f.template run<HD, 4, kBits, T>();
    else f.template run<HD, kRows, kBits, T>();
}
template <int HD, class T, class F>
void with_kv(const AttentionArgs& a, F& f) {
    if (a.k8) with_rows<HD, 8, T>(a, f);
    else if (a.k4) with_rows<HD, 4, T>(a, f);
    else with_rows<HD, 16, T>(a, f);
}
template <int HD, class F>
void with_act(const AttentionArgs& a, F& f) {
    if (a.act == DType::f16) with_kv<HD, fp16>(a, f);
    else with_kv<HD, bf16>(a, f);
}
template <class F>
void with_instance(const AttentionArgs& a, F& f) {
    if (a.hd <= 64) with_act<64>(a, f);
    else if (a.hd <= 128) with_act<128>(a, f);
    else with_act<256>(a, f);
}

// Blocks of an instance resident on one SM (its shared memory opt-in set on first use).
template <int HD, int R, int kBits, class T>
int resident_blocks() {
    return resident_blocks_of<decode_attention_kernel<HD, R, kBits, T>>(kThreads, Smem<HD, R, kBits>::kBytes);
}

// with_instance() visitors: the resident blocks of the instance, and its launch.
struct ResidentBlocks {
    int blocks = 1;
    template <int HD, int R, int kBits, class T>
    void run() { blocks = resident_blocks<HD, R, kBits, T>(); }
};
struct Launch {
    const Problem& pb;
    bool unit16;
    const StepRows& step;
    cudaStream_t stream;
    template <int HD, int R, int kBits, class T>
    void run() {
        resident_blocks<HD, R, kBits, T>();  // sets the shared-memory opt-in
        const dim3 grid(static_cast<unsigned>(pb.a.KV), static_cast<unsigned>(pb.splits),
                        static_cast<unsigned>(std::max(step.n, 1)));
        decode_attention_kernel<HD, R, kBits, T>
            <<<grid, kThreads, Smem<HD, R, kBits>::kBytes, stream>>>(pb, unit16, step);
    }
};

}  // namespace

int attention_decode_splits(const AttentionArgs& a, int sm_count) {
    int64_t lo, end;
    visible_keys(a, a.q_pos0, a.q_pos0 + a.Tq - 1, lo, end);
    const int64_t tiles = (end - lo + kTileKeys - 1) / kTileKeys;
    // The residency of the instance for the most rows, whatever the rows: the split count then
    // depends on the keys only, so a query gets the same bits alone or among a batch's
    // (Backend::cross_attention).
    AttentionArgs most = a;
    most.Tq = std::max<int64_t>(1, kRows / (a.H / a.KV));
    ResidentBlocks resident;
    with_instance(most, resident);
    // One wave of blocks on the whole GPU (the bytes in flight set the speed), each warp with
    // at least two tiles.
    const int64_t by_fill = int64_t(sm_count) * resident.blocks / a.KV, by_work = tiles / (2 * kWarps);
    return static_cast<int>(std::clamp<int64_t>(std::min(by_fill, by_work), 1, kAttentionMaxSplits));
}

void attention_decode(const Problem& pb, cudaStream_t stream, const StepRows* rows) {
    const AttentionArgs& a = pb.a;
    const void* k = a.k8 ? static_cast<const void*>(a.k8) : a.k4 ? static_cast<const void*>(a.k4) : a.k;
    const void* v = a.v8 ? static_cast<const void*>(a.v8) : a.v4 ? static_cast<const void*>(a.v4) : a.v;
    // The rows are copied in 16-byte pieces, or 8-byte ones (int8/int4 rows of an odd multiple of 8).
    const int64_t row_bytes = int64_t(a.hd) * (a.k8 ? 8 : a.k4 ? 4 : 16) / 8;
    auto aligned_to = [](const void* p, uintptr_t n) { return reinterpret_cast<uintptr_t>(p) % n == 0; };
    const bool unit16 = row_bytes % 16 == 0 && aligned_to(k, 16) && aligned_to(v, 16);
    VIDI_CHECK(row_bytes % 8 == 0 && aligned_to(k, 8) && aligned_to(v, 8),
               "attention: K/V rows must be whole 8-byte words on 8-byte boundaries");
    const StepRows none{};
    Launch launch{pb, unit16, rows ? *rows : none, stream};
    with_instance(a, launch);
    VIDI_CUDA_CHECK_LAUNCH("attention (few rows)");
}

void attention_step_rows(const AttentionArgs& a, const StepRows& rows, cudaStream_t stream) {
    VIDI_CHECK(rows.n >= 1 && rows.n <= kStepRowsMax && few_rows(a) && !a.k8 && !a.k4 && a.accumulate,
               "attention_step_rows: ", rows.n, " rows of 16-bit K/V, adding into their outputs");
    auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    for (int b = 0; b < rows.n; ++b)
        VIDI_CHECK(aligned(rows.row[b].k) && aligned(rows.row[b].v), "attention_step_rows: row ", b,
                   "'s cache must start on 16-byte boundaries");
    const Problem pb = split_problem(a, 1, nullptr);
    attention_decode(pb, stream, &rows);
}

}  // namespace vidi::cuda
