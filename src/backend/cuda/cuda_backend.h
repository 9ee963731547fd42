// The CUDA implementation of vidi::Backend: activations and weights in one 16-bit dtype (bf16,
// or f16 for the official float16 numerics) on one GPU, all work queued on the backend's own
// stream, memory from a caching pool. Float tensors given to its ops must be device tensors of
// that dtype (what act(), weight() and upload() produce) unless an op says it takes f32 (the
// LM head's logits, the positional MLPs, f32 residual streams); copy_ converts between float
// dtypes.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include "backend/backend.h"
#include "core/recording_gate.h"

namespace vidi::cuda {

struct AttentionArgs;
class DevicePool;
class Gemm;
enum class Epilogue : uint8_t;
class HostStaging;
class StepGraph;

// Whether the GEMV takes the M rows of x (checked) with the 16-bit float weight w: a decoding
// step streams each weight once, faster than cuBLASLt reads it. Otherwise the GEMM serves,
// whose epilogue can also apply GELU or add into the output.
bool float_gemv_takes(const Tensor& x, const Tensor& w, int64_t M);

class CudaBackend final : public Backend {
public:
    // act: the activation dtype, bf16 or f16.
    explicit CudaBackend(int ordinal, DType act = DType::bf16);
    ~CudaBackend() override;

    std::string name() const override { return name_; }
    Device device() const override { return Device::cuda; }
    DType act_dtype() const override { return act_; }
    // f32 with bf16 activations; f16 with f16 ones, as the official float16 model keeps them.
    DType residual_dtype() const override { return act_ == DType::f16 ? DType::f16 : DType::f32; }

    Tensor empty(const Shape& shape, DType dtype) override;
    Tensor weight(const Tensor& host) override;
    Tensor f32_weight(const Tensor& host) override;
    QTensor linear_weight(const QTensor& host) override;
    QTensor quantize(const Tensor& x, const QuantFormat& format) override;
    QTensor quantized_weight(const Tensor& host, const QuantFormat& format) override;
    Tensor upload(const Tensor& host) override;
    Tensor to_host(const Tensor& t) override;
    void copy_(Tensor& dst, const Tensor& src) override;
    void synchronize() override;
    // Recorded as a CUDA graph and replayed (step_graph.h) unless graphs are off
    // (VIDI_CUDA_GRAPHS=0 in the environment, or set_step_graphs(false)).
    void run_step(std::unique_ptr<StepRecording>& rec, const std::vector<StepInput>& inputs,
                  const std::function<void()>& queue) override;
    std::shared_ptr<void> hold_step_recording() override { return recording_gate_.hold(); }

    Tensor linear(const Tensor& x, const QTensor& w, const Tensor& bias = {}) override;
    Tensor logits(const Tensor& x, const QTensor& w, float softcap) override;
    Tensor linear_gelu(const Tensor& x, const QTensor& w, const Tensor& bias, Gelu kind) override;
    void linear_add_(Tensor& y, const Tensor& x, const QTensor& w, const Tensor& bias = {}) override;
    Tensor linear_glu(const Tensor& x, const QTensor& gate, const QTensor& up, Glu kind) override;
    Tensor glu_mlp(const Tensor& x, const QTensor& gate, const QTensor& up, const QTensor& down, Glu kind) override;
    void linear_into_(const std::vector<Tensor*>& outs, const Tensor& x, const std::vector<const QTensor*>& ws) override;
    std::vector<Tensor> layer_norm_linears(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                           const std::vector<NormedLinear>& linears) override;
    Tensor layer_norm_attention(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                                const std::array<NormedLinear, 3>& qkv, int64_t sequences, int64_t heads,
                                const AttentionParams& p) override;
    int linear_row_class(int64_t rows) const override;
    bool fp8_supported() const override { return fp8_units_; }
    size_t keep_fp8_copy(const QTensor& w) override;
    size_t keep_fp8_copies_joined(const std::array<NormedLinear, 3>& qkv) override;
    size_t fp8_copy_bytes() const override;

    void add_(Tensor& x, const Tensor& y) override;
    void add_broadcast_(Tensor& x, const Tensor& y) override;
    void scale_(Tensor& x, float s) override;
    void gelu_(Tensor& x, Gelu kind) override;
    void softcap_(Tensor& x, float cap) override;
    Tensor glu(const Tensor& gate, const Tensor& up, Glu kind) override;
    Tensor rms_norm(const Tensor& x, const Tensor& w, float eps, NormWeight mode) override;
    Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) override;
    void add_rms_norm_(Tensor& x, const Tensor& y, const Tensor& w, float eps, NormWeight mode) override;
    Tensor add_then_norm_(Tensor& x, const Tensor& y, const Tensor& w_next, float eps, NormWeight mode) override;
    Tensor add_rms_norm_then_norm_(Tensor& x, const Tensor& y, const Tensor& w, const Tensor& w_next, float eps,
                                   NormWeight mode) override;
    std::vector<TopPick> top_picks(const Tensor& x) override;

    void rope_(Tensor& x, int64_t pos0, double theta) override;
    void rope_and_cache_kv_(Tensor& q, Tensor& k, const Tensor& v, Tensor& k_cache, Tensor& v_cache, const Tensor& pos,
                            double theta) override;
    Tensor attention(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p) override;
    // On tensor cores (attention_cross.cu) for 16-bit K/V of head dim 32/64/128/256, reading
    // the K/V once for 64 rows; else (int8 and int4 K/V, other head dims) a few queries a
    // launch of the few-row kernel.
    Tensor cross_attention(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p) override;
    void rope_and_cache_kv_rows_(Tensor& q, Tensor& k, const Tensor& v, const std::vector<Tensor*>& k_caches,
                                 const std::vector<Tensor*>& v_caches, const Tensor& pos, double theta) override;
    void cross_attention_add_(Tensor& out, const Tensor& q, const QTensor& k, const QTensor& v,
                              const AttentionParams& p) override;
    void step_attention_add_(Tensor& out, const Tensor& q, const std::vector<QTensor>& keys,
                             const std::vector<QTensor>& values, const AttentionParams& p) override;
    void attention_add_(Tensor& out, const Tensor& q, const QTensor& k, const QTensor& v,
                        const AttentionParams& p) override;
    Tensor attention_batch(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p) override;
    Tensor repeat_kv(const Tensor& v, int heads) override;

    using Backend::embed;
    Tensor embed(const QTensor& table, const Tensor& ids) override;
    Tensor transpose2d(const Tensor& x) override;
    Tensor im2col_1d(const Tensor& x, int k, int stride, int pad) override;
    Tensor im2col_2d(const Tensor& x, int k, int stride) override;
    Tensor patchify(const Tensor& pixels, int p) override;
    Tensor space_to_depth(const Tensor& x, int p) override;
    Tensor pad_grid(const Tensor& x, int bottom, int right) override;
    Tensor resize_bilinear(const Tensor& x, int oh, int ow, bool align_corners = false) override;
    Tensor frames_to_pixels(const Tensor& rgb, int size) override;
    std::unique_ptr<DeviceFrames> device_frames(const DeviceFramesShape& shape) override;  // device_frames.cpp
    DeviceFramesShape device_frames_shape(const DeviceFramesShape& asked) const override;
    Tensor log_mel(const Tensor& pcm, int n_mels) override;
    Tensor sinusoid(const std::vector<double>& positions, int64_t dim) override;

    // --- CUDA-specific ------------------------------------------------------------------
    int ordinal() const { return ordinal_; }
    cudaStream_t stream() const { return stream_; }
    int sm_count() const { return sm_count_; }
    // Tests: fill every new tensor with NaN bytes (0xFF), so unwritten outputs show.
    void set_poison_new_tensors(bool on) { poison_ = on; }
    // Whether run_step() records graphs (tests compare both ways), and how many it recorded.
    void set_step_graphs(bool on) { step_graphs_ = on; }
    int step_recordings() const { return step_recordings_; }
    bool recording_step() const override { return recording_ != nullptr; }
    std::optional<DeviceMemory> device_memory() const override;
    void set_memory_limit(size_t bytes) override;
    size_t bytes_in_use() const;
    size_t bytes_cached() const;
    void release_cached();

protected:
    // Events on the stream (reused after each profile report).
    int64_t time_point() override;
    double ms_between(int64_t from, int64_t to) override;
    void forget_time_points() override { events_used_ = 0; }

private:
    // A device tensor; for_model: one that lives as long as the model (a weight), packed with
    // others into shared slabs (DevicePool::allocate_packed).
    Tensor allocate(const Shape& shape, DType dtype, bool for_model);
    // Same dtype, bytes copied. loading: a weight's bytes (for_model, or on their way to a
    // conversion), which HostStaging copies with threads at any size.
    Tensor to_device_raw(const Tensor& host, bool for_model = false, bool loading = false);
    // A float tensor as `dtype` on the device (upload(), weight(), f32_weight()); others as they are.
    Tensor upload_as(const Tensor& host, DType dtype, bool for_model);
    // t is an activation (act_dtype() on this GPU), named in the error as op's `what`.
    void require_act(const Tensor& t, const char* op, const char* what) const;
    // cuda_ops.cpp: linear with a float weight (act_ or f32 throughout), into y_dtype (x's, or f32).
    Tensor linear_float(const Tensor& x, const Tensor& w, const Tensor& bias, DType y_dtype, const char* op);
    // Few rows would pay more for converting x (and a weight without a kept copy) than FP8 saves.
    static constexpr int64_t kFp8MinRows = 64;
    // An FP8 operand: E4M3 codes u8 [rows, K] and an f32 scale a row.
    struct Fp8Rows {
        Tensor codes, scales;
        size_t nbytes() const { return codes.nbytes() + scales.nbytes(); }
    };
    // Room for an FP8 operand of `rows` rows of K; for_model: a weight's kept copy.
    Fp8Rows fp8_rows(int64_t rows, int64_t K, bool for_model);
    // The rows of a 16-bit tensor [..., K] as an FP8 operand (fp8_quantize.cu), into room
    // of its size (to_fp8_into) or new room.
    void to_fp8_into(const Fp8Rows& q, const Tensor& t);
    Fp8Rows to_fp8(const Tensor& t, bool for_model = false);
    // Inside an encode with FP8 on (Backend::fp8_now), x as the FP8 operand of a product with
    // the 16-bit weight w; nothing where FP8 does not apply (few rows, shapes it cannot take).
    std::optional<Fp8Rows> fp8_input(const Tensor& x, const Tensor& w);
    // Whether the FP8 GEMM takes w [N, K], a 16-bit weight of the activation dtype on this GPU.
    bool fp8_takes(const Tensor& w) const;
    // y (+)= x·wᵀ + bias from x's FP8 operand and w's (its kept copy, else converted now).
    void linear_fp8(Tensor& y, const Fp8Rows& xq, const Tensor& w, const Tensor& bias, Epilogue epilogue);
    // x's FP8 products with gate and up (one conversion of x, 16-bit outputs), or nothing where
    // FP8 does not apply: linear_glu and glu_mlp's first half.
    std::optional<std::pair<Tensor, Tensor>> fp8_gate_up(const Tensor& x, const QTensor& gate, const QTensor& up);
    // With FP8 on, whether layer_norm_linears writes x's LayerNorm straight as the FP8 input of
    // `linears` (rows enough, shapes and dtypes the kernels take).
    bool normed_fp8_takes(const Tensor& x, const Tensor& w, const Tensor& b,
                          std::span<const NormedLinear> linears) const;
    // layer_norm(x, w, b, eps) as an FP8 operand (each row rounded as layer_norm stores it).
    Fp8Rows layer_norm_fp8(const Tensor& x, const Tensor& w, const Tensor& b, float eps);
    // fp8_input() and linear_fp8() together; false, doing nothing, where FP8 does not apply.
    bool try_linear_fp8(Tensor& y, const Tensor& x, const Tensor& w, const Tensor& bias, Epilogue epilogue);
    // quant_ops.cpp: linear and embed with a quantised weight (already validated shapes); y in
    // the activation dtype or (y_dtype f32) in f32.
    Tensor linear_quantized(const Tensor& x, const QTensor& w, const Tensor& bias, DType y_dtype);
    Tensor embed_quantized(const QTensor& table, const Tensor& dev_ids);
    // attention_ops.cpp: unmasked attention of q[n, Tq, H, hd] over k/v[n, Tk, KV, hd] (checked)
    // on tensor cores: the flash kernel, or batched GEMMs around a row softmax.
    Tensor dense_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p);
    // attention() and attention_add_(): the result, also added to *add_to when given.
    Tensor attend(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p, Tensor* add_to);
    Tensor cross(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p, Tensor* add_to);
    // attention's argument checks, and the kernels' arguments (without the output).
    void check_attention_inputs(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p);
    AttentionArgs attention_args(const Tensor& q, const QTensor& k, const QTensor& v, const AttentionParams& p);
    // Runs an attention kernel with a workspace for its `splits` slices.
    using AttentionKernel = void (*)(const AttentionArgs&, int splits, void* workspace, cudaStream_t);
    void run_attention(const AttentionArgs& a, int splits, AttentionKernel kernel);

    int ordinal_;
    DType act_;
    std::string name_;
    int sm_count_ = 0;
    bool fp8_units_ = false;  // compute capability 8.9 or newer
    // keep_fp8_copy()'s copies by their weight's address; each holds its weight (`source`), so
    // the address cannot come back as another tensor's while the copy is kept.
    struct Fp8Copy {
        Tensor source;
        Fp8Rows rows;
    };
    std::unordered_map<const void*, Fp8Copy> fp8_copies_;
    // keep_fp8_copies_joined()'s blocks by their first weight's address: the members' copies
    // (each also in fp8_copies_, a view of its rows) and their biases joined.
    struct JoinedFp8 {
        struct Member {
            Tensor weight, bias;  // held, as Fp8Copy::source
        };
        std::array<Member, 3> members;
        Fp8Rows rows;
        Tensor bias;
    };
    std::unordered_map<const void*, JoinedFp8> joined_fp8_;
    // The block kept for exactly these linears (weights and biases), or null.
    const JoinedFp8* joined_fp8(const std::array<NormedLinear, 3>& qkv) const;
    cudaStream_t stream_ = nullptr;
    std::shared_ptr<DevicePool> pool_;
    Tensor gemm_workspace_;
    std::unique_ptr<Gemm> gemm_;
    std::unique_ptr<HostStaging> staging_;  // host-to-device copies (staging.h)
    bool step_graphs_ = true;
    StepGraph* recording_ = nullptr;  // the step run_step is capturing: it keeps what the ops allocate
    RecordingGate recording_gate_;    // no capture while the last video's decoders close
    int step_recordings_ = 0;
    std::optional<int> mel_fft_;            // media_ops.cpp: the cuFFT plan of log_mel (a cufftHandle)
    size_t mel_fft_work_ = 0;               // and the work area it needs
    Tensor mel_constants_;                  // its window, filters and filter ranges, for mel_constants_bins_
    int mel_constants_bins_ = 0;
    bool poison_ = false;
    std::vector<cudaEvent_t> events_;  // time points of profiled sections
    size_t events_used_ = 0;
    size_t limit_ = 0;  // the whole-process cap (--gpu-memory); the pool gets it minus the context
};

}  // namespace vidi::cuda
