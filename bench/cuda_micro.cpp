// Micro-benchmarks of the CUDA backend on one GPU: the two ceilings (device-to-device
// copy bandwidth, cuBLASLt bf16 GEMM rate) and the backend's own attention and norm
// kernels at the model's sizes, and the quantised (int8 / int4) linear and K/V paths
// against bf16. Timed with CUDA events on the backend's stream: warm-up,
// then the median over several repeats. Inputs are random (never zeros).
//
//   cuda_micro            all benchmarks
//   cuda_micro quick      fewer repeats
//   cuda_micro decode     the decoding step's attention only (for profilers)
//   cuda_micro step       a decoding step's big kernels, one sequence and a batch of 16
//   cuda_micro siglip     one SigLIP layer over 16 frames, op by op
//   cuda_micro towers-attention   the towers' attention batches alone (SigLIP's 16 frames,
//                         Whisper's 4 pieces), then each kernel directly: streaming and
//                         resident (where the keys fit)
//   cuda_micro fp8        the encode's GEMM shapes: 16-bit against FP8 (per-row and
//                         per-tensor scales) and the cost of converting each operand
//   cuda_micro algos      the encode's GEMM shapes: cuBLASLt's first heuristic algorithm
//                         against the fastest of its first 16 (what tuning could gain)
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"

using vidi::AttentionParams;
using vidi::DType;
using vidi::MediaKvFormat;
using vidi::QTensor;
using vidi::QuantFormat;
using vidi::Shape;
using vidi::Tensor;
using vidi::cuda::CudaBackend;

namespace {

int g_repeats = 7;

// Random bf16-convertible data in [-1, 1) from a fast generator (the values only need to
// be non-trivial, not statistically perfect).
Tensor random_device(CudaBackend& be, const Shape& shape) {
    Tensor h = Tensor::empty(shape, DType::f32);
    float* p = h.data<float>();
    uint64_t s = 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(h.numel());
    for (int64_t i = 0; i < h.numel(); ++i) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = static_cast<float>(static_cast<int64_t>(s >> 40) - (int64_t(1) << 23)) / float(int64_t(1) << 23);
    }
    return be.upload(h);
}

// Median milliseconds of one call of f, over g_repeats timings of `iters` calls each.
double time_ms(CudaBackend& be, int iters, const std::function<void()>& f) {
    for (int i = 0; i < 2; ++i) f();
    cudaEvent_t start, stop;
    VIDI_CUDA_CHECK(cudaEventCreate(&start));
    VIDI_CUDA_CHECK(cudaEventCreate(&stop));
    std::vector<double> ms;
    for (int r = 0; r < g_repeats; ++r) {
        VIDI_CUDA_CHECK(cudaEventRecord(start, be.stream()));
        for (int i = 0; i < iters; ++i) f();
        VIDI_CUDA_CHECK(cudaEventRecord(stop, be.stream()));
        VIDI_CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0;
        VIDI_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        ms.push_back(double(t) / iters);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

void row(const std::string& what, double ms, const std::string& rate) {
    std::printf("| %-58s | %9.3f | %-22s |\n", what.c_str(), ms, rate.c_str());
    std::fflush(stdout);
}

std::string fmt(double v, const char* unit) {
    char b[64];
    std::snprintf(b, sizeof b, "%.1f %s", v, unit);
    return b;
}

void bench_copy(CudaBackend& be) {
    const int64_t n = int64_t(1) << 30;  // 1 GiB of u8 each way
    Tensor a = be.empty({n}, DType::u8), b = be.empty({n}, DType::u8);
    VIDI_CUDA_CHECK(cudaMemsetAsync(a.raw(), 0x5A, n, be.stream()));
    const double ms = time_ms(be, 10, [&] { be.copy_(b, a); });
    row("device-to-device copy, 1 GiB (read + write counted)", ms, fmt(2.0 * n / (ms * 1e-3) / 1e9, "GB/s"));
}

// A 10-minute video's visual tokens back to the host as f32 (what saving a video does), into
// fresh host memory each time: the wall time, as a rate of the bf16 bytes on the device.
void bench_to_host(CudaBackend& be) {
    const Tensor t = random_device(be, {60000, 3584});
    const double ms = time_ms(be, 1, [&] { be.to_host(t); });
    row("to_host bf16 [60000, 3584] -> f32 host", ms, fmt(double(t.nbytes()) / (ms * 1e-3) / 1e9, "GB/s of bf16"));
}

void bench_linear(CudaBackend& be, int64_t M, int64_t N, int64_t K) {
    const Tensor x = random_device(be, {M, K}), w = random_device(be, {N, K});
    const double ms = time_ms(be, 10, [&] { be.linear(x, w); });
    row(vidi::cat("linear bf16 M=", M, " N=", N, " K=", K), ms, fmt(2.0 * M * N * K / (ms * 1e-3) / 1e12, "TFLOP/s"));
}

QuantFormat quant_format(int bits, int group) {
    QuantFormat f;
    f.bits = bits;
    f.group = group;
    return f;
}

// One weight shape in bf16, int8 (per channel) and int4/g64, quantised on the device:
// time, weight bytes streamed per second (values + scales) and the GEMM rate.
void bench_quant_linear(CudaBackend& be, const char* name, int64_t M, int64_t N, int64_t K) {
    const Tensor x = random_device(be, {M, K});
    const Tensor w = random_device(be, {N, K});
    const int iters = M <= 16 ? 20 : 3;
    if (M <= vidi::cuda::kFloatGemvMaxRows) {  // what the backend's GEMV replaces for bf16
        Tensor workspace = be.empty({int64_t(32) << 20}, DType::u8), y = be.empty({M, N}, DType::bf16);
        vidi::cuda::Gemm gemm(workspace.raw(), static_cast<size_t>(workspace.numel()));
        const double ms = time_ms(be, iters, [&] {
            gemm.linear(y.raw(), x.raw(), w.raw(), nullptr, M, N, K, {DType::bf16, DType::bf16}, be.stream());
        });
        row(vidi::cat("qlinear ", name, " bf16 via cuBLASLt M=", M, " N=", N, " K=", K), ms,
            fmt(2.0 * N * K / (ms * 1e-3) / 1e9, "GB/s weights"));
    }
    for (const QuantFormat& f : {quant_format(16, 0), quant_format(8, 0), quant_format(4, 64)}) {
        const QTensor wq = f.quantized() ? be.quantize(w, f) : QTensor(w);
        const double ms = time_ms(be, iters, [&] { be.linear(x, wq); });
        const double bytes = static_cast<double>(wq.nbytes());
        row(vidi::cat("qlinear ", name, " ", f.name(), " M=", M, " N=", N, " K=", K), ms,
            M <= 16 ? fmt(bytes / (ms * 1e-3) / 1e9, "GB/s weights")
                    : fmt(2.0 * M * N * K / (ms * 1e-3) / 1e12, "TFLOP/s"));
    }
}

// One encode GEMM shape: the 16-bit GEMM, the FP8 GEMM from operands already converted (per-row
// scales as --compute fp8 uses them; one scale per operand, for its speed only: it takes each
// operand's first row scale), and each operand's conversion.
void bench_fp8_linear(CudaBackend& be, const char* name, int64_t M, int64_t N, int64_t K) {
    using vidi::cuda::Fp8Scales;
    const Tensor x = random_device(be, {M, K}), w = random_device(be, {N, K});
    Tensor y = be.empty({M, N}, DType::bf16);
    Tensor xq = be.empty({M, K}, DType::u8), sx = be.empty({M}, DType::f32);
    Tensor wq = be.empty({N, K}, DType::u8), sw = be.empty({N}, DType::f32);
    Tensor workspace = be.empty({int64_t(32) << 20}, DType::u8);
    vidi::cuda::Gemm gemm(workspace.raw(), static_cast<size_t>(workspace.numel()));
    const auto tflops = [&](double ms) { return fmt(2.0 * M * N * K / (ms * 1e-3) / 1e12, "TFLOP/s"); };
    const auto convert = [&](Tensor& q, Tensor& s, const Tensor& v, int64_t rows) {
        vidi::cuda::quantize_rows_e4m3<vidi::cuda::bf16>(static_cast<uint8_t*>(q.raw()), static_cast<float*>(s.raw()),
                                                        static_cast<const vidi::cuda::bf16*>(v.raw()), rows, K,
                                                        be.stream());
    };
    const std::string shape = vidi::cat(name, " M=", M, " N=", N, " K=", K);
    const double ms16 = time_ms(be, 10, [&] {
        gemm.linear(y.raw(), x.raw(), w.raw(), nullptr, M, N, K, {DType::bf16, DType::bf16}, be.stream());
    });
    row("bf16 " + shape, ms16, tflops(ms16));
    convert(xq, sx, x, M);
    convert(wq, sw, w, N);
    for (const Fp8Scales mode : {Fp8Scales::rows, Fp8Scales::tensor}) {
        const double ms = time_ms(be, 10, [&] {
            gemm.linear_fp8(y.raw(), xq.raw(), static_cast<const float*>(sx.raw()), wq.raw(),
                            static_cast<const float*>(sw.raw()), nullptr, M, N, K, DType::bf16, be.stream(), 0,
                            vidi::cuda::Epilogue::none, mode);
        });
        row(vidi::cat("fp8 ", mode == Fp8Scales::rows ? "per-row " : "per-tensor ", shape), ms, tflops(ms));
    }
    const double cx = time_ms(be, 10, [&] { convert(xq, sx, x, M); });
    row(vidi::cat("  convert x [", M, ", ", K, "] to E4M3"), cx, fmt(3.0 * M * K / (cx * 1e-3) / 1e9, "GB/s"));
    const double cw = time_ms(be, 10, [&] { convert(wq, sw, w, N); });
    row(vidi::cat("  convert w [", N, ", ", K, "] to E4M3"), cw, fmt(3.0 * N * K / (cw * 1e-3) / 1e9, "GB/s"));
}

// Cross-attention over media keys, bf16 against int8 and int4 K/V (media_kv_format): one
// query (a decoding step) over 50000 keys, and a 40-token prompt over an hour's 126000.
void bench_quant_attention(CudaBackend& be) {
    const int H = 16, KV = 8, hd = 256;
    AttentionParams p;
    p.scale = 1.0f / 16.0f;
    p.softcap = 50.0f;
    for (auto [Tq, Tk] : {std::pair<int64_t, int64_t>{1, 50000}, {40, 126000}}) {
        const Tensor q = random_device(be, {Tq, H, hd}), k = random_device(be, {Tk, KV, hd}),
                     v = random_device(be, {Tk, KV, hd});
        const std::string what = vidi::cat("attn Tq=", Tq, " Tk=", Tk, " H16/KV8 hd256, ");
        const int iters = Tq == 1 ? 20 : 5;
        for (int bits : {16, 8, 4}) {
            const MediaKvFormat f = vidi::media_kv_format(bits, hd);
            const QTensor kq = bits < 16 ? be.quantize(k, f.key) : QTensor(k);
            const QTensor vq = bits < 16 ? be.quantize(v, f.value) : QTensor(v);
            const double ms = time_ms(be, iters, [&] { be.attention(q, kq, vq, p); });
            row(what + (bits == 16 ? "bf16" : bits == 8 ? "int8" : "int4") + " K/V", ms,
                fmt(double(kq.nbytes() + vq.nbytes()) / (ms * 1e-3) / 1e9, "GB/s K+V"));
        }
    }
}

// FLOPs of the visible score and P·V products (2·hd each per visible (query, key) pair).
double attention_flops(int64_t Tq, int64_t Tk, int H, int hd, const AttentionParams& p) {
    double pairs = 0;
    for (int64_t i = 0; i < Tq; ++i) {
        const int64_t pos = p.q_pos0 + i;
        int64_t hi = p.causal ? std::min(Tk - 1, pos) : Tk - 1;
        int64_t lo = p.window > 0 ? std::max<int64_t>(0, pos - p.window) : 0;
        if (hi >= lo) pairs += double(hi - lo + 1);
    }
    return pairs * H * 4.0 * hd;
}

// n > 1: n independent sequences through attention_batch (the vision tower's frames).
void bench_attention(CudaBackend& be, const std::string& what, int64_t Tq, int64_t Tk, int H, int KV, int hd,
                     const AttentionParams& p, int iters, int64_t n = 1) {
    const Tensor q = random_device(be, {n, Tq, H, hd}), k = random_device(be, {n, Tk, KV, hd}),
                 v = random_device(be, {n, Tk, KV, hd});
    const double ms = time_ms(be, iters, [&] {
        if (n > 1) be.attention_batch(q, k, v, p);
        else be.attention(q.row(0), k.row(0), v.row(0), p);
    });
    const double kv_gb = 2.0 * n * Tk * KV * hd * 2 / 1e9;
    row(what, ms,
        fmt(n * attention_flops(Tq, Tk, H, hd, p) / (ms * 1e-3) / 1e12, "TFLOP/s") + ", " +
            fmt(kv_gb / (ms * 1e-3), "GB/s K+V"));
}

// The towers' attention kernels side by side on one problem: streaming (every card) and, where
// a sequence's keys fit a block, resident (what flash_attention picks there).
void bench_tower_kernels(CudaBackend& be, const std::string& what, int64_t T, int H, int hd, int64_t n) {
    const Tensor q = random_device(be, {n, T, H, hd}), k = random_device(be, {n, T, H, hd}),
                 v = random_device(be, {n, T, H, hd}), out = be.empty(q.shape(), be.act_dtype());
    vidi::cuda::AttentionArgs a;
    a.act = be.act_dtype();
    a.q = q.raw();
    a.k = k.raw();
    a.v = v.raw();
    a.out = out.raw();
    a.Tq = a.Tk = T;
    a.H = a.KV = H;
    a.hd = hd;
    a.scale = 1.0f / std::sqrt(float(hd));
    AttentionParams p;
    const double flops = n * attention_flops(T, T, H, hd, p);
    using vidi::cuda::FlashKernel;
    for (const auto& [kernel, name] : {std::pair{FlashKernel::streaming, ", streaming"},
                                       std::pair{FlashKernel::resident, ", resident"}}) {
        auto launch = [&] { return vidi::cuda::flash_attention(a, n, be.sm_count(), be.stream(), kernel); };
        if (!launch()) continue;  // the keys do not fit
        const double ms = time_ms(be, 20, [&] { launch(); });
        row(what + name, ms, fmt(flops / (ms * 1e-3) / 1e12, "TFLOP/s"));
    }
}

void bench_rms_norm(CudaBackend& be, int64_t rows, int64_t D) {
    const Tensor x = random_device(be, {rows, D}), w = random_device(be, {D});
    const double ms = time_ms(be, 20, [&] { be.rms_norm(x, w, 1e-6f, vidi::NormWeight::one_plus); });
    row(vidi::cat("rms_norm (1+w) rows=", rows, " D=", D), ms, fmt(2.0 * rows * D * 2 / (ms * 1e-3) / 1e9, "GB/s"));
}

// A decoding step's big kernels at Vidi1.5-9B's size, one sequence and a batch of 16: the
// media cross-attention over a 10-minute video's 66 000 tokens (the step layout, and the
// few-row kernel a query at a time), and the MLP's fused gate/up GEMV and down GEMV.
void bench_step(CudaBackend& be) {
    const int H = 16, KV = 8, hd = 256;
    const int64_t Tk = 66000;
    AttentionParams p;
    p.scale = 1.0f / 16.0f;
    p.softcap = 50.0f;
    const Tensor k = random_device(be, {Tk, KV, hd}), v = random_device(be, {Tk, KV, hd});
    const double kv_gb = double(k.nbytes() + v.nbytes()) / 1e9;
    for (int64_t B : {1, 4, 8, 16}) {
        const Tensor q = random_device(be, {B, H, hd});
        p.step_rows = true;
        double ms = time_ms(be, 20, [&] { be.cross_attention(q, QTensor(k), QTensor(v), p); });
        row(vidi::cat("step cross-attention, ", B, " rows, Tk=66000 (step layout)"), ms, fmt(kv_gb / (ms * 1e-3), "GB/s K+V"));
        if (B != 1 && B != 16) continue;
        p.step_rows = false;
        ms = time_ms(be, 20, [&] { be.cross_attention(q, QTensor(k), QTensor(v), p); });
        row(vidi::cat("step cross-attention, ", B, " rows, Tk=66000 (prompt layout)"), ms, fmt(kv_gb / (ms * 1e-3), "GB/s K+V"));
    }
    const Tensor q1 = random_device(be, {1, H, hd});
    const double ms = time_ms(be, 20, [&] { be.attention(q1, QTensor(k), QTensor(v), p); });
    row("step cross-attention, 1 row, Tk=66000 (few-row kernel)", ms, fmt(kv_gb / (ms * 1e-3), "GB/s K+V"));
    const int64_t D = 3584, I = 14336;
    const QTensor gate(random_device(be, {I, D})), up(random_device(be, {I, D})), down(random_device(be, {D, I}));
    for (int64_t B : {1, 16}) {
        const Tensor x = random_device(be, {B, D}), h = random_device(be, {B, I});
        double t = time_ms(be, 20, [&] { be.linear_glu(x, gate, up, vidi::Glu::gelu_tanh); });
        row(vidi::cat("step gate/up GEMV (GeGLU), M=", B), t, fmt(2.0 * gate.nbytes() / (t * 1e-3) / 1e9, "GB/s weights"));
        t = time_ms(be, 20, [&] { be.linear(h, down); });
        row(vidi::cat("step down GEMV, M=", B), t, fmt(double(down.nbytes()) / (t * 1e-3) / 1e9, "GB/s weights"));
    }
}

// One SigLIP layer (so400m: width 1152, 16 heads of 72, MLP 4304) over a vision batch of 16
// frames (16 × 729 tokens) as SiglipVision::forward runs it, in 16 bits and then with FP8
// encodes (its normed linears in FP8, their weights' FP8 copies kept, q, k and v's joined:
// layer_norm_attention runs them as one GEMM; o_proj and fc2 in 16 bits), op by op and whole;
// beside it variants the tower does not run: q, k and v as three GEMMs, fc1 without its GELU
// epilogue, and o_proj and fc2 in FP8 too (their inputs converted in an encode scope).
void bench_siglip(CudaBackend& be) {
    const int64_t n = 16, T = 729, C = 1152, H = 16, hd = 72, I = 4304, M = n * T;
    const Tensor ln_w = random_device(be, {C}), ln_b = random_device(be, {C});
    const QTensor wq(random_device(be, {C, C})), wk(random_device(be, {C, C})), wv(random_device(be, {C, C})),
        wqkv(random_device(be, {3 * C, C})), wo(random_device(be, {C, C})), w1(random_device(be, {I, C})),
        w2(random_device(be, {C, I}));
    const Tensor bc = random_device(be, {C}), b3 = random_device(be, {3 * C}), bi = random_device(be, {I});
    Tensor x = random_device(be, {M, C});
    const Tensor g = random_device(be, {M, I});
    const Tensor q = random_device(be, {n, T, H, hd}), k = random_device(be, {n, T, H, hd}),
                 v = random_device(be, {n, T, H, hd});
    AttentionParams p;
    p.scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
    const float eps = 1e-6f;
    const auto tf = [](double flop, double ms) { return fmt(flop / (ms * 1e-3) / 1e12, "TFLOP/s"); };
    for (const bool fp8 : {false, true}) {
        if (fp8) {
            if (!be.fp8_supported()) break;
            be.set_fp8_encode(true);
            be.keep_fp8_copies_joined({{{wq, bc}, {wk, bc}, {wv, bc}}});
            for (const QTensor* w : {&wqkv, &wo, &w1, &w2}) be.keep_fp8_copy(*w);
        }
        const std::string mode = fp8 ? "FP8 " : "16-bit ";
        double t = time_ms(be, 20, [&] { be.layer_norm(x, ln_w, ln_b, eps); });
        row(mode + "layer_norm [11664, 1152]", t, fmt(2.0 * M * C * 2 / (t * 1e-3) / 1e9, "GB/s"));
        t = time_ms(be, 20, [&] { be.layer_norm_linears(x, ln_w, ln_b, eps, {{wq, bc}, {wk, bc}, {wv, bc}}); });
        row(mode + "norm + q, k, v", t, tf(2.0 * M * C * 3 * C, t));
        const std::array<vidi::NormedLinear, 3> qkv = {{{wq, bc}, {wk, bc}, {wv, bc}}};
        const double qkv_att = 2.0 * M * C * 3 * C + 4.0 * n * T * T * H * hd;
        t = time_ms(be, 20, [&] { be.layer_norm_attention(x, ln_w, ln_b, eps, qkv, n, H, p); });
        row(mode + "norm + q, k, v + attention (the tower's)", t, tf(qkv_att, t));
        t = time_ms(be, 20, [&] { be.Backend::layer_norm_attention(x, ln_w, ln_b, eps, qkv, n, H, p); });
        row(mode + "norm + q, k, v + attention, three GEMMs", t, tf(qkv_att, t));
        t = time_ms(be, 20, [&] { be.layer_norm_linears(x, ln_w, ln_b, eps, {{wqkv, b3}}); });
        row(mode + "norm + qkv as one GEMM", t, tf(2.0 * M * C * 3 * C, t));
        t = time_ms(be, 20, [&] { be.attention_batch(q, k, v, p); });
        row(mode + "attention, 16 frames x 729, 16 heads of 72", t, tf(4.0 * n * T * T * H * hd, t));
        t = time_ms(be, 20, [&] { be.linear_add_(x, q.reshape({M, C}), wo, bc); });
        row(mode + "o_proj, bias + residual", t, tf(2.0 * M * C * C, t));
        t = time_ms(be, 20, [&] { be.layer_norm_linears(x, ln_w, ln_b, eps, {{w1, bi, vidi::Gelu::tanh}}); });
        row(mode + "norm + fc1, bias + GELU (the tower's)", t, tf(2.0 * M * I * C, t));
        t = time_ms(be, 20, [&] { be.layer_norm_linears(x, ln_w, ln_b, eps, {{w1, bi}}); });
        row(mode + "norm + fc1, bias only", t, tf(2.0 * M * I * C, t));
        t = time_ms(be, 20, [&] { be.linear_add_(x, g, w2, bc); });
        row(mode + "fc2, bias + residual", t, tf(2.0 * M * C * I, t));
        if (fp8) {
            const auto scope = be.encode_scope();
            t = time_ms(be, 20, [&] { be.linear_add_(x, q.reshape({M, C}), wo, bc); });
            row(mode + "o_proj in FP8, its input converted", t, tf(2.0 * M * C * C, t));
            t = time_ms(be, 20, [&] { be.linear_add_(x, g, w2, bc); });
            row(mode + "fc2 in FP8, its input converted", t, tf(2.0 * M * C * I, t));
        }
        t = time_ms(be, 10, [&] {
            be.linear_add_(x, be.layer_norm_attention(x, ln_w, ln_b, eps, qkv, n, H, p), wo, bc);
            const Tensor h = be.layer_norm_linears(x, ln_w, ln_b, eps, {{w1, bi, vidi::Gelu::tanh}})[0];
            be.linear_add_(x, h, w2, bc);
        });
        const double flop = 2.0 * M * C * (4 * C + 2 * I) + 4.0 * n * T * T * H * hd;
        row(mode + "whole layer (x27 x38 batches for 10 min)", t, tf(flop, t));
    }
    be.set_fp8_encode(false);
}

// How far cuBLASLt's first heuristic pick is from the fastest of its first 16 candidates, at
// one encode shape (bf16 with the shape's epilogue, or FP8 with per-row scales): the gain an
// autotuner could have.
void bench_algos(CudaBackend& be, const char* name, int64_t M, int64_t N, int64_t K, bool fp8,
                 cublasLtEpilogue_t epilogue, bool fast_accum = false) {
    const Tensor x = random_device(be, {M, K}), w = random_device(be, {N, K}), bias = random_device(be, {N});
    Tensor y = be.empty({M, N}, DType::bf16);
    Tensor xq = be.empty({M, K}, DType::u8), sx = be.empty({M}, DType::f32);
    Tensor wq = be.empty({N, K}, DType::u8), sw = be.empty({N}, DType::f32);
    const size_t ws_bytes = size_t(32) << 20;
    Tensor workspace = be.empty({int64_t(ws_bytes)}, DType::u8);
    if (fp8) {
        vidi::cuda::quantize_rows_e4m3<vidi::cuda::bf16>(static_cast<uint8_t*>(xq.raw()), static_cast<float*>(sx.raw()),
                                                        static_cast<const vidi::cuda::bf16*>(x.raw()), M, K, be.stream());
        vidi::cuda::quantize_rows_e4m3<vidi::cuda::bf16>(static_cast<uint8_t*>(wq.raw()), static_cast<float*>(sw.raw()),
                                                        static_cast<const vidi::cuda::bf16*>(w.raw()), N, K, be.stream());
    }
    cublasLtHandle_t lt;
    VIDI_CUBLAS_CHECK(cublasLtCreate(&lt));
    cublasLtMatmulDesc_t op;
    VIDI_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const auto set = [&](cublasLtMatmulDescAttributes_t a, const auto& v) {
        VIDI_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, a, &v, sizeof(v)));
    };
    set(CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T);
    set(CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N);
    set(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
    if (epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
        set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_16BF);
        set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias.raw()));
    }
    if (fp8) {
        set(CUBLASLT_MATMUL_DESC_A_SCALE_MODE, static_cast<int32_t>(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F));
        set(CUBLASLT_MATMUL_DESC_B_SCALE_MODE, static_cast<int32_t>(CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F));
        set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, static_cast<const void*>(sw.raw()));
        set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, static_cast<const void*>(sx.raw()));
        if (fast_accum) set(CUBLASLT_MATMUL_DESC_FAST_ACCUM, static_cast<int8_t>(1));
    }
    const cudaDataType_t in = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
    cublasLtMatrixLayout_t a, b, d;
    VIDI_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&a, in, K, N, K));
    VIDI_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&b, in, K, M, K));
    VIDI_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&d, CUDA_R_16BF, N, M, N));
    cublasLtMatmulPreference_t pref;
    VIDI_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = ws_bytes;
    VIDI_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t results[16] = {};
    int found = 0;
    VIDI_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, op, a, b, d, d, pref, 16, results, &found));
    const float alpha = 1.0f, beta = 0.0f;
    const void* A = fp8 ? wq.raw() : w.raw();
    const void* B = fp8 ? xq.raw() : x.raw();
    double first = 0, best = 1e30;
    int best_i = -1;
    for (int i = 0; i < found; ++i) {
        if (results[i].state != CUBLAS_STATUS_SUCCESS) continue;
        const double ms = time_ms(be, 10, [&] {
            VIDI_CUBLAS_CHECK(cublasLtMatmul(lt, op, &alpha, A, a, B, b, &beta, y.raw(), d, y.raw(), d,
                                             &results[i].algo, workspace.raw(), ws_bytes, be.stream()));
        });
        if (i == 0) first = ms;
        if (ms < best) best = ms, best_i = i;
    }
    const auto tflops = [&](double ms) { return 2.0 * M * N * K / (ms * 1e-3) / 1e12; };
    std::printf("| %s%s%s M=%lld N=%lld K=%lld | %d | %.4f (%.0f) | %.4f (%.0f) #%d | %.1f%% |\n", fp8 ? "fp8 " : "bf16 ",
                fast_accum ? "fast-accum " : "", name, (long long)M, (long long)N, (long long)K, found, first, tflops(first), best, tflops(best), best_i,
                100.0 * (first - best) / first);
    std::fflush(stdout);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(d);
    cublasLtMatmulDescDestroy(op);
    cublasLtDestroy(lt);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const bool decode_only = argc > 1 && std::strcmp(argv[1], "decode") == 0;
        if (argc > 1 && (std::strcmp(argv[1], "quick") == 0 || decode_only)) g_repeats = 3;
        CudaBackend be(0);
        if (argc > 1 && std::strcmp(argv[1], "step") == 0) {
            bench_step(be);
            return 0;
        }
        if (argc > 1 && std::strcmp(argv[1], "siglip") == 0) {
            bench_siglip(be);
            return 0;
        }
        if (argc > 1 && std::strcmp(argv[1], "towers-attention") == 0) {
            std::printf("%s, %d SMs, %s\n\n", be.name().c_str(), be.sm_count(), vidi::dtype_name(be.act_dtype()));
            AttentionParams bidir;
            bidir.scale = 1.0f / std::sqrt(72.0f);
            bench_attention(be, "SigLIP T=729 H16 hd72, 16 frames", 729, 729, 16, 16, 72, bidir, 20, 16);
            bidir.scale = 0.125f;
            bench_attention(be, "Whisper T=1500 H20 hd64, 4 pieces", 1500, 1500, 20, 20, 64, bidir, 20, 4);
            bench_tower_kernels(be, "SigLIP 16 frames", 729, 16, 72, 16);
            bench_tower_kernels(be, "Whisper 4 pieces", 1500, 20, 64, 4);
            return 0;
        }
        if (argc > 1 && std::strcmp(argv[1], "fp8") == 0) {
            std::printf("%s, %d SMs\n\n| %-58s | %9s | %-22s |\n|---|---:|---|\n", be.name().c_str(), be.sm_count(),
                        "benchmark", "ms", "rate");
            // The media tokens' layers (a chunk of 4096), SigLIP (16 frames), Whisper (4 pieces).
            const struct {
                const char* name;
                int64_t M, N, K;
            } shapes[] = {{"media k/v", 4096, 2048, 3584},    {"media o", 4096, 3584, 4096},
                          {"media gate/up", 4096, 14336, 3584}, {"media down", 4096, 3584, 14336},
                          {"SigLIP q/k/v/o", 11664, 1152, 1152}, {"SigLIP fc1", 11664, 4304, 1152},
                          {"SigLIP fc2", 11664, 1152, 4304},    {"Whisper q/k/v/o", 6000, 1280, 1280},
                          {"Whisper fc1", 6000, 5120, 1280},    {"Whisper fc2", 6000, 1280, 5120}};
            for (const auto& s : shapes) bench_fp8_linear(be, s.name, s.M, s.N, s.K);
            return 0;
        }
        if (argc > 1 && std::strcmp(argv[1], "algos") == 0) {
            std::printf("%s, %d SMs\n\n| shape | candidates | first ms (TFLOP/s) | best ms (TFLOP/s) | gain |\n"
                        "|---|---:|---:|---:|---:|\n", be.name().c_str(), be.sm_count());
            const auto none = CUBLASLT_EPILOGUE_DEFAULT, bias = CUBLASLT_EPILOGUE_BIAS, gelu = CUBLASLT_EPILOGUE_GELU_BIAS;
            bench_algos(be, "SigLIP q/k/v +bias", 11664, 1152, 1152, false, bias);
            bench_algos(be, "SigLIP qkv fused +bias", 11664, 3456, 1152, false, bias);
            bench_algos(be, "SigLIP fc1 +bias+gelu", 11664, 4304, 1152, false, gelu);
            bench_algos(be, "SigLIP fc2 +bias", 11664, 1152, 4304, false, bias);
            bench_algos(be, "SigLIP fc1 32 frames", 23328, 4304, 1152, false, gelu);
            bench_algos(be, "Whisper fc1 +bias+gelu", 6000, 5120, 1280, false, gelu);
            bench_algos(be, "Whisper fc2 +bias", 6000, 1280, 5120, false, bias);
            bench_algos(be, "media k/v", 4096, 2048, 3584, true, none);
            bench_algos(be, "media o", 4096, 3584, 2048, true, none);
            bench_algos(be, "media gate/up", 4096, 14336, 3584, true, none);
            bench_algos(be, "media down", 4096, 3584, 14336, true, none);
            bench_algos(be, "media gate/up tail", 2704, 14336, 3584, true, none);
            bench_algos(be, "media gate/up", 8192, 14336, 3584, true, none);
            bench_algos(be, "media gate+up", 4096, 28672, 3584, true, none);
            for (const auto& s : {std::array<int64_t, 3>{4096, 2048, 3584}, {4096, 3584, 2048}, {4096, 14336, 3584},
                                  {4096, 3584, 14336}, {11664, 1152, 1152}, {11664, 4304, 1152}, {11664, 1152, 4304}})
                bench_algos(be, "", s[0], s[1], s[2], true, none, true);
            return 0;
        }
        if (decode_only) {
            bench_quant_attention(be);
            return 0;
        }
        std::printf("%s, %d SMs\n\n", be.name().c_str(), be.sm_count());
        std::printf("| %-58s | %9s | %-22s |\n|%s|%s|%s|\n", "benchmark", "ms", "rate", std::string(60, '-').c_str(),
                    std::string(11, '-').c_str(), std::string(24, '-').c_str());
        bench_copy(be);
        bench_to_host(be);
        bench_linear(be, 8192, 8192, 8192);
        bench_linear(be, 8192, 3584, 3584);
        bench_linear(be, 8192, 14336, 3584);
        bench_linear(be, 8192, 3584, 14336);
        bench_linear(be, 729 * 8, 4304, 1152);
        bench_linear(be, 1, 3584, 14336);
        bench_rms_norm(be, 8192, 3584);

        AttentionParams prefill;
        prefill.scale = 1.0f / 16.0f;
        prefill.softcap = 50.0f;
        prefill.causal = true;
        prefill.window = 4096;
        bench_attention(be, "attn prefill T=4096 H16/KV8 hd256 causal+window4096", 4096, 4096, 16, 8, 256, prefill, 3);
        prefill.window = 1024;
        bench_attention(be, "attn prefill T=4096 H16/KV8 hd256 causal+window1024", 4096, 4096, 16, 8, 256, prefill, 3);
        AttentionParams cross;
        cross.scale = 1.0f / 16.0f;
        cross.softcap = 50.0f;
        bench_attention(be, "attn cross Tq=32 Tk=60000 H16/KV8 hd256", 32, 60000, 16, 8, 256, cross, 5);
        bench_attention(be, "attn cross Tq=12 Tk=60000 H16/KV8 hd256", 12, 60000, 16, 8, 256, cross, 5);
        bench_attention(be, "attn cross Tq=8 Tk=50000 H16/KV8 hd256", 8, 50000, 16, 8, 256, cross, 5);
        AttentionParams decode = prefill;
        decode.window = 0;
        decode.q_pos0 = 7999;
        bench_attention(be, "attn decode Tq=1 Tk=8000 H16/KV8 hd256", 1, 8000, 16, 8, 256, decode, 20);
        AttentionParams bidir;
        bidir.scale = 1.0f / std::sqrt(72.0f);
        bench_attention(be, "attn SigLIP T=729 H16 hd72 (one frame)", 729, 729, 16, 16, 72, bidir, 10);
        bench_attention(be, "attn SigLIP T=729 H16 hd72, 8 frames (attention_batch)", 729, 729, 16, 16, 72, bidir,
                        10, 8);
        bidir.scale = 0.125f;
        bench_attention(be, "attn Whisper T=1500 H20 hd64", 1500, 1500, 20, 20, 64, bidir, 10);

        // Gemma2-9B projections: decode (M = 1, memory bound) and prefill (M = 4096).
        const struct {
            const char* name;
            int64_t N, K;
        } shapes[] = {{"q", 4096, 3584},     {"k/v", 2048, 3584},     {"o", 3584, 4096},
                      {"gate/up", 14336, 3584}, {"down", 3584, 14336}, {"lm_head", 256000, 3584}};
        for (int64_t M : {int64_t(1), int64_t(4096)})
            for (const auto& s : shapes) bench_quant_linear(be, s.name, M, s.N, s.K);
        bench_quant_attention(be);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cuda_micro: %s\n", e.what());
        return 1;
    }
}
