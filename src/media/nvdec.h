// FFmpeg's CUDA hardware decoding (NVDEC) as the media layer uses it. libavcodec's nvdec
// hwaccel loads the driver's libcuda.so.1 and libnvcuvid.so.1 when a decoder starts: nothing
// is linked, and a machine without them simply cannot take this path. Internal.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "core/yuv_rgb.h"
#include "media/video_index.h"

namespace vidi::media {

// Why NVDEC will not decode this stream into the frames the CPU path makes, before trying:
// FFmpeg built without it, a codec NVDEC lacks or decodes differently from libavcodec (the
// inverse DCT of MPEG-1/2/4, VC-1 and JPEG is not bit-exact by standard), AV1 whose frames may
// carry film grain (`av1_film_grain`, VideoIndex's; nullopt: not known), or frames other than
// 4:2:0 at 8, 10 or 12 bits. Empty when it may.
std::string nvdec_refusal(AVCodecID codec, AVPixelFormat format, std::optional<bool> av1_film_grain);

// The libavcodec decoder that decodes `codec` through NVDEC (null: none).
const AVCodec* nvdec_decoder(AVCodecID codec);

// A CUDA device context for GPU `ordinal` in the engine's CUDA context (a CUcontext), doing
// its copies on `stream` (a CUstream). Throws vidi::Error with FFmpeg's reason (no driver
// library).
ff::BufferPtr nvdec_device(int ordinal, void* cuda_context, void* stream);

// Sets a decoder up for NVDEC on `device`: its frames are CUDA frames; when NVDEC cannot set
// up for the stream (its size or profile, no libnvcuvid) FFmpeg decodes in software instead.
// One thread: the hardware does the work.
void use_nvdec(AVCodecContext* ctx, AVBufferRef* device);

// What one NVDEC decoder session holds in device memory for frames of w x h in `format` (its
// sample depth; 8 bits where unknown). FFmpeg allocates its decode surfaces and output frames
// outside the engine's pool. 48 MiB and 16 pictures of 4:2:0: above what was measured on an
// H100 (bench/RESULTS.md, 2026-12-06: 39-52 MiB a lane at 720p, 130 MiB at 4K with 4 lanes,
// 214 MiB with 8).
size_t nvdec_session_bytes(int width, int height, AVPixelFormat format);

// Records what FFmpeg logs on this thread while alive: the reason NVDEC refused a stream.
class FfmpegLogCapture {
public:
    FfmpegLogCapture();
    ~FfmpegLogCapture();
    FfmpegLogCapture(const FfmpegLogCapture&) = delete;
    FfmpegLogCapture& operator=(const FfmpegLogCapture&) = delete;
    // The errors and warnings logged, one per line, without the trailing newline.
    std::string text() const { return text_; }

private:
    friend void capture_line(FfmpegLogCapture*, const char*);
    std::string text_;
    FfmpegLogCapture* outer_ = nullptr;
};

// A CUDA frame's planes (NV12, P010 or P016 in device memory) for DeviceFrames::convert;
// bits: the sample depth of the decoder's software format. False for other frames.
bool cuda_frame_planes(const AVFrame* f, AVPixelFormat sw_format, YuvPlanes& planes, int& bits);

// A CUDA frame brought to the host in `sw_format`, the planar format the software decoder
// gives (yuv420p, yuvj420p, yuv420p10le, yuv420p12le): what RgbConverter takes.
ff::FramePtr download_frame(const AVFrame* f, AVPixelFormat sw_format, const std::string& path);

}  // namespace vidi::media
