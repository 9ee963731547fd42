// Whisper's log-mel spectrogram on the GPU, in double precision like the host's
// (core/log_mel.cpp: values near the max − 8 clamp sit 1e-8 below the peak power): frames
// cut with reflect padding and the periodic Hann window, a batch of real FFTs (cuFFT, in
// media_ops.cpp), sparse mel filters over the power spectrum, log10, then each piece's
// clamp at its peak − 8 and the (x + 4) / 4 scaling, rounded to f32 and then to the
// activations' 16-bit type.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"

namespace vidi::cuda {
namespace {

__global__ void mel_frames_kernel(double* frames, const float* pcm, int64_t n, int64_t first_piece, int count,
                                  const double* window, MelShape s) {
    const int64_t total = int64_t(count) * s.frames * s.n_fft;
    const int64_t len = s.piece_samples, pad = s.n_fft / 2;
    for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int i = static_cast<int>(idx % s.n_fft);
        const int64_t t = (idx / s.n_fft) % s.frames, p = idx / (int64_t(s.n_fft) * s.frames);
        int64_t x = t * s.hop + i - pad;  // position in the piece, reflected at both ends
        if (x < 0) x = -x;
        if (x >= len) x = 2 * (len - 1) - x;
        const int64_t at = (first_piece + p) * len + x;
        frames[idx] = at < n ? double(pcm[at]) * window[i] : 0.0;  // zero padding past the end
    }
}

// One thread per (piece, mel bin, frame): frames fastest, so a warp shares its filter row.
__global__ void mel_energies_kernel(double* logmel, const double2* spectrum, const double* filters,
                                    const int* begin, const int* end, int count, MelShape s) {
    const int bins = s.n_fft / 2 + 1;
    const int64_t total = int64_t(count) * s.n_mels * s.frames;
    for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int64_t t = idx % s.frames, m = (idx / s.frames) % s.n_mels, p = idx / (int64_t(s.frames) * s.n_mels);
        const double2* X = spectrum + (p * s.frames + t) * bins;
        const double* w = filters + m * bins;
        double e = 0.0;
        for (int k = begin[m]; k < end[m]; ++k) e += w[k] * (X[k].x * X[k].x + X[k].y * X[k].y);
        logmel[idx] = log10(fmax(e, 1e-10));
    }
}

// One block per piece: its peak, then the clamped, scaled values.
template <class T>
__global__ void mel_finish_kernel(T* out, const double* logmel, MelShape s) {
    const int64_t per_piece = int64_t(s.n_mels) * s.frames;
    const double* l = logmel + blockIdx.x * per_piece;
    double peak = -INFINITY;
    for (int64_t i = threadIdx.x; i < per_piece; i += blockDim.x) peak = fmax(peak, l[i]);
    __shared__ double warp_peak[32];
    for (int o = 16; o > 0; o >>= 1) peak = fmax(peak, __shfl_xor_sync(0xffffffffu, peak, o));
    if ((threadIdx.x & 31) == 0) warp_peak[threadIdx.x / 32] = peak;
    __syncthreads();
    peak = -INFINITY;
    for (int w = 0; w < int(blockDim.x / 32); ++w) peak = fmax(peak, warp_peak[w]);
    const double floor = peak - 8.0;
    T* o = out + blockIdx.x * per_piece;
    for (int64_t i = threadIdx.x; i < per_piece; i += blockDim.x)
        store_float(o + i, static_cast<float>((fmax(l[i], floor) + 4.0) / 4.0));
}

}  // namespace

void mel_frames(double* frames, const float* pcm, int64_t n, int64_t first_piece, int count, const double* window,
                const MelShape& s, cudaStream_t stream) {
    constexpr int kThreads = 256;
    mel_frames_kernel<<<grid_for(int64_t(count) * s.frames * s.n_fft, kThreads), kThreads, 0, stream>>>(
        frames, pcm, n, first_piece, count, window, s);
    VIDI_CUDA_CHECK_LAUNCH("mel_frames");
}

void mel_energies(double* logmel, const void* spectrum, const double* filters, const int* begin, const int* end,
                  int count, const MelShape& s, cudaStream_t stream) {
    constexpr int kThreads = 256;
    mel_energies_kernel<<<grid_for(int64_t(count) * s.n_mels * s.frames, kThreads), kThreads, 0, stream>>>(
        logmel, static_cast<const double2*>(spectrum), filters, begin, end, count, s);
    VIDI_CUDA_CHECK_LAUNCH("mel_energies");
}

template <class T>
void mel_finish(T* out, const double* logmel, int count, const MelShape& s, cudaStream_t stream) {
    mel_finish_kernel<<<count, 1024, 0, stream>>>(out, logmel, s);
    VIDI_CUDA_CHECK_LAUNCH("mel_finish");
}

template void mel_finish<bf16>(bf16*, const double*, int, const MelShape&, cudaStream_t);
template void mel_finish<fp16>(fp16*, const double*, int, const MelShape&, cudaStream_t);

}  // namespace vidi::cuda
