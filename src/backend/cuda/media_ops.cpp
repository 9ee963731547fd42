// CudaBackend's front-end ops: decoded frames to the vision tower's pixels (Pillow's
// resize in integer passes, pixels.cu) and audio samples to Whisper's log-mel (log_mel.cu
// around a batch of cuFFT transforms), so that the video's data stays on the GPU after
// decoding.
#include <cufft.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/op_checks.h"
#include "core/log_mel.h"
#include "core/pil_resize.h"
#include "core/sinusoid.h"

namespace vidi::cuda {
namespace {

// 30 s pieces transformed per pass: 8 pieces hold 77 MB of frames and as much spectrum.
constexpr int kMelPiecesPerPass = 8;

void check_cufft(cufftResult r, const char* what) {
    VIDI_CHECK(r == CUFFT_SUCCESS, "cuFFT: ", what, " failed (cufftResult ", static_cast<int>(r), ")");
}

}  // namespace

Tensor CudaBackend::frames_to_pixels(const Tensor& rgb, int size) {
    check_frames_to_pixels(rgb, size, true);
    const int64_t n = rgb.dim(0);
    const int h = static_cast<int>(rgb.dim(1)), w = static_cast<int>(rgb.dim(2));
    const ResampleAxis cols = pil_resize_axis(w, size), rows = pil_resize_axis(h, size);
    // Both axes' tables in one upload: first, count, taps of the columns, then of the rows.
    std::vector<int32_t> tables;
    for (const ResampleAxis* ax : {&cols, &rows}) {
        tables.insert(tables.end(), ax->first.begin(), ax->first.end());
        tables.insert(tables.end(), ax->count.begin(), ax->count.end());
        tables.insert(tables.end(), ax->taps.begin(), ax->taps.end());
    }
    const Tensor dev_tables = upload(Tensor::from_vector(tables));
    const int32_t* t = static_cast<const int32_t*>(dev_tables.raw());
    auto taps = [&](const ResampleAxis& ax, const int32_t* at) {
        return ResampleTaps{at, at + ax.out_size, at + 2 * ax.out_size, ax.ksize, ax.out_size};
    };
    const ResampleTaps col_taps = taps(cols, t);
    const ResampleTaps row_taps = taps(rows, t + 2 * cols.out_size + cols.taps.size());
    // Only the source rows some output row reads go through the horizontal pass.
    const int row0 = rows.first.front(), used = rows.first.back() + rows.count.back() - row0;
    const Tensor src = upload(rgb);  // NVDEC's frames are on the device already: used as they are
    Tensor tmp = empty({n, used, size, 3}, DType::u8);
    resample_rows(static_cast<uint8_t*>(tmp.raw()), static_cast<const uint8_t*>(src.raw()), n, h, w, row0, used,
                  col_taps, stream_);
    Tensor out = empty({n, 3, size, size}, act_);
    with_type(act_, [&]<class T>() {
        resample_cols_normalize(ptr<T>(out), static_cast<const uint8_t*>(tmp.raw()), n, row0, used, size, row_taps,
                                stream_);
    });
    return out;
}

Tensor CudaBackend::sinusoid(const std::vector<double>& positions, int64_t dim) {
    // The frequencies from the host (exp of the same doubles), then the positions: one upload.
    std::vector<double> doubles = sinusoid_frequencies(dim);
    const int64_t half = dim / 2, n = static_cast<int64_t>(positions.size());
    doubles.insert(doubles.end(), positions.begin(), positions.end());
    const Tensor dev_doubles = to_device_raw(Tensor::wrap(doubles.data(),
                                                   {static_cast<int64_t>(doubles.size() * sizeof(double))},
                                                   DType::u8, Device::cpu, nullptr));
    Tensor out = empty({n, dim}, DType::f32);
    const auto* freq = static_cast<const double*>(dev_doubles.raw());
    if (n > 0) sinusoid_table(static_cast<float*>(out.raw()), freq + half, n, freq, half, stream_);
    return out;
}

Tensor CudaBackend::log_mel(const Tensor& pcm, int n_mels) {
    check_log_mel(pcm, n_mels);
    MelShape s;
    s.piece_samples = kPieceSamples;
    s.frames = kMelFrames;
    s.hop = kHop;
    s.n_fft = kNfft;
    s.n_mels = n_mels;
    const int bins = kNfft / 2 + 1;
    const int64_t n = pcm.numel(), pieces = mel_pieces(n);

    // The constants, uploaded once per mel bin count: the window and the filters (doubles),
    // then the filter ranges (ints): 0.2 MB for 128 bins, a pool block kept (not a weights'
    // slab, which could take a new 32 MiB slab for it).
    if (mel_constants_bins_ != n_mels) {
        std::vector<double> doubles = hann_window();
        const std::vector<double> filters = mel_filter_bank(n_mels);
        std::vector<int> begin, end;
        filter_ranges(filters, n_mels, begin, end);
        doubles.insert(doubles.end(), filters.begin(), filters.end());
        std::vector<int32_t> ranges(begin.begin(), begin.end());
        ranges.insert(ranges.end(), end.begin(), end.end());
        std::vector<unsigned char> bytes(doubles.size() * sizeof(double) + ranges.size() * sizeof(int32_t));
        std::memcpy(bytes.data(), doubles.data(), doubles.size() * sizeof(double));
        std::memcpy(bytes.data() + doubles.size() * sizeof(double), ranges.data(), ranges.size() * sizeof(int32_t));
        mel_constants_ = to_device_raw(
            Tensor::wrap(bytes.data(), {static_cast<int64_t>(bytes.size())}, DType::u8, Device::cpu, nullptr));
        mel_constants_bins_ = n_mels;
    }
    const auto* d_window = static_cast<const double*>(mel_constants_.raw());
    const double* d_filters = d_window + kNfft;
    const auto* d_begin = reinterpret_cast<const int*>(d_filters + int64_t(n_mels) * bins);
    const int* d_end = d_begin + n_mels;

    // One plan for a pass of kMelPiecesPerPass pieces, kept; its work area comes from the pool.
    const int batch = kMelPiecesPerPass * kMelFrames;
    if (!mel_fft_) {
        cufftHandle plan = 0;
        check_cufft(cufftCreate(&plan), "creating a plan");
        size_t work = 0;
        int length = kNfft;
        cufftResult r = cufftSetAutoAllocation(plan, 0);
        if (r == CUFFT_SUCCESS)
            r = cufftMakePlanMany(plan, 1, &length, nullptr, 1, kNfft, nullptr, 1, bins, CUFFT_D2Z, batch, &work);
        if (r != CUFFT_SUCCESS) cufftDestroy(plan);
        check_cufft(r, "planning the STFT");
        mel_fft_ = plan;
        mel_fft_work_ = work;
    }
    Tensor work = empty({static_cast<int64_t>(std::max<size_t>(mel_fft_work_, 1))}, DType::u8);
    check_cufft(cufftSetWorkArea(*mel_fft_, work.raw()), "setting the work area");
    check_cufft(cufftSetStream(*mel_fft_, stream_), "setting the stream");

    Tensor frames = empty({int64_t(batch) * kNfft * int64_t(sizeof(double))}, DType::u8);
    Tensor spectrum = empty({int64_t(batch) * bins * int64_t(2 * sizeof(double))}, DType::u8);
    Tensor logmel = empty({int64_t(kMelPiecesPerPass) * n_mels * kMelFrames * int64_t(sizeof(double))}, DType::u8);
    Tensor out = empty({pieces, n_mels, kMelFrames}, act_);
    for (int64_t first = 0; first < pieces; first += kMelPiecesPerPass) {
        const int count = static_cast<int>(std::min<int64_t>(kMelPiecesPerPass, pieces - first));
        // This pass's samples only (an hour is 230 MB of f32), as they are: upload() would make
        // them 16-bit. Pieces past the end of a short last pass are zeros, transformed and ignored.
        const int64_t s0 = first * kPieceSamples, s1 = std::min(n, (first + count) * kPieceSamples);
        const Tensor samples = to_device_raw(pcm.rows(s0, s1));
        mel_frames(static_cast<double*>(frames.raw()), static_cast<const float*>(samples.raw()), s1 - s0, 0,
                   kMelPiecesPerPass, d_window, s, stream_);
        check_cufft(cufftExecD2Z(*mel_fft_, static_cast<cufftDoubleReal*>(frames.raw()),
                                 static_cast<cufftDoubleComplex*>(spectrum.raw())),
                    "running the STFT");
        mel_energies(static_cast<double*>(logmel.raw()), spectrum.raw(), d_filters, d_begin, d_end, count, s,
                     stream_);
        with_type(act_, [&]<class T>() {
            mel_finish(ptr<T>(out) + first * n_mels * kMelFrames, static_cast<const double*>(logmel.raw()), count, s,
                       stream_);
        });
    }
    return out;
}

}  // namespace vidi::cuda
