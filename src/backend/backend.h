// The compute interface the model is written against. One implementation per device
// (backend/cpu, backend/cuda); the model code never knows which one runs it.
//
// Conventions:
// - Activations live on the backend's device in act_dtype() (f32 on the CPU; bf16 or f16 on a
//   GPU, chosen when it is made). A decoder's residual streams (x += sub-layer(x)) are in
//   residual_dtype(): f32, except where a GPU follows float16's official casts (f16). rms_norm
//   reads them (and returns act_dtype()), add_rms_norm_ and add_rms_norm_then_norm_ update them.
// - Some things are f32 on every backend (SPEC §9): the LM head's output (logits(): what the
//   greedy pick reads and every reported logit) and the positional MLPs (f32_weight(), linear
//   on f32 inputs).
// - Weights come from the checkpoint through weight(): the CPU keeps them memory-mapped
//   in bf16/f16 and converts tiles on the fly; a GPU uploads them once.
// - Row-major everywhere; "rows" are the leading dimensions flattened, the last dimension
//   is the feature dimension.
// - Ops return fresh tensors unless their name ends in '_' (in place).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/device_frames.h"
#include "core/qtensor.h"
#include "core/quantize.h"
#include "vidi/tensor.h"

namespace vidi {

enum class NormWeight : uint8_t {
    none,      // rmsnorm(x)
    plain,     // w ⊙ rmsnorm(x)
    one_plus,  // (1 + w) ⊙ rmsnorm(x)   (Gemma's norms)
};

enum class Gelu : uint8_t { erf, tanh };

// The gate's activation of a gated linear unit act(gate) ⊙ up (an MLP's first half).
enum class Glu : uint8_t {
    gelu_tanh,  // GeGLU (Gemma)
    silu,       // SwiGLU: x·sigmoid(x) (Llama, Mistral)
};

// One of the linears that read a LayerNorm's output (Backend::layer_norm_linears): x·wᵀ + bias
// (bias may be undefined), then GELU of that kind where `gelu` is set.
struct NormedLinear {
    NormedLinear(const QTensor& weight, Tensor b = {}, std::optional<Gelu> g = std::nullopt)
        : w(&weight), bias(std::move(b)), gelu(g) {}
    const QTensor* w;
    Tensor bias;
    std::optional<Gelu> gelu;
};

// Whether the FP8 GEMM (--compute fp8) takes a 16-bit weight [N, K]: K a multiple of 16, N of 8.
constexpr bool fp8_gemm_takes(int64_t N, int64_t K) { return N > 0 && K > 0 && K % 16 == 0 && N % 8 == 0; }
// The bytes of the FP8 copy Backend::keep_fp8_copy keeps of such a weight: one-byte E4M3 codes
// and an f32 scale a row (0 where the FP8 GEMM does not take it: no copy is kept).
constexpr size_t fp8_copy_bytes_of(int64_t N, int64_t K) {
    return fp8_gemm_takes(N, K) ? static_cast<size_t>(N * K + 4 * N) : 0;
}

// The most attention scores a backend holds at once (bytes); the memory planner counts it.
constexpr size_t kAttentionScoreBytes = size_t(256) << 20;
// Head dims whose unmasked attention of many rows (the towers: SigLIP 72, Whisper 64) a GPU
// runs in its fused tensor-core kernel, which holds no scores; others go through scores.
constexpr bool gpu_fused_attention(int64_t head_dim) { return head_dim == 64 || head_dim == 72 || head_dim == 128; }

// Greedy decoding's choice in one row of logits: the index of the largest value (the first
// one on ties, as torch.argmax) and its lead over the second largest (0 on a tie).
struct TopPick {
    int32_t id = 0;
    float margin = 0.0f;
};
// The same over n host floats (NaNs are never picked).
inline TopPick top_pick(const float* x, int64_t n) {
    TopPick p;
    float top = -std::numeric_limits<float>::infinity(), second = top;
    for (int64_t i = 0; i < n; ++i) {
        if (x[i] > top) {
            second = top;
            top = x[i];
            p.id = static_cast<int32_t>(i);
        } else if (x[i] > second) {
            second = x[i];
        }
    }
    p.margin = top - second;
    return p;
}

struct AttentionParams {
    float scale = 1.0f;
    float softcap = 0.0f;  // 0: no soft-cap; else cap·tanh(s/cap)
    bool causal = false;   // key j visible to query i only if pos(j) <= pos(i)
    int window = 0;        // > 0: also require pos(i) - pos(j) <= window
    int64_t q_pos0 = 0;    // position of query 0; keys are at positions 0..Tk-1
    // When defined (i32 [1] on the backend, causal only): query 0's position is read from it
    // as the op runs, replacing q_pos0, and keys past a query's position are never read, so k
    // and v may be a whole cache with rows still unfilled. A recorded decoding step reads its
    // position this way and replays at every position (Backend::run_step).
    Tensor step_pos;
    // Cross-attention only: the query rows are a decoding step's (one query of each sequence),
    // not a prompt's. A GPU serves them with a kernel made for few rows; a row's bits depend on
    // this flag, never on how many rows come with it.
    bool step_rows = false;
};

// What a backend recorded of a decoding step (Backend::run_step); owned by the caller.
class StepRecording {
public:
    virtual ~StepRecording() = default;
};

// One of a step's changing inputs: an i32 tensor on the backend ([1], or [n] for a step of n
// sequences) and its values this time.
struct StepInput {
    StepInput(Tensor t, int32_t value) : tensor(std::move(t)), values{value} {}
    StepInput(Tensor t, std::vector<int32_t> v) : tensor(std::move(t)), values(std::move(v)) {}
    Tensor tensor;
    std::vector<int32_t> values;
};

// Device memory as a backend sees it (GPU backends only).
struct DeviceMemory {
    size_t free = 0;    // free on the device now (cudaMemGetInfo)
    size_t total = 0;   // the device's size
    size_t in_use = 0;  // held by live tensors of this backend
    size_t cached = 0;  // held by this backend for reuse (counts as available to it)
    size_t limit = 0;   // the cap set with set_memory_limit (0: none)
    // What the process holds on the device outside the backend's own allocations (CUDA
    // context, library code and handles), counted against the cap so that the whole
    // footprint stays under it.
    size_t outside = 0;
};

class Backend;

// Names the device work a backend queues while it lives (Backend::section); see profile.cpp.
class [[nodiscard]] Section {
public:
    Section(Backend* be, const char* name);
    ~Section();
    Section(const Section&) = delete;
    Section& operator=(const Section&) = delete;

private:
    Backend* be_;
    size_t span_ = 0;
};

// Marks the matrix work of a media encode (the media tokens' layers) while it lives
// (Backend::encode_scope): what FP8 compute may take (Backend::set_fp8_encode).
class [[nodiscard]] EncodeScope {
public:
    explicit EncodeScope(int* depth) : depth_(depth) { ++*depth_; }
    ~EncodeScope() { --*depth_; }
    EncodeScope(const EncodeScope&) = delete;
    EncodeScope& operator=(const EncodeScope&) = delete;

private:
    int* depth_;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual std::string name() const = 0;  // "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"
    virtual Device device() const = 0;
    virtual DType act_dtype() const = 0;
    // The dtype of a decoder's residual streams (see the conventions above).
    virtual DType residual_dtype() const { return DType::f32; }

    // --- memory ---------------------------------------------------------------------
    virtual Tensor empty(const Shape& shape, DType dtype) = 0;  // contents undefined
    Tensor act(const Shape& shape) { return empty(shape, act_dtype()); }
    // Tensors of logical shape parts[i].first held as parts[i].second (quantised, or unquantised:
    // act_dtype()), contents undefined, carved from ONE allocation (each piece 256-byte aligned)
    // that lives while any of them does. A cache of many parts that lives and dies together
    // (a video's media K/V: codes, scales and zeros of every layer) so takes one block: a GPU's
    // pool rounds every block up to 2 MiB, ~0.35 GiB over the 420 parts of an hour's 4-bit K/V.
    std::vector<QTensor> empty_together(const std::vector<std::pair<Shape, QuantFormat>>& parts);
    QTensor empty_quantized(const Shape& shape, const QuantFormat& format) { return empty_together({{shape, format}})[0]; }
    // A checkpoint tensor (host, possibly memory-mapped) made usable by this backend.
    virtual Tensor weight(const Tensor& host) = 0;
    // The same for ops that compute in f32 (the positional MLPs: linear on f32 inputs): on a
    // GPU the values weight() holds (the activation dtype's), widened to f32, as the official
    // model widens them; the CPU, whose ops all compute in f32, keeps it as weight() does.
    virtual Tensor f32_weight(const Tensor& host) { return weight(host); }
    // A linear/embedding weight, float or quantised (host QTensor), made usable: the CPU keeps
    // it as it is; a GPU uploads float weights as bf16 and quantised ones as stored.
    virtual QTensor linear_weight(const QTensor& host) = 0;
    // A float host weight [N, K] quantised to `format` and made usable. The result equals
    // linear_weight(quantize(host, format)) (core/quantize.h); a GPU does the work itself.
    virtual QTensor quantized_weight(const Tensor& host, const QuantFormat& format) {
        return linear_weight(vidi::quantize(host, format));
    }
    // x[..., K] (activations) -> the same values quantised on the device (media K/V: 8-bit, and
    // 4-bit keys per channel in blocks of rows and values per token; see media_kv_format).
    virtual QTensor quantize(const Tensor& x, const QuantFormat& format) = 0;
    // Host tensor -> device tensor of the same dtype, or converted to act_dtype() if float.
    virtual Tensor upload(const Tensor& host) = 0;
    // Any device tensor -> host f32 (floats) or same dtype (integers).
    virtual Tensor to_host(const Tensor& t) = 0;
    // dst = src (same element count; float dtypes may differ). dst may be a view.
    virtual void copy_(Tensor& dst, const Tensor& src) = 0;
    virtual void synchronize() {}
    // A decoding step: the same ops every time, only a few i32 inputs change (the token id,
    // the position). Sets each input's tensor to its value, then queues what `queue` queues.
    // A GPU backend records the ops into `rec` the first time and afterwards only sets the
    // inputs and replays the recording without calling `queue`. So `queue` must read what
    // changes only from the inputs' tensors, keep its results in tensors that outlive `rec`
    // (a replay writes the same ones), and not read anything back to the host; the caller
    // drops `rec` when anything else the step reads (a cache, the media) is replaced.
    // By default `queue` simply runs every time.
    virtual void run_step(std::unique_ptr<StepRecording>& rec, const std::vector<StepInput>& inputs,
                          const std::function<void()>& queue);
    // While the token lives, run_step records nothing new: a step without a recording runs its
    // ops directly. For work on another thread that would break a recording (closing NVDEC's
    // sessions: recording_gate.h); it waits for a recording under way. Dropped on any thread.
    // Nothing to hold where nothing is recorded (null).
    virtual std::shared_ptr<void> hold_step_recording() { return nullptr; }
    // GPU backends report their memory and enforce a cap on what they hold (--gpu-memory);
    // the CPU backend has neither (nullopt, no-op).
    virtual std::optional<DeviceMemory> device_memory() const { return std::nullopt; }
    virtual void set_memory_limit(size_t /*bytes*/) {}

    // --- dense algebra ----------------------------------------------------------------
    // y[rows, N] = x[rows, K] · w[N, K]ᵀ (+ bias[N]); w float or quantised (int8/int4). y has x's
    // dtype: activations, or f32 for f32 x with f32_weight()s (a plain f32 GEMM, no TF32).
    virtual Tensor linear(const Tensor& x, const QTensor& w, const Tensor& bias = {}) = 0;
    // The LM head: f32 [rows, N] = softcap(x · wᵀ) from activations x, the product accumulated
    // and stored in f32 (never rounded to a 16-bit type) and soft-capped in f32, cap·tanh(y/cap)
    // (cap ≤ 0: none). What the greedy pick reads and every logit the engine reports.
    virtual Tensor logits(const Tensor& x, const QTensor& w, float softcap);

    // gelu(x·wᵀ + bias): an MLP's first half (a GPU applies GELU in the GEMM's epilogue).
    virtual Tensor linear_gelu(const Tensor& x, const QTensor& w, const Tensor& bias, Gelu kind) {
        Tensor y = linear(x, w, bias);
        gelu_(y, kind);
        return y;
    }
    // y += x·wᵀ + bias: a residual sub-layer's last projection (a GPU adds y in the GEMM).
    virtual void linear_add_(Tensor& y, const Tensor& x, const QTensor& w, const Tensor& bias = {}) {
        add_(y, linear(x, w, bias));
    }
    // glu(linear(x, gate), linear(x, up), kind): an MLP's first half. A GPU fuses it for few rows.
    virtual Tensor linear_glu(const Tensor& x, const QTensor& gate, const QTensor& up, Glu kind) {
        return glu(linear(x, gate), linear(x, up), kind);
    }
    // linear(linear_glu(x, gate, up, kind), down): a gated MLP whole. A GPU in an FP8 encode
    // turns the gated activation into FP8 as it computes it (no 16-bit round trip).
    virtual Tensor glu_mlp(const Tensor& x, const QTensor& gate, const QTensor& up, const QTensor& down, Glu kind) {
        return linear(linear_glu(x, gate, up, kind), down);
    }
    // Several linears of one input (attention's q, k and v): *outs[i] = x · ws[i]ᵀ, each out
    // holding rows × N_i elements (a view is fine: k and v go straight into the text cache).
    // A GPU reads all the weights in one GEMV launch for few rows.
    virtual void linear_into_(const std::vector<Tensor*>& outs, const Tensor& x, const std::vector<const QTensor*>& ws);
    // A tower sub-layer's start: h = layer_norm(x, w, b, eps), then the linears that read h
    // (attention's q, k and v; or the MLP's fc1 with its GELU), one output each. With FP8 on
    // (set_fp8_encode: the towers run only in encodes) a GPU writes h straight as the FP8
    // GEMMs' input, each row rounded as layer_norm stores it, then converted (one pass, no
    // 16-bit h; the conversion on its own cost more than FP8 saved at the towers' shapes).
    virtual std::vector<Tensor> layer_norm_linears(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                                   const std::vector<NormedLinear>& linears);
    // A tower's attention up to its output projection: q, k and v of layer_norm(x, w, b, eps)
    // (qkv: no GELU), then each of `sequences` runs of x's rows attending within itself with
    // `heads` heads, no mask: [rows, heads·hd]. A GPU with the three weights' FP8 copies kept
    // joined (keep_fp8_copies_joined) runs q, k and v as one GEMM and its attention reads them
    // where that GEMM wrote them.
    virtual Tensor layer_norm_attention(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                        const std::array<NormedLinear, 3>& qkv, int64_t sequences, int64_t heads,
                                        const AttentionParams& p);
    // Which linears give a row the same bits whatever rows surround it: when
    // linear_row_class(a) == linear_row_class(b) == linear_row_class(a + b) ≥ 0, a linear of
    // a + b rows gives its first a rows and its last b rows what linears of them alone give,
    // so prompts of such lengths can share their linears (DattnDecoder::prefill_rows). -1: the
    // bits of a row may depend on the row count (the default; a CPU BLAS picks its kernels by it).
    virtual int linear_row_class(int64_t rows) const {
        (void)rows;
        return -1;
    }

    // --- element-wise / row-wise --------------------------------------------------------
    virtual void add_(Tensor& x, const Tensor& y) = 0;  // same shape
    // x[A,B,C,D] += y[a,b,c,D] where each of a,b,c is either the same as A,B,C or 1.
    virtual void add_broadcast_(Tensor& x, const Tensor& y) = 0;
    virtual void scale_(Tensor& x, float s) = 0;
    virtual void gelu_(Tensor& x, Gelu kind) = 0;
    virtual void softcap_(Tensor& x, float cap) = 0;
    // act(gate) ⊙ up, act as `kind` says.
    virtual Tensor glu(const Tensor& gate, const Tensor& up, Glu kind) = 0;
    virtual Tensor rms_norm(const Tensor& x, const Tensor& w, float eps, NormWeight mode) = 0;
    virtual Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) = 0;
    // x += rms_norm(y, w): a residual update after a sub-layer (Gemma's post-norms). A GPU
    // does it in one pass, with the same roundings as the two ops.
    virtual void add_rms_norm_(Tensor& x, const Tensor& y, const Tensor& w, float eps, NormWeight mode) {
        add_(x, rms_norm(y, w, eps, mode));
    }
    // add_rms_norm_, then the next sub-layer's input rms_norm(x, w_next): one pass on a GPU.
    virtual Tensor add_rms_norm_then_norm_(Tensor& x, const Tensor& y, const Tensor& w, const Tensor& w_next,
                                           float eps, NormWeight mode) {
        add_rms_norm_(x, y, w, eps, mode);
        return rms_norm(x, w_next, eps, mode);
    }
    // x += y, then the next sub-layer's input rms_norm(x, w_next): a residual update that
    // adds the sub-layer's output as it is (Mistral's, no norm after the sub-layer). x is a
    // residual stream, y activations. One pass on a GPU, with the same roundings as the two ops.
    virtual Tensor add_then_norm_(Tensor& x, const Tensor& y, const Tensor& w_next, float eps, NormWeight mode) {
        add_(x, y);
        return rms_norm(x, w_next, eps, mode);
    }
    // The greedy pick of each row of logits x[rows, N] (f32 from logits(), or activations), on
    // the host. A GPU finds them on the device and copies back a few bytes instead of the logits.
    virtual std::vector<TopPick> top_picks(const Tensor& x);

    // --- attention ----------------------------------------------------------------------
    // Rotate-half RoPE on x[T, H, hd] at positions pos0 .. pos0+T-1.
    virtual void rope_(Tensor& x, int64_t pos0, double theta) = 0;
    // New text positions' attention inputs: RoPE on q[T, H, hd] and k[T, KV, hd] at positions
    // p .. p+T-1, then k and v[T, KV, hd] stored as rows p .. p+T-1 of k_cache and v_cache
    // [capacity, KV, hd], where p = pos[0] (i32 [1] on the backend, read as the op runs: a
    // recorded step replays at every position). One launch on a GPU, which leaves k itself as it
    // was (the CPU rotates it in place): read the keys from the cache.
    virtual void rope_and_cache_kv_(Tensor& q, Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache,
                                    const Tensor& pos, double theta);
    // rope_and_cache_kv_ for one token of each of B sequences (a batch's step): row b of
    // q[B, H, hd], k and v[B, KV, hd] at position pos[b] (i32 [B] on the backend, read as the op
    // runs) into its own caches *k_caches[b], *v_caches[b]; each row as the op on it alone. One
    // launch on a GPU. By default the op a row.
    virtual void rope_and_cache_kv_rows_(Tensor& q, Tensor& k, const Tensor& v, const std::vector<Tensor*>& k_caches,
                                         const std::vector<Tensor*>& v_caches, const Tensor& pos, double theta);
    // q[Tq, H, hd], k/v[Tk, KV, hd] (H a multiple of KV) -> [Tq, H, hd]. k and v are float,
    // or a quantised media K/V pair (media_kv_format): both int8 with one scale per (token,
    // head), or 4-bit (keys per channel over blocks of tokens with zero points, values per
    // token in groups; no sliding window). check_quantized_kv() states the rules.
    virtual Tensor attention(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p) = 0;
    // out += attention(q, k, v, p): decomposed attention sums the streams' outputs. A GPU adds
    // as it writes, where its kernel allows.
    virtual void attention_add_(Tensor& out, const Tensor& q, const QTensor& k, const QTensor& v,
                                const AttentionParams& p) {
        add_(out, attention(q, k, v, p));
    }
    // A batched decoding step's text attention: out[b] += attention(q[b], keys[b], values[b])
    // for each row b of q[B, H, hd], at the row's own position (p.step_pos: i32 [B] on the
    // backend, causal), each row over its own cache. A row gets the bits attention_add_()
    // gives it alone. By default one attention_add_() a row.
    virtual void step_attention_add_(Tensor& out, const Tensor& q, const std::vector<QTensor>& keys,
                                     const std::vector<QTensor>& values, const AttentionParams& p);
    // step_attention_add_'s rows B, once its arguments are checked (fails otherwise).
    static int64_t step_attention_rows(const Tensor& out, const Tensor& q, const std::vector<QTensor>& keys,
                                       const std::vector<QTensor>& values, const AttentionParams& p);
    // Unmasked attention of independent query rows over shared K/V: q[R, H, hd] -> [R, H, hd]
    // (a prompt's queries, or one query of each sequence of a batched decoding step, over a
    // video's media K/V). Each row's bits do not depend on the other rows, so a batch answers as
    // its questions one by one (every cross-attention of the decoder goes through it). By
    // default one attention() a row.
    virtual Tensor cross_attention(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p);
    // out += cross_attention(q, k, v, p), each row rounded as the op then add_() would.
    virtual void cross_attention_add_(Tensor& out, const Tensor& q, const QTensor& k, const QTensor& v,
                                      const AttentionParams& p);
    // n independent sequences at once: q[n, Tq, H, hd], k/v[n, Tk, KV, hd] -> [n, Tq, H, hd]
    // (the vision tower's frames). By default one attention() per sequence.
    virtual Tensor attention_batch(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);
    // v[T, KV, hd] -> [T, H, hd], each KV head repeated H/KV times.
    virtual Tensor repeat_kv(const Tensor& v, int heads) = 0;

    // --- layout ---------------------------------------------------------------------------
    // table[V, D] (a linear_weight(), float or quantised) gathered at ids (i32 [T] on the
    // backend) -> [T, D] activations. A GPU cannot check ids on the device: an id outside
    // 0..V-1 gives a row of zeros there.
    virtual Tensor embed(const QTensor& table, const Tensor& ids) = 0;
    // The same for ids on the host, each checked against the vocabulary first.
    Tensor embed(const QTensor& table, const std::vector<int32_t>& ids);
    virtual Tensor transpose2d(const Tensor& x) = 0;  // [A, B] -> [B, A]
    // x[T, C] -> [T_out, C·k] with element (t, c·k + j) = x[t·stride + j - pad, c] (0 outside):
    // a Conv1d as a GEMM against its [Cout, Cin, k] weight viewed as [Cout, Cin·k].
    virtual Tensor im2col_1d(const Tensor& x, int k, int stride, int pad) = 0;
    // x[F, H, W, C] -> [F, Ho, Wo, C·k·k], Ho = (H − k)/stride + 1 (Wo alike), with element
    // (f, oy, ox, c·k·k + ky·k + kx) = x[f, oy·stride + ky, ox·stride + kx, c]: a Conv2d without
    // padding as a GEMM against its [Cout, Cin, k, k] weight viewed as [Cout, Cin·k·k].
    virtual Tensor im2col_2d(const Tensor& x, int k, int stride) = 0;
    // pixels[N, C, S, S] -> [N, (S/p)², C·p·p] with element (c·p·p + ky·p + kx):
    // a stride-p Conv2d patch embedding as a GEMM.
    virtual Tensor patchify(const Tensor& pixels, int p) = 0;
    // x[F, H, W, C] -> [F, H/p, W/p, C·p·p], channel-major: index c·p·p + dy·p + dx.
    virtual Tensor space_to_depth(const Tensor& x, int p) = 0;
    // x[F, H, W, C] -> [F, H+bottom, W+right, C], zero padding at the bottom/right.
    virtual Tensor pad_grid(const Tensor& x, int bottom, int right) = 0;
    // x[F, H, W, C] -> [F, oh, ow, C], bilinear as PyTorch's interpolate: output index o reads
    // the source at (o + 0.5)·in/out − 0.5 (align_corners false; clamped at 0) or at
    // o·(in − 1)/(out − 1) (true; 0 when out is 1).
    virtual Tensor resize_bilinear(const Tensor& x, int oh, int ow, bool align_corners = false) = 0;

    // --- pixels ---------------------------------------------------------------------------
    // Sampled frames to the vision tower's input: packed RGB24 u8 [n, h, w, 3] on the host
    // (a GPU takes them in its memory too) -> activations [n, 3, size, size]: Pillow's bicubic
    // resize (core/pil_resize.h), then SigLIP's (v/255 − 0.5)/0.5. Every backend gives the
    // same bytes before its dtype rounding.
    virtual Tensor frames_to_pixels(const Tensor& rgb, int size) = 0;
    // Rings of frame batches in device memory for a hardware video decoder (NVDEC); null on
    // a backend without a GPU.
    virtual std::unique_ptr<DeviceFrames> device_frames(const DeviceFramesShape&) { return nullptr; }
    // The shape device_frames() makes of the one asked for (fewer slots under a memory cap).
    virtual DeviceFramesShape device_frames_shape(const DeviceFramesShape& asked) const { return asked; }
    // The audio tower's input: 16 kHz mono samples f32 [n] on the host -> activations
    // [pieces, n_mels, 3000], Whisper's log-mel of each 30 s piece (core/log_mel.h).
    virtual Tensor log_mel(const Tensor& pcm, int n_mels) = 0;
    // The positional encodings' sinusoid (core/sinusoid.h) of `positions`, computed in double
    // and rounded to f32 [positions.size(), dim] on this backend (dim even).
    virtual Tensor sinusoid(const std::vector<double>& positions, int64_t dim) = 0;

    // --- FP8 matrix work in the encode (--compute fp8) --------------------------------------
    // Whether this device multiplies FP8 (E4M3) matrices on tensor cores (sm_89 and newer).
    virtual bool fp8_supported() const { return false; }
    // On: the GEMMs queued inside encode_scope() take FP8 inputs (per-row scales of the weight
    // and of the activations, f32 accumulation, a 16-bit output); prompts and decoding keep
    // the activation dtype. Off by default.
    void set_fp8_encode(bool on) {
        VIDI_CHECK(!on || fp8_supported(), name(), " has no FP8 matrix units (--compute fp8 needs a GPU of compute "
                   "capability 8.9 or newer: Ada, Hopper, Blackwell)");
        fp8_encode_ = on;
    }
    bool fp8_encode() const { return fp8_encode_; }
    EncodeScope encode_scope() { return EncodeScope(&encode_depth_); }
    // Keeps an FP8 copy of the 16-bit weight w (E4M3 codes, a scale per output channel), made
    // once, so that the FP8 GEMMs of an encode stop converting w at each call; the copy holds
    // w and lives as long as this backend. Returns the bytes it takes: 0 where FP8 would not
    // take w (quantised, another dtype, a shape the FP8 GEMM refuses, no FP8 units) or w is
    // kept already.
    virtual size_t keep_fp8_copy(const QTensor& w) {
        (void)w;
        return 0;
    }
    // keep_fp8_copy of each of q, k and v, their copies in one block, output channels in that
    // order, with their biases joined beside them (zeros for a linear without one): what
    // layer_norm_attention needs to run them as one GEMM. Returns the bytes kept.
    virtual size_t keep_fp8_copies_joined(const std::array<NormedLinear, 3>& qkv) {
        size_t bytes = 0;
        for (const NormedLinear& l : qkv) bytes += keep_fp8_copy(*l.w);
        return bytes;
    }
    // The bytes every kept FP8 copy takes.
    virtual size_t fp8_copy_bytes() const { return 0; }

    // --- where the time goes (VIDI_PROFILE=1 in the environment) --------------------------
    // The device time of the work queued while the returned object lives is summed under
    // `name` (a string literal); free when profiling is off. Sections may nest.
    // (Unnamed while a step is being recorded: events cannot time a graph's nodes.)
    Section section(const char* name) { return Section(profiling() && !recording_step() ? this : nullptr, name); }
    // Whether run_step() is recording a step now (a GPU's graph capture).
    virtual bool recording_step() const { return false; }
    bool profiling();
    // Waits for the device, then one line per name (calls, milliseconds), longest first;
    // forgets what it reported.
    std::vector<std::string> profile_report();

protected:
    // run_step's first part: each input's tensor set to its value.
    void set_step_inputs(const std::vector<StepInput>& inputs);
    // A point in the queue of work. The default reads the host clock, right for a backend
    // whose ops have finished when they return; a GPU records an event.
    virtual int64_t time_point() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    }
    // Milliseconds between two points, once the work before both has run.
    virtual double ms_between(int64_t from, int64_t to) { return static_cast<double>(to - from) * 1e-6; }
    virtual void forget_time_points() {}
    // Whether FP8 is asked for and the queued work belongs to an encode.
    bool fp8_now() const { return fp8_encode_ && encode_depth_ > 0; }

private:
    friend class Section;
    struct Span {
        const char* name;
        int64_t from, to;
    };
    std::vector<Span> spans_;
    int profiling_ = -1;  // unknown until first asked
    bool fp8_encode_ = false;
    int encode_depth_ = 0;
};

// attention()'s rules for quantised K/V, the same for every backend: both sides quantised in
// the layouts media_kv_format(bits, hd) gives, with scales (and zeros) matching the codes.
inline void check_quantized_kv(const QTensor& k, const QTensor& v, const AttentionParams& p) {
    VIDI_CHECK(k.quantized() == v.quantized(), "attention: k ", k.describe(), " and v ", v.describe(),
               " must both be float or both be quantised");
    if (!k.quantized()) return;
    VIDI_CHECK(k.rank() == 3 && v.rank() == 3 && k.shape() == v.shape(), "attention: quantised k ", k.describe(),
               " and v ", v.describe(), " must be [Tk, KV, hd] alike");
    const int64_t T = k.dim(0), hd = k.dim(2);
    VIDI_CHECK(k.bits == v.bits && (k.bits == 8 || k.bits == 4), "attention: quantised K/V must be int8 or int4, got ",
               k.describe(), ", ", v.describe());
    const MediaKvFormat f = media_kv_format(k.bits, hd);  // refuses head dimensions 4 bits cannot take
    for (auto [t, want, side] : {std::tuple{&k, &f.key, "k"}, std::tuple{&v, &f.value, "v"}}) {
        const QuantLayout l = quant_layout(t->shape(), *want);
        VIDI_CHECK(t->group == l.group && t->block == l.block && t->values.dtype() == l.values_dtype &&
                       t->values.shape() == l.values && t->scales.defined() && t->scales.shape() == l.scales &&
                       t->scales.dtype() == want->scale_dtype && t->zeros.defined() == want->zero_points &&
                       (!want->zero_points || (t->zeros.shape() == l.scales && t->zeros.dtype() == want->scale_dtype)),
                   "attention: quantised ", side, " ", t->describe(), " (scales ", t->scales.describe(),
                   ") is not in the media K/V layout ", want->name(), " for [", T, ", ", k.dim(1), ", ", hd, "]");
    }
    VIDI_CHECK(k.bits != 4 || p.window == 0, "attention: 4-bit K/V (keys in blocks of ", kMediaKeyBlock,
               " tokens) take no sliding window");
}

// frames_to_pixels' argument rules, the same for every backend (on_device: the frames may
// be in the backend's device memory).
inline void check_frames_to_pixels(const Tensor& rgb, int size, bool on_device = false) {
    VIDI_CHECK(rgb.defined() && (rgb.on_host() || on_device) && rgb.dtype() == DType::u8 && rgb.rank() == 4 &&
                   rgb.dim(3) == 3,
               "frames_to_pixels: expected packed RGB24 frames u8 [n, h, w, 3] in ",
               on_device ? "host or device" : "host", " memory, got ", rgb.describe());
    VIDI_CHECK(rgb.dim(1) > 0 && rgb.dim(2) > 0 && size > 0 && size <= 4096, "frames_to_pixels: bad sizes ",
               rgb.describe(), " -> ", size, "x", size);
}

// log_mel's argument rules.
inline void check_log_mel(const Tensor& pcm, int n_mels) {
    VIDI_CHECK(pcm.defined() && pcm.on_host() && pcm.dtype() == DType::f32 && pcm.rank() == 1 && pcm.numel() > 0,
               "log_mel: expected f32 samples [n > 0] in host memory, got ",
               pcm.describe());
    VIDI_CHECK(n_mels > 0 && n_mels <= 512, "log_mel: bad mel bin count ", n_mels);
}

inline std::vector<QTensor> Backend::empty_together(const std::vector<std::pair<Shape, QuantFormat>>& parts) {
    constexpr size_t kAlign = 256;
    std::vector<std::pair<Shape, DType>> pieces;  // every tensor of every part, in order
    for (const auto& [shape, format] : parts) {
        if (!format.quantized()) {
            pieces.emplace_back(shape, act_dtype());
            continue;
        }
        const QuantLayout l = quant_layout(shape, format);
        pieces.emplace_back(l.values, l.values_dtype);
        pieces.emplace_back(l.scales, format.scale_dtype);
        if (format.zero_points) pieces.emplace_back(l.scales, format.scale_dtype);
    }
    std::vector<size_t> offsets;
    size_t total = 0;
    for (const auto& [shape, dtype] : pieces) {
        offsets.push_back(total);
        total += (static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype) + kAlign - 1) / kAlign * kAlign;
    }
    const auto block = std::make_shared<Tensor>(empty({static_cast<int64_t>(std::max<size_t>(total, 1))}, DType::u8));
    size_t next = 0;
    auto piece = [&] {
        const auto& [shape, dtype] = pieces[next];
        return Tensor::wrap(static_cast<char*>(block->raw()) + offsets[next++], shape, dtype, block->device(), block);
    };
    std::vector<QTensor> out;
    for (const auto& [shape, format] : parts) {
        if (!format.quantized()) {
            out.emplace_back(piece());
            continue;
        }
        const QuantLayout l = quant_layout(shape, format);
        Tensor values = piece(), scales = piece();
        Tensor zeros = format.zero_points ? piece() : Tensor();
        out.emplace_back(values, scales, zeros, format.bits, l.group, l.block);
    }
    return out;
}

// Inline, so that Backend stays a header-only interface (its vtable is emitted where used).
inline void Backend::linear_into_(const std::vector<Tensor*>& outs, const Tensor& x,
                                  const std::vector<const QTensor*>& ws) {
    VIDI_CHECK(outs.size() == ws.size(), "linear_into_: ", outs.size(), " outputs for ", ws.size(), " weights");
    for (size_t i = 0; i < ws.size(); ++i) {
        const Tensor y = linear(x, *ws[i]);
        VIDI_CHECK(outs[i] && outs[i]->defined() && outs[i]->numel() == y.numel(), "linear_into_: output ", i, " ",
                   outs[i] ? outs[i]->describe() : "missing", " cannot hold ", y.describe());
        copy_(*outs[i], y);
    }
}

inline std::vector<Tensor> Backend::layer_norm_linears(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                                      const std::vector<NormedLinear>& linears) {
    const Tensor h = layer_norm(x, w, b, eps);
    std::vector<Tensor> out;
    for (const NormedLinear& l : linears)
        out.push_back(l.gelu ? linear_gelu(h, *l.w, l.bias, *l.gelu) : linear(h, *l.w, l.bias));
    return out;
}

inline Tensor Backend::layer_norm_attention(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                            const std::array<NormedLinear, 3>& qkv, int64_t sequences,
                                            int64_t heads, const AttentionParams& p) {
    const std::vector<Tensor> t = layer_norm_linears(x, w, b, eps, {qkv[0], qkv[1], qkv[2]});
    const int64_t rows = t[0].numel() / t[0].dim(-1);
    VIDI_CHECK(sequences > 0 && heads > 0 && rows % sequences == 0 && t[0].dim(-1) % heads == 0 &&
                   t[1].dim(-1) % heads == 0 && t[1].dim(-1) == t[2].dim(-1),
               "layer_norm_attention: ", rows, " rows of q ", t[0].dim(-1), ", k ", t[1].dim(-1), " and v ",
               t[2].dim(-1), " wide are not ", sequences, " sequences of ", heads, " heads");
    const int64_t T = rows / sequences, hd = t[0].dim(-1) / heads;
    const auto by_head = [&](const Tensor& y) { return y.reshape({sequences, T, y.dim(-1) / hd, hd}); };
    return attention_batch(by_head(t[0]), by_head(t[1]), by_head(t[2]), p).reshape({rows, t[0].dim(-1)});
}

inline void Backend::set_step_inputs(const std::vector<StepInput>& inputs) {
    for (const StepInput& in : inputs) {
        Tensor t = in.tensor;
        VIDI_CHECK(t.defined() && t.device() == device() && t.dtype() == DType::i32 &&
                       t.numel() == static_cast<int64_t>(in.values.size()) && t.numel() > 0,
                   "run_step: an input must be i32 on the backend with one value an element, got ", t.describe(),
                   " for ", in.values.size(), " values");
        copy_(t, Tensor::from_vector(in.values));
    }
}

inline void Backend::run_step(std::unique_ptr<StepRecording>& /*rec*/, const std::vector<StepInput>& inputs,
                              const std::function<void()>& queue) {
    set_step_inputs(inputs);
    queue();
}

// Each of n token ids in 0..vocab-1 (positions counted from `first` in the error).
inline void check_token_ids(const int32_t* ids, int64_t n, int64_t vocab, const char* op, int64_t first = 0) {
    for (int64_t i = 0; i < n; ++i)
        VIDI_CHECK(ids[i] >= 0 && ids[i] < vocab, op, ": token id ", ids[i], " at position ", first + i,
                   " is outside the vocabulary of ", vocab);
}

inline Tensor Backend::embed(const QTensor& table, const std::vector<int32_t>& ids) {
    VIDI_CHECK(table.defined() && table.rank() == 2, "embed: table must be [V, D], got ", table.describe());
    check_token_ids(ids.data(), static_cast<int64_t>(ids.size()), table.dim(0), "embed");
    return embed(table, upload(Tensor::from_vector(ids)));
}

// The step position's value, read on the host (backends whose memory the host reads).
inline int64_t read_step_pos(const Tensor& pos, const char* op) {
    VIDI_CHECK(pos.defined() && pos.on_host() && pos.dtype() == DType::i32 && pos.numel() == 1, op,
               ": the position must be i32 [1] in host memory, got ", pos.describe());
    const int64_t p = pos.data<int32_t>()[0];
    VIDI_CHECK(p >= 0, op, ": negative position ", p);
    return p;
}

// rope_and_cache_kv_'s shape rules, the same for every backend.
inline void check_rope_and_cache_kv(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& k_cache,
                                    const Tensor& v_cache) {
    VIDI_CHECK(q.rank() == 3 && k.rank() == 3 && q.dim(0) == k.dim(0) && q.dim(2) == k.dim(2) && v.shape() == k.shape() &&
                   k_cache.rank() == 3 && v_cache.shape() == k_cache.shape() && k_cache.dim(1) == k.dim(1) &&
                   k_cache.dim(2) == k.dim(2),
               "rope_and_cache_kv_: q ", q.describe(), ", k ", k.describe(), ", v ", v.describe(), " do not fit the caches ",
               k_cache.describe(), ", ", v_cache.describe());
}

inline void Backend::rope_and_cache_kv_(Tensor& q, Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache,
                                        const Tensor& pos, double theta) {
    check_rope_and_cache_kv(q, k, v, k_cache, v_cache);
    const Tensor p_host = pos.on_host() ? pos : to_host(pos);
    const int64_t p = read_step_pos(p_host, "rope_and_cache_kv_"), T = k.dim(0);
    VIDI_CHECK(p + T <= k_cache.dim(0), "rope_and_cache_kv_: rows ", p, "..", p + T - 1, " are past the cache's ",
               k_cache.dim(0), " rows");
    rope_(q, p, theta);
    rope_(k, p, theta);
    Tensor k_rows = k_cache.rows(p, p + T), v_rows = v_cache.rows(p, p + T);
    copy_(k_rows, k);
    copy_(v_rows, v);
}

inline void Backend::rope_and_cache_kv_rows_(Tensor& q, Tensor& k, const Tensor& v, const std::vector<Tensor*>& k_caches,
                                             const std::vector<Tensor*>& v_caches, const Tensor& pos, double theta) {
    const int64_t B = q.rank() == 3 ? q.dim(0) : 0;
    VIDI_CHECK(B > 0 && k.rank() == 3 && k.dim(0) == B && v.shape() == k.shape() &&
                   static_cast<int64_t>(k_caches.size()) == B && static_cast<int64_t>(v_caches.size()) == B &&
                   pos.numel() == B,
               "rope_and_cache_kv_rows_: q ", q.describe(), ", k ", k.describe(), ", ", k_caches.size(), " caches and ",
               pos.describe(), " positions do not match");
    for (int64_t b = 0; b < B; ++b) {
        Tensor qb = q.rows(b, b + 1), kb = k.rows(b, b + 1);
        rope_and_cache_kv_(qb, kb, v.rows(b, b + 1), *k_caches[b], *v_caches[b], pos.rows(b, b + 1), theta);
    }
}

inline Tensor Backend::logits(const Tensor& x, const QTensor& w, float softcap) {
    Tensor y = linear(x, w);
    VIDI_CHECK(y.dtype() == DType::f32, "logits: ", y.describe(), " from x ", x.describe(),
               " (a backend with 16-bit activations must give the LM head an f32 output)");
    if (softcap > 0) softcap_(y, softcap);
    return y;
}

inline std::vector<TopPick> Backend::top_picks(const Tensor& x) {
    VIDI_CHECK(x.defined() && x.rank() >= 1 && x.dim(-1) > 0, "top_picks: expected logits [rows, N > 0], got ",
               x.describe());
    const Tensor h = x.on_host() && x.dtype() == DType::f32 ? x : to_host(x);
    const int64_t N = h.dim(-1), rows = h.numel() / N;
    std::vector<TopPick> picks(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) picks[static_cast<size_t>(r)] = top_pick(h.data<float>() + r * N, N);
    return picks;
}

inline Tensor Backend::cross_attention(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p) {
    VIDI_CHECK(q.rank() == 3 && !p.causal && p.window == 0 && !p.step_pos.defined(),
               "cross_attention: expected q[R, H, hd] and unmasked attention, got ", q.describe());
    Tensor out = empty(q.shape(), act_dtype());
    for (int64_t b = 0; b < q.dim(0); ++b) {
        Tensor dst = out.rows(b, b + 1);
        copy_(dst, attention(q.rows(b, b + 1), k, v, p));
    }
    return out;
}

inline int64_t Backend::step_attention_rows(const Tensor& out, const Tensor& q, const std::vector<QTensor>& keys,
                                            const std::vector<QTensor>& values, const AttentionParams& p) {
    const int64_t B = q.rank() == 3 ? q.dim(0) : -1;
    VIDI_CHECK(B >= 1 && out.shape() == q.shape() && keys.size() == size_t(B) && values.size() == size_t(B) &&
                   p.step_pos.defined() && p.step_pos.numel() == B,
               "step_attention_add_: expected q and out [B, H, hd], B keys, values and positions, got q ",
               q.describe(), " with ", keys.size(), " caches");
    return B;
}

inline void Backend::step_attention_add_(Tensor& out, const Tensor& q, const std::vector<QTensor>& keys,
                                         const std::vector<QTensor>& values, const AttentionParams& p) {
    const int64_t B = step_attention_rows(out, q, keys, values, p);
    AttentionParams row = p;
    for (int64_t b = 0; b < B; ++b) {
        Tensor dst = out.rows(b, b + 1);
        row.step_pos = p.step_pos.rows(b, b + 1);
        attention_add_(dst, q.rows(b, b + 1), keys[size_t(b)], values[size_t(b)], row);
    }
}

inline void Backend::cross_attention_add_(Tensor& out, const Tensor& q, const QTensor& k, const QTensor& v,
                                          const AttentionParams& p) {
    VIDI_CHECK(q.rank() == 3 && out.shape() == q.shape() && !p.causal && p.window == 0 && !p.step_pos.defined(),
               "cross_attention_add_: expected q and out [R, H, hd] and unmasked attention, got q ", q.describe(),
               ", out ", out.describe());
    for (int64_t b = 0; b < q.dim(0); ++b) {
        Tensor dst = out.rows(b, b + 1);
        attention_add_(dst, q.rows(b, b + 1), k, v, p);
    }
}

inline Tensor Backend::attention_batch(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) {
    VIDI_CHECK(q.rank() == 4 && k.rank() == 4 && v.rank() == 4 && k.dim(0) == q.dim(0) && v.dim(0) == q.dim(0),
               "attention_batch: expected q[n, Tq, H, hd] and k/v[n, Tk, KV, hd], got ", q.describe(), ", ",
               k.describe(), ", ", v.describe());
    Tensor out = empty(q.shape(), act_dtype());
    for (int64_t i = 0; i < q.dim(0); ++i) {
        Tensor dst = out.row(i);
        copy_(dst, attention(q.row(i), k.row(i), v.row(i), p));
    }
    return out;
}

// The CPU backend (OpenBLAS + OpenMP). threads <= 0: all cores.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0);

}  // namespace vidi

namespace vidi {
// The CUDA backend on device `ordinal` (only in builds with VIDI_CUDA), computing in `act`:
// bf16, or f16 with the official float16 inference's casts (docs/cuda.md).
std::unique_ptr<Backend> make_cuda_backend(int ordinal = 0, DType act = DType::bf16);
// "cpu", "cuda", "cuda:N" or "auto" (CUDA when built with it and a GPU is present); gpu_dtype
// is a GPU's activation dtype (the CPU computes in f32).
std::unique_ptr<Backend> make_backend(const std::string& kind, int threads = 0, DType gpu_dtype = DType::bf16);
// "bf16" / "fp16" (--dtype) -> the dtype; anything else is an error.
DType parse_compute_dtype(const std::string& name);
bool cuda_available();
}  // namespace vidi
