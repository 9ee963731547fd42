// Host-side launchers of the CUDA kernels (one .cu file per family). They take raw device
// pointers and sizes already checked by CudaBackend, enqueue on `stream` and check the
// launch. Math is f32. Activations are a 16-bit float type T, bf16 or fp16 (the backend's
// activation dtype): launchers templated on T are instantiated for both (some also for f32,
// as noted). Pure data movement takes `void*` of 2-byte elements (either type).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "vidi/tensor.h"

namespace vidi::cuda {

using bf16 = __nv_bfloat16;
using fp16 = __half;

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// --- convert.cu: dst[i] = src[i] between any two float dtypes (f32, f16, bf16).
void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n, cudaStream_t stream);

// --- elementwise.cu (the unary ops also for T = float: f32 logits, positional MLPs)
template <class T>
void scale_inplace(T* x, int64_t n, float s, cudaStream_t stream);
template <class T>
void gelu_inplace(T* x, int64_t n, bool tanh_form, cudaStream_t stream);
template <class T>
void softcap_inplace(T* x, int64_t n, float cap, cudaStream_t stream);
template <class T>
void add_inplace(T* x, const T* y, int64_t n, cudaStream_t stream);
// act(gate) ⊙ up: gelu_tanh (GeGLU), or x·sigmoid(x) with silu (SwiGLU).
template <class T>
void glu(T* out, const T* gate, const T* up, int64_t n, bool silu, cudaStream_t stream);
// x[xs0, xs1, xs2, D] += y[ys0, ys1, ys2, D] where each ys_i is xs_i or 1.
template <class T>
void add_broadcast_inplace(T* x, const T* y, const int64_t xs[3], const int64_t ys[3], int64_t D,
                           cudaStream_t stream);

// --- norm.cu (mode: 0 none, 1 w·n, 2 (1+w)·n, as NormWeight); add: y += the norm (rounded to
// T first), and then with next_y: next_y = rms_norm(y) with weight next_w, the same mode. x and
// y are T or f32 (a residual stream), not both f32; the weights and next_y are T.
template <class T>
void rms_norm(void* y, DType y_dtype, const void* x, DType x_dtype, const T* w, int64_t rows, int64_t D, float eps,
              int mode, cudaStream_t stream, bool add = false, T* next_y = nullptr, const T* next_w = nullptr);
template <class T>
void layer_norm(T* y, const T* x, const T* w, const T* b, int64_t rows, int64_t D, float eps, cudaStream_t stream);
// layer_norm's rows as an FP8 GEMM's input: each row rounded to T as layer_norm stores it, then
// E4M3 codes u8 [rows, D] and a scale a row as quantize_rows_e4m3 makes them (the same bits),
// in one pass. Only where layer_norm_warp_takes (rows of at most 1536, a multiple of 8,
// 16-byte aligned); codes 8-byte aligned.
bool layer_norm_warp_takes(const void* x, const void* w, const void* b, int64_t D);
template <class T>
void layer_norm_e4m3(uint8_t* codes, float* scales, const T* x, const T* w, const T* b, int64_t rows, int64_t D,
                     float eps, cudaStream_t stream);
// y += x (x activations, y a T or f32 residual stream), then next_y = rms_norm(y) with weight
// w (mode as rms_norm): a residual update without a norm on the sub-layer's output.
template <class T>
void add_then_rms_norm(void* y, DType y_dtype, const T* x, T* next_y, const T* w, int64_t rows, int64_t D, float eps,
                       int mode, cudaStream_t stream);

// --- top_pick.cu: per row of x[rows, N] (logits; T also float), the index of the largest value
// (the first on ties; N < 2^31) and its lead over the second largest, as backend.h's top_pick().
template <class T>
void top_pick(int32_t* ids, float* margins, const T* x, int64_t rows, int64_t N, cudaStream_t stream);

// --- rope.cu: rotate-half RoPE on x[T, H, hd] at positions pos0 .. pos0+T-1.
template <class T>
void rope_inplace(T* x, int64_t rows, int64_t H, int64_t hd, int64_t pos0, float theta, cudaStream_t stream);
// New text positions (Backend::rope_and_cache_kv_): q[T, H, hd] rotated in place, k[T, KV, hd]
// rotated into rows *pos.. of k_cache, v copied into v_cache (caches [cache_rows, KV, hd]).
template <class E>
struct RopeCacheArgs {
    E* q = nullptr;
    const E* k = nullptr;
    const E* v = nullptr;
    E* k_cache = nullptr;
    E* v_cache = nullptr;
    const int32_t* pos = nullptr;  // device memory, read when the kernel runs
    int64_t T = 0, H = 0, KV = 0, hd = 0, cache_rows = 0;
    float theta = 0.0f;
};
template <class T>
void rope_and_cache(const RopeCacheArgs<T>& a, cudaStream_t stream);
// The same for one token of each of B ≤ kRopeRowsMax sequences (a batch's step): row b of q, k
// and v at position pos[b], into its own caches; each row as rope_and_cache of it alone.
constexpr int kRopeRowsMax = 16;
template <class E>
struct RopeCacheRows {
    E* q = nullptr;
    const E* k = nullptr;
    const E* v = nullptr;
    E* k_cache[kRopeRowsMax] = {};
    E* v_cache[kRopeRowsMax] = {};
    int64_t cache_rows[kRopeRowsMax] = {};
    const int32_t* pos = nullptr;  // [B], device memory, read when the kernel runs
    int64_t B = 0, H = 0, KV = 0, hd = 0;
    float theta = 0.0f;
};
template <class T>
void rope_and_cache_rows(const RopeCacheRows<T>& a, cudaStream_t stream);

// --- layout.cu (shapes as in backend.h). Gathers and re-layouts move 2-byte elements (either
// 16-bit type; zero fill is 0 in both).
// ids (device) outside 0..V-1 give rows of zeros.
void embed(void* out, const void* table, const int32_t* ids, int64_t T, int64_t V, int64_t D, cudaStream_t stream);
// [A, B] -> [B, A] for 2- or 4-byte elements.
void transpose2d(void* out, const void* in, int64_t A, int64_t B, size_t elem_size, cudaStream_t stream);
void im2col_1d(void* out, const void* x, int64_t T, int64_t C, int k, int stride, int pad, int64_t T_out,
               cudaStream_t stream);
void patchify(void* out, const void* pixels, int64_t N, int64_t C, int64_t S, int p, cudaStream_t stream);
void space_to_depth(void* out, const void* x, int64_t F, int64_t H, int64_t W, int64_t C, int p,
                    cudaStream_t stream);
void pad_grid(void* out, const void* x, int64_t F, int64_t H, int64_t W, int64_t C, int bottom, int right,
              cudaStream_t stream);
void im2col_2d(void* out, const void* x, int64_t F, int64_t H, int64_t W, int64_t C, int k, int stride,
               cudaStream_t stream);
template <class T>
void resize_bilinear(T* out, const T* x, int64_t F, int64_t H, int64_t W, int64_t C, int oh, int ow,
                     bool align_corners, cudaStream_t stream);
void repeat_kv(void* out, const void* v, int64_t T, int64_t KV, int64_t H, int64_t hd, cudaStream_t stream);

// --- pixels.cu: Pillow's fixed-point resampling (core/pil_resize.h) of RGB24 frames. An axis
// on the device: output i reads count[i] inputs from first[i] with taps[i·ksize + j].
struct ResampleTaps {
    const int* first = nullptr;
    const int* count = nullptr;
    const int32_t* taps = nullptr;
    int ksize = 0, out = 0;
};
// Horizontal pass over source rows row0..row0+rows-1: rgb[n, h, w, 3] -> tmp[n, rows, cols.out, 3].
void resample_rows(uint8_t* tmp, const uint8_t* rgb, int64_t n, int h, int w, int row0, int rows,
                   const ResampleTaps& cols, cudaStream_t stream);
// Vertical pass and SigLIP's (v/255 − 0.5)/0.5: tmp[n, rows, ow, 3] -> out[n, 3, rows_axis.out, ow].
template <class T>
void resample_cols_normalize(T* out, const uint8_t* tmp, int64_t n, int row0, int rows, int ow,
                             const ResampleTaps& rows_axis, cudaStream_t stream);

// --- sinusoid.cu: core/sinusoid.h's table in double, rounded to f32: out[n, 2·half] with
// out[r, 2i] = sin(positions[r]·freq[i]) and out[r, 2i + 1] the cos.
void sinusoid_table(float* out, const double* positions, int64_t n, const double* freq, int64_t half,
                    cudaStream_t stream);

// --- log_mel.cu: Whisper's log-mel (core/log_mel.h) in double, `count` 30 s pieces at a time.
struct MelShape {
    int64_t piece_samples = 0;  // 480000
    int frames = 0, hop = 0, n_fft = 0, n_mels = 0;  // 3000, 160, 400, n_mels
};
// frames[count·frames, n_fft]: the windowed frames of pieces first_piece.. of pcm[n].
void mel_frames(double* frames, const float* pcm, int64_t n, int64_t first_piece, int count, const double* window,
                const MelShape& s, cudaStream_t stream);
// logmel[count, n_mels, frames] = log10(max(Σ_k filters[m, k]·|X_k|², 1e-10)) over each filter's
// non-zero bins [begin[m], end[m]); spectrum: complex double [count·frames, n_fft/2 + 1].
void mel_energies(double* logmel, const void* spectrum, const double* filters, const int* begin, const int* end,
                  int count, const MelShape& s, cudaStream_t stream);
// out[count, n_mels, frames] = (max(l, piece peak − 8) + 4) / 4, rounded to f32, then T.
template <class T>
void mel_finish(T* out, const double* logmel, int count, const MelShape& s, cudaStream_t stream);

// --- attention.cu: q[Tq, H, hd], k/v[Tk, KV, hd] -> out[Tq, H, hd] (AttentionParams semantics).
// q, out and float K/V (k, v) are of the 16-bit type `act`; K/V may instead be int8 (k8, v8)
// with one f32 scale per (key, KV head), [Tk, KV].
struct AttentionArgs {
    DType act = DType::bf16;  // bf16 or f16
    const void* q = nullptr;
    const void* k = nullptr;
    const void* v = nullptr;
    const int8_t* k8 = nullptr;
    const int8_t* v8 = nullptr;
    const float* k_scale = nullptr;
    const float* v_scale = nullptr;
    // 4-bit media K/V (core's media_kv_format): codes u8 [Tk, KV, hd/2]; keys per channel over
    // blocks of key_block tokens with zero points (k4_scale, k4_zero f16 [ceil(Tk/key_block),
    // KV, hd]: key = zero + c·scale, c in 0..15); values per token in groups of v_group
    // (v4_scale f16 [Tk, KV, hd/v_group]: value = (c − 8)·scale). No sliding window.
    const uint8_t* k4 = nullptr;
    const uint8_t* v4 = nullptr;
    const fp16* k4_scale = nullptr;
    const fp16* k4_zero = nullptr;
    const fp16* v4_scale = nullptr;
    int key_block = 0, v_group = 0;
    // Elements from a row of q (of k and v) to the next where they are not packed [T, H, hd]
    // ([T, KV, hd]): q, k and v read where one GEMM wrote them side by side. 0: packed. The
    // flash kernels only; out is always packed.
    int64_t q_pitch = 0, kv_pitch = 0;
    void* out = nullptr;
    int64_t Tq = 0, Tk = 0;
    int H = 0, KV = 0, hd = 0;
    float scale = 1.0f, softcap = 0.0f;
    bool causal = false;
    int window = 0;
    int64_t q_pos0 = 0;
    // Device memory, read as the kernel runs: query 0's position, replacing q_pos0 (which then
    // bounds it, for the split count). The few-row kernel only.
    const int32_t* q_pos = nullptr;
    bool accumulate = false;  // out += the result (rounded to act first); the few-row kernel only
    // Cross-attention (attention_cross.cu): the rows are a decoding step's (one query a
    // sequence), which a layout for few rows serves; else a prompt's.
    bool step_rows = false;
};
constexpr int kAttentionMaxHeadDim = 256;
// How many slices the keys are split into (1: no split-K) on a GPU with `sm_count` SMs,
// and the f32 workspace those slices need.
// The few-row kernel (attention_decode.cu) takes problems of at most this many query × head
// rows per KV head: a decoding step, a few queries of a batch over the media K/V.
constexpr int64_t kDecodeMaxRows = 8;
int attention_splits(const AttentionArgs& a, int sm_count);
size_t attention_workspace_bytes(const AttentionArgs& a, int splits);
void attention(const AttentionArgs& a, int splits, void* workspace, cudaStream_t stream);
// A batched decoding step's text attention in one launch of the few-row kernel: row b of
// rows[] is the problem `a` with its own query, output, cache (k, v, Tk) and position. Every
// row must be one the kernel takes alone without split-K (attention_splits() == 1 for it), so
// it gets the bits it gets alone; `a` gives what the rows share (heads, scale, masks).
constexpr int kStepRowsMax = 16;
struct StepRow {
    const void* q;
    const void* k;
    const void* v;
    void* out;
    const int32_t* q_pos;
    int64_t Tk;
};
struct StepRows {
    int n = 0;
    StepRow row[kStepRowsMax];
};
void attention_step_rows(const AttentionArgs& a, const StepRows& rows, cudaStream_t stream);
// Whether attention() honours a.accumulate for this problem (the few-row kernel does).
bool attention_can_accumulate(const AttentionArgs& a);
// attention_cross.cu (a prompt's rows) and attention_cross_step.cu (a step's, a.step_rows):
// unmasked attention of independent query rows (q[Tq, H, hd]) over 16-bit K/V on tensor cores,
// each row's bits independent of the other rows (Backend::cross_attention);
// head dims 32, 64, 128, 256. Honours a.accumulate. The split count depends on the keys only;
// the workspace is attention_workspace_bytes(a, splits).
bool cross_attention_supports(const AttentionArgs& a);
int cross_attention_splits(const AttentionArgs& a, int sm_count);
void cross_attention(const AttentionArgs& a, int splits, void* workspace, cudaStream_t stream);

// --- attention_flash.cu: the same problems (n sequences, no mask, 16-bit K/V) on tensor cores,
// for the head dims it has a kernel for; q, k, v, out 16-byte aligned.
bool flash_attention_supports(int hd);
// `streaming` passes the keys through shared memory a tile at a time; `resident` holds all of a
// sequence's keys in one block's shared memory and runs only where they fit (false: nothing
// launched); `best` (what the backend runs) is resident where it fits, else streaming. The two
// give the same bytes. sm_count: the GPU's SMs (the resident kernel splits a sequence's rows
// between blocks where the sequences are fewer).
enum class FlashKernel { best, streaming, resident };
bool flash_attention(const AttentionArgs& a, int64_t sequences, int sm_count, cudaStream_t stream,
                     FlashKernel which = FlashKernel::best);

// --- attention_dense.cu: unmasked attention of n independent sequences (q[n, Tq, H, hd],
// k/v[n, Tk, KV, hd]) as batched GEMMs; a problem is one (sequence, head), g = seq·H + head.
// Fills table[6·count] with the device pointers of problems first..first+count-1: q, k, their
// f32 scores (scores + e·Tq·Tk), the same scores as 16-bit probabilities, v, out.
void dense_attention_pointers(const AttentionArgs& a, float* scores, int64_t first, int count, void** table,
                              cudaStream_t stream);
// Softmax of each row of s[rows, cols] (f32 scores, soft-capped first when softcap > 0),
// written as T over the start of the same row (row r's output begins at s + r·cols).
template <class T>
void softmax_rows_inplace(float* s, int64_t rows, int64_t cols, float softcap, cudaStream_t stream);

// --- Quantised weights (core/qtensor.h layouts): codes i8 [rows, K] (bits 8) or u8 [rows, K/2]
// (bits 4, even index in the low nibble, stored as q + 8), scales f32 [rows, K/group]. The
// GEMV also takes plain 16-bit weights (of the activations' type) as bits 16 (values [rows, K],
// no scales, group = K).
struct QuantView {
    const void* codes = nullptr;
    const float* scales = nullptr;
    int bits = 8;
    int64_t K = 0;
    int group = 0;
};
// quant_gemv.cu: y[M, N] = x[M, K] · dequant(w)[N, K]ᵀ (+ bias[N]) fused, for few rows of x.
constexpr int64_t kQuantGemvMaxRows = 16;
// 16-bit float weights take it for this many rows at most (a decoding step of up to 16
// sequences: a row's result depends on that row alone, its k-split and summation order on K
// only, so a batch's rows get the bits they get one at a time); cuBLASLt beyond.
constexpr int64_t kFloatGemvMaxRows = 16;
// A 16-bit float weight [rows, K] as the GEMV reads it.
inline QuantView float_gemv_view(const void* w, int64_t K) { return {w, nullptr, 16, K, static_cast<int>(K)}; }
// Whether the fused kernel takes this case (M ≤ kQuantGemvMaxRows, or kFloatGemvMaxRows for
// bits 16; K and the group whole 16-byte chunks of codes, aligned codes and x); otherwise the
// caller uses the GEMM (quantised weights: dequantised to T first).
bool quant_gemv_supported(const QuantView& w, const void* x, int64_t M);
// y[M, N] (of type T, or f32 when y_f32: the LM head's logits) = x · dequant(w)ᵀ + bias.
// With `up` (a weight of w's shape and format, no bias): y = act(x·wᵀ) ⊙ (x·upᵀ), each product
// rounded to T first (glu of two linears, fused); act gelu_tanh, or silu when `silu`.
template <class T>
void quant_gemv(void* y, bool y_f32, const T* x, const QuantView& w, const T* bias, int64_t M, int64_t N,
                cudaStream_t stream, const QuantView* up = nullptr, bool silu = false);
// Several weights of one input in one launch (attention's q, k and v): outs[i].y[M, N_i] =
// x · dequant(outs[i].w)ᵀ, no bias; the weights share bits, K and group, each supported.
constexpr int kGemvMaxOutputs = 3;
struct GemvOutput {
    void* y;  // T
    QuantView w;
    int64_t N;
};
template <class T>
void quant_gemv_many(const GemvOutput* outs, int count, const T* x, int64_t M, cudaStream_t stream);
// quantize.cu: out[r, :] = T(code · scale) of weight row (ids ? ids[r] : row0 + r), r < R;
// with ids (device memory) an id outside 0..id_rows-1 gives a row of zeros.
template <class T>
void dequantize_rows(T* out, const QuantView& w, int64_t row0, const int32_t* ids, int64_t id_rows, int64_t R,
                     cudaStream_t stream);
// quantize.cu: x[rows, K] -> codes and scales in the layout above, rounding exactly as the host
// quantize() of core/quantize.cpp (round half to even, IEEE division); scales f32 or, with
// f16_scales, f16 (each candidate scale rounded as the host's round_scale before it is judged).
template <class T>
void quantize_rows(void* codes, void* scales, const T* x, int64_t rows, int64_t K, int bits, int group,
                   cudaStream_t stream, bool f16_scales = false);
// fp8_quantize.cu: x[rows, K] -> E4M3 codes u8 [rows, K] and one f32 scale a row (amax / 448;
// 1 for a row of zeros), each code E4M3(x / scale) rounded to nearest even, saturating.
template <class T>
void quantize_rows_e4m3(uint8_t* codes, float* scales, const T* x, int64_t rows, int64_t K, cudaStream_t stream);
// The same for an MLP's gated activation: the rows of act(gate) ⊙ up (act gelu_tanh, or silu
// when `silu`), each value rounded to T first, as glu() would store it, then converted.
template <class T>
void glu_rows_e4m3(uint8_t* codes, float* scales, const T* gate, const T* up, int64_t rows, int64_t K, bool silu,
                   cudaStream_t stream);
// x[T, C] -> 4-bit codes u8 [T, C/2] per channel over blocks of `block` rows, with zero points:
// scales and zeros f16 [ceil(T/block), C] (the host's asymmetric 4-bit format; C even).
template <class T>
void quantize_column_blocks(uint8_t* codes, fp16* scales, fp16* zeros, const T* x, int64_t rows, int64_t C,
                            int block, cudaStream_t stream);

}  // namespace vidi::cuda
