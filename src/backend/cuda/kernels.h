// Host-side launchers of the CUDA kernels (one .cu file per family). They take raw device
// pointers and sizes already checked by CudaBackend, enqueue on `stream` and check the
// launch. Float tensors are bf16 unless a signature says otherwise; math is f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "vidi/tensor.h"

namespace vidi::cuda {

using bf16 = __nv_bfloat16;

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// --- convert.cu: dst[i] = src[i] between any two float dtypes (f32, f16, bf16).
void convert(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n, cudaStream_t stream);

// --- elementwise.cu
void scale_inplace(bf16* x, int64_t n, float s, cudaStream_t stream);
void gelu_inplace(bf16* x, int64_t n, bool tanh_form, cudaStream_t stream);
void softcap_inplace(bf16* x, int64_t n, float cap, cudaStream_t stream);
void add_inplace(bf16* x, const bf16* y, int64_t n, cudaStream_t stream);
// act(gate) ⊙ up: gelu_tanh (GeGLU), or x·sigmoid(x) with silu (SwiGLU).
void glu(bf16* out, const bf16* gate, const bf16* up, int64_t n, bool silu, cudaStream_t stream);
// x[xs0, xs1, xs2, D] += y[ys0, ys1, ys2, D] where each ys_i is xs_i or 1.
void add_broadcast_inplace(bf16* x, const bf16* y, const int64_t xs[3], const int64_t ys[3], int64_t D,
                           cudaStream_t stream);

// --- norm.cu (mode: 0 none, 1 w·n, 2 (1+w)·n, as NormWeight); add: y += the norm (bf16-rounded),
// and then with next_y: next_y = rms_norm(y) with weight next_w, the same mode. x and y are bf16
// or f32 (a residual stream), not both f32.
void rms_norm(void* y, DType y_dtype, const void* x, DType x_dtype, const bf16* w, int64_t rows, int64_t D,
              float eps, int mode, cudaStream_t stream, bool add = false, bf16* next_y = nullptr,
              const bf16* next_w = nullptr);
// y += x (x bf16 activations, y a bf16 or f32 residual stream), then next_y = rms_norm(y) with
// weight w (mode as rms_norm): a residual update without a norm on the sub-layer's output.
void add_then_rms_norm(void* y, DType y_dtype, const bf16* x, bf16* next_y, const bf16* w, int64_t rows, int64_t D,
                       float eps, int mode, cudaStream_t stream);
void layer_norm(bf16* y, const bf16* x, const bf16* w, const bf16* b, int64_t rows, int64_t D, float eps,
                cudaStream_t stream);

// --- top_pick.cu: per row of x[rows, N] (logits), the index of the largest value (the first
// on ties; N < 2^31) and its lead over the second largest, as backend.h's top_pick().
void top_pick(int32_t* ids, float* margins, const bf16* x, int64_t rows, int64_t N, cudaStream_t stream);

// --- rope.cu: rotate-half RoPE on x[T, H, hd] at positions pos0 .. pos0+T-1.
void rope_inplace(bf16* x, int64_t T, int64_t H, int64_t hd, int64_t pos0, float theta, cudaStream_t stream);
// New text positions (Backend::rope_and_cache_kv_): q[T, H, hd] rotated in place, k[T, KV, hd]
// rotated into rows *pos.. of k_cache, v copied into v_cache (caches [cache_rows, KV, hd]).
struct RopeCacheArgs {
    bf16* q = nullptr;
    const bf16* k = nullptr;
    const bf16* v = nullptr;
    bf16* k_cache = nullptr;
    bf16* v_cache = nullptr;
    const int32_t* pos = nullptr;  // device memory, read when the kernel runs
    int64_t T = 0, H = 0, KV = 0, hd = 0, cache_rows = 0;
    float theta = 0.0f;
};
void rope_and_cache(const RopeCacheArgs& a, cudaStream_t stream);

// --- layout.cu (shapes as in backend.h)
// ids (device) outside 0..V-1 give rows of zeros.
void embed(bf16* out, const bf16* table, const int32_t* ids, int64_t T, int64_t V, int64_t D, cudaStream_t stream);
// [A, B] -> [B, A] for 2- or 4-byte elements.
void transpose2d(void* out, const void* in, int64_t A, int64_t B, size_t elem_size, cudaStream_t stream);
void im2col_1d(bf16* out, const bf16* x, int64_t T, int64_t C, int k, int stride, int pad, int64_t T_out,
               cudaStream_t stream);
void patchify(bf16* out, const bf16* pixels, int64_t N, int64_t C, int64_t S, int p, cudaStream_t stream);
void space_to_depth(bf16* out, const bf16* x, int64_t F, int64_t H, int64_t W, int64_t C, int p,
                    cudaStream_t stream);
void pad_grid(bf16* out, const bf16* x, int64_t F, int64_t H, int64_t W, int64_t C, int bottom, int right,
              cudaStream_t stream);
void im2col_2d(bf16* out, const bf16* x, int64_t F, int64_t H, int64_t W, int64_t C, int k, int stride,
               cudaStream_t stream);
void resize_bilinear(bf16* out, const bf16* x, int64_t F, int64_t H, int64_t W, int64_t C, int oh, int ow,
                     bool align_corners, cudaStream_t stream);
void repeat_kv(bf16* out, const bf16* v, int64_t T, int64_t KV, int64_t H, int64_t hd, cudaStream_t stream);

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
void resample_cols_normalize(bf16* out, const uint8_t* tmp, int64_t n, int row0, int rows, int ow,
                             const ResampleTaps& rows_axis, cudaStream_t stream);

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
// out[count, n_mels, frames] = (max(l, piece peak − 8) + 4) / 4, rounded to f32, then bf16.
void mel_finish(bf16* out, const double* logmel, int count, const MelShape& s, cudaStream_t stream);

// --- attention.cu: q[Tq, H, hd], k/v[Tk, KV, hd] -> out[Tq, H, hd] (AttentionParams semantics).
// K/V are bf16 (k, v) or int8 (k8, v8) with one f32 scale per (key, KV head), [Tk, KV].
struct AttentionArgs {
    const bf16* q = nullptr;
    const bf16* k = nullptr;
    const bf16* v = nullptr;
    const int8_t* k8 = nullptr;
    const int8_t* v8 = nullptr;
    const float* k_scale = nullptr;
    const float* v_scale = nullptr;
    bf16* out = nullptr;
    int64_t Tq = 0, Tk = 0;
    int H = 0, KV = 0, hd = 0;
    float scale = 1.0f, softcap = 0.0f;
    bool causal = false;
    int window = 0;
    int64_t q_pos0 = 0;
    // Device memory, read as the kernel runs: query 0's position, replacing q_pos0 (which then
    // bounds it, for the split count). The few-row kernel only.
    const int32_t* q_pos = nullptr;
    bool accumulate = false;  // out += the result (bf16-rounded first); the few-row kernel only
};
constexpr int kAttentionMaxHeadDim = 256;
// How many slices the keys are split into (1: no split-K) on a GPU with `sm_count` SMs,
// and the f32 workspace those slices need.
int attention_splits(const AttentionArgs& a, int sm_count);
size_t attention_workspace_bytes(const AttentionArgs& a, int splits);
void attention(const AttentionArgs& a, int splits, void* workspace, cudaStream_t stream);
// Whether attention() honours a.accumulate for this problem (the few-row kernel does).
bool attention_can_accumulate(const AttentionArgs& a);

// --- attention_flash.cu: the same problems (n sequences, no mask, bf16 K/V) on tensor cores,
// for the head dims it has a kernel for; q, k, v, out 16-byte aligned.
bool flash_attention_supports(int hd);
void flash_attention(const AttentionArgs& a, int64_t sequences, cudaStream_t stream);

// --- attention_dense.cu: unmasked attention of n independent sequences (q[n, Tq, H, hd],
// k/v[n, Tk, KV, hd]) as batched GEMMs; a problem is one (sequence, head), g = seq·H + head.
// Fills table[6·count] with the device pointers of problems first..first+count-1: q, k, their
// f32 scores (scores + e·Tq·Tk), the same scores as bf16 probabilities, v, out.
void dense_attention_pointers(const AttentionArgs& a, float* scores, int64_t first, int count, void** table,
                              cudaStream_t stream);
// Softmax of each row of s[rows, cols] (f32 scores, soft-capped first when softcap > 0),
// written as bf16 over the start of the same row (row r's output begins at s + r·cols).
void softmax_rows_inplace(float* s, int64_t rows, int64_t cols, float softcap, cudaStream_t stream);

// --- Quantised weights (core/qtensor.h layouts): codes i8 [rows, K] (bits 8) or u8 [rows, K/2]
// (bits 4, even index in the low nibble, stored as q + 8), scales f32 [rows, K/group]. The
// GEMV also takes plain bf16 weights as bits 16 (values [rows, K], no scales, group = K).
struct QuantView {
    const void* codes = nullptr;
    const float* scales = nullptr;
    int bits = 8;
    int64_t K = 0;
    int group = 0;
};
// quant_gemv.cu: y[M, N] = x[M, K] · dequant(w)[N, K]ᵀ (+ bias[N]) fused, for few rows of x.
constexpr int64_t kQuantGemvMaxRows = 16;
// bf16 weights take it for this many rows at most (a decoding step); cuBLASLt beyond.
constexpr int64_t kFloatGemvMaxRows = 4;
// A bf16 weight [rows, K] as the GEMV reads it.
inline QuantView float_gemv_view(const bf16* w, int64_t K) { return {w, nullptr, 16, K, static_cast<int>(K)}; }
// Whether the fused kernel takes this case (M ≤ kQuantGemvMaxRows, or kFloatGemvMaxRows for
// bf16; K and the group whole 16-byte chunks of codes, aligned codes and x); otherwise the
// caller uses the GEMM (quantised weights: dequantised to bf16 first).
bool quant_gemv_supported(const QuantView& w, const bf16* x, int64_t M);
// With `up` (a weight of w's shape and format, no bias): y = act(x·wᵀ) ⊙ (x·upᵀ), each product
// rounded to bf16 first (glu of two linears, fused); act gelu_tanh, or silu when `silu`.
void quant_gemv(bf16* y, const bf16* x, const QuantView& w, const bf16* bias, int64_t M, int64_t N,
                cudaStream_t stream, const QuantView* up = nullptr, bool silu = false);
// Several weights of one input in one launch (attention's q, k and v): outs[i].y[M, N_i] =
// x · dequant(outs[i].w)ᵀ, no bias; the weights share bits, K and group, each supported.
constexpr int kGemvMaxOutputs = 3;
struct GemvOutput {
    bf16* y;
    QuantView w;
    int64_t N;
};
void quant_gemv_many(const GemvOutput* outs, int count, const bf16* x, int64_t M, cudaStream_t stream);
// quantize.cu: out[r, :] = bf16(code · scale) of weight row (ids ? ids[r] : row0 + r), r < R;
// with ids (device memory) an id outside 0..id_rows-1 gives a row of zeros.
void dequantize_rows(bf16* out, const QuantView& w, int64_t row0, const int32_t* ids, int64_t id_rows, int64_t R,
                     cudaStream_t stream);
// quantize.cu: x[rows, K] -> codes and scales in the layout above, rounding exactly as the host
// quantize() of core/quantize.cpp (round half to even, IEEE division).
void quantize_rows(void* codes, float* scales, const bf16* x, int64_t rows, int64_t K, int bits, int group,
                   cudaStream_t stream);

}  // namespace vidi::cuda
