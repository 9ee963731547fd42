#include "media/nvdec.h"

// hwcontext_cuda.h names the CUDA driver's handle types, which are opaque pointers; they are
// declared here as the driver's header declares them, so the media layer builds without the
// CUDA toolkit (FFmpeg's own nvdec code does the same).
#ifndef CUDA_VERSION
#define CUDA_VERSION 12000
typedef struct CUctx_st* CUcontext;
typedef struct CUstream_st* CUstream;
#endif

extern "C" {
#include <libavutil/hwcontext.h>
#include <libavutil/hwcontext_cuda.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cstdarg>
#include <mutex>

#include "vidi/error.h"

namespace vidi::media {

namespace {

// The software formats whose frames NVDEC gives as NV12 (8 bits), P010 or P016.
bool nvdec_format(AVPixelFormat f) {
    return f == AV_PIX_FMT_YUV420P || f == AV_PIX_FMT_YUVJ420P || f == AV_PIX_FMT_YUV420P10LE ||
           f == AV_PIX_FMT_YUV420P12LE;
}

bool cuda_capable(const AVCodec* dec) {
    // libavcodec's own decoders with the nvdec hwaccel; the *_cuvid wrappers around NVIDIA's
    // parser are other decoders (their own frame handling) and are not used.
    const std::string name = dec->name;
    if (name.size() > 6 && name.compare(name.size() - 6, 6, "_cuvid") == 0) return false;
    for (int i = 0;; ++i) {
        const AVCodecHWConfig* c = avcodec_get_hw_config(dec, i);
        if (!c) return false;
        if (c->device_type == AV_HWDEVICE_TYPE_CUDA && (c->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX))
            return true;
    }
}

AVPixelFormat pick_cuda(AVCodecContext*, const AVPixelFormat* formats) {
    // FFmpeg offers CUDA first while NVDEC can take the stream; after NVDEC failed to set up
    // it asks again without it, and the software format decodes on the CPU.
    for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f)
        if (*f == AV_PIX_FMT_CUDA) return *f;
    return formats[0];
}

thread_local FfmpegLogCapture* t_capture = nullptr;
std::once_flag g_log_hook;

void log_hook(void* avcl, int level, const char* fmt, va_list vl) {
    if (t_capture && level <= AV_LOG_WARNING) {
        char line[1024];
        int print_prefix = 0;
        va_list copy;
        va_copy(copy, vl);
        av_log_format_line2(avcl, level, fmt, copy, line, sizeof line, &print_prefix);
        va_end(copy);
        capture_line(t_capture, line);
    }
    av_log_default_callback(avcl, level, fmt, vl);
}

}  // namespace

void capture_line(FfmpegLogCapture* c, const char* line) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    if (s.empty()) return;
    if (!c->text_.empty()) c->text_ += "; ";
    c->text_ += s;
}

FfmpegLogCapture::FfmpegLogCapture() : outer_(t_capture) {
    std::call_once(g_log_hook, [] { av_log_set_callback(log_hook); });
    t_capture = this;
}

FfmpegLogCapture::~FfmpegLogCapture() { t_capture = outer_; }

const AVCodec* nvdec_decoder(AVCodecID codec) {
    // The default decoder first (h264, hevc, vp9, ...); AV1's default is libdav1d, whose
    // native sibling "av1" decodes through hwaccels only.
    const AVCodec* preferred = avcodec_find_decoder(codec);
    if (preferred && cuda_capable(preferred)) return preferred;
    void* it = nullptr;
    while (const AVCodec* c = av_codec_iterate(&it))
        if (c->id == codec && av_codec_is_decoder(c) && cuda_capable(c)) return c;
    return nullptr;
}

std::string nvdec_refusal(AVCodecID codec, AVPixelFormat format, std::optional<bool> av1_film_grain) {
    if (av_hwdevice_find_type_by_name("cuda") == AV_HWDEVICE_TYPE_NONE)
        return "this FFmpeg has no CUDA hardware decoding";
    const char* name = avcodec_get_name(codec);
    switch (codec) {
    case AV_CODEC_ID_H264:
    case AV_CODEC_ID_HEVC:
    case AV_CODEC_ID_VP8:
    case AV_CODEC_ID_VP9:
    case AV_CODEC_ID_AV1:
        break;  // decoding is bit-exact by standard
    case AV_CODEC_ID_MPEG1VIDEO:
    case AV_CODEC_ID_MPEG2VIDEO:
    case AV_CODEC_ID_MPEG4:
    case AV_CODEC_ID_VC1:
    case AV_CODEC_ID_WMV3:
    case AV_CODEC_ID_MJPEG:
        return cat("NVDEC's ", name, " pictures may differ from FFmpeg's (the standard leaves the inverse DCT's rounding open)");
    default:
        return cat("NVDEC does not decode ", name);
    }
    if (codec == AV_CODEC_ID_AV1 && av1_film_grain.value_or(true))
        return av1_film_grain
                   ? "its AV1 frames may carry film grain, which NVDEC synthesises its own way (not bit-exact by standard)"
                   : "no AV1 sequence header was read, so film grain (not bit-exact by standard) cannot be ruled out";
    if (!nvdec_decoder(codec)) return cat("this FFmpeg has no NVDEC support for ", name);
    if (format != AV_PIX_FMT_NONE && !nvdec_format(format)) {
        const char* fname = av_get_pix_fmt_name(format);
        return cat("its frames are ", fname ? fname : "of an unknown format",
                   " (NVDEC's frames here are 4:2:0 at 8, 10 or 12 bits)");
    }
    return {};
}

size_t nvdec_session_bytes(int width, int height, AVPixelFormat format) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(format);
    const size_t sample = d && d->comp[0].depth > 8 ? 2 : 1;
    const size_t picture = size_t(std::max(width, 0)) * size_t(std::max(height, 0)) * 3 / 2 * sample;
    return (size_t(48) << 20) + 16 * picture;
}

ff::BufferPtr nvdec_device(int ordinal, void* cuda_context, void* stream) {
    ff::BufferPtr dev(av_hwdevice_ctx_alloc(AV_HWDEVICE_TYPE_CUDA));
    if (!dev) fail("this FFmpeg has no CUDA hardware decoding");
    auto* hw = reinterpret_cast<AVHWDeviceContext*>(dev->data);
    auto* cu = static_cast<AVCUDADeviceContext*>(hw->hwctx);
    // The engine's own context (FFmpeg's "primary_ctx" option would refuse it: the CUDA
    // runtime made it active with other scheduling flags than FFmpeg asks for).
    cu->cuda_ctx = static_cast<CUcontext>(cuda_context);
    cu->stream = static_cast<CUstream>(stream);
    const int rc = av_hwdevice_ctx_init(dev.get());
    if (rc < 0) fail("FFmpeg cannot use CUDA device ", ordinal, ": ", ff::error_string(rc));
    return dev;
}

void use_nvdec(AVCodecContext* ctx, AVBufferRef* device) {
    ctx->hw_device_ctx = av_buffer_ref(device);
    if (!ctx->hw_device_ctx) fail("out of memory setting up NVDEC");
    ctx->get_format = pick_cuda;
    ctx->thread_count = 1;
    ctx->thread_type = 0;
}

bool cuda_frame_planes(const AVFrame* f, AVPixelFormat sw_format, YuvPlanes& planes, int& bits) {
    if (f->format != AV_PIX_FMT_CUDA || !f->hw_frames_ctx || !nvdec_format(sw_format)) return false;
    const auto* frames = reinterpret_cast<const AVHWFramesContext*>(f->hw_frames_ctx->data);
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(sw_format);
    bits = d->comp[0].depth;
    const AVPixelFormat held = frames->sw_format;
    const bool wide = held == AV_PIX_FMT_P010 || held == AV_PIX_FMT_P016;
    if (!(held == AV_PIX_FMT_NV12 && bits == 8) && !(wide && bits > 8)) return false;
    planes.y = f->data[0];
    planes.u = f->data[1];
    planes.v = nullptr;
    planes.y_pitch = f->linesize[0];
    planes.uv_pitch = f->linesize[1];
    planes.width = f->width;
    planes.height = f->height;
    planes.sample_bytes = wide ? 2 : 1;
    planes.shift = wide ? 16 - bits : 0;
    return true;
}

ff::FramePtr download_frame(const AVFrame* f, AVPixelFormat sw_format, const std::string& path) {
    ff::FramePtr held = ff::make_frame();
    int rc = av_hwframe_transfer_data(held.get(), f, 0);
    if (rc < 0) fail("'", path, "': cannot copy a decoded frame from the GPU: ", ff::error_string(rc));
    const auto held_format = static_cast<AVPixelFormat>(held->format);
    const bool wide = held_format == AV_PIX_FMT_P010 || held_format == AV_PIX_FMT_P016;
    VIDI_CHECK(held_format == AV_PIX_FMT_NV12 || wide, "'", path, "': NVDEC gave ",
               av_get_pix_fmt_name(held_format), " frames");
    ff::FramePtr out = ff::make_frame();
    out->format = sw_format;
    out->width = f->width;
    out->height = f->height;
    if (av_frame_get_buffer(out.get(), 0) < 0) fail("'", path, "': out of memory for a decoded frame");
    av_frame_copy_props(out.get(), f);
    const int shift = wide ? 16 - av_pix_fmt_desc_get(sw_format)->comp[0].depth : 0;
    for (int y = 0; y < f->height; ++y) {
        const uint8_t* src = held->data[0] + y * held->linesize[0];
        uint8_t* dst = out->data[0] + y * out->linesize[0];
        if (!wide) {
            std::copy_n(src, f->width, dst);
            continue;
        }
        for (int x = 0; x < f->width; ++x)
            reinterpret_cast<uint16_t*>(dst)[x] = static_cast<uint16_t>(reinterpret_cast<const uint16_t*>(src)[x] >> shift);
    }
    const int cw = (f->width + 1) / 2, ch = (f->height + 1) / 2;
    for (int y = 0; y < ch; ++y) {
        const uint8_t* src = held->data[1] + y * held->linesize[1];
        uint8_t* u = out->data[1] + y * out->linesize[1];
        uint8_t* v = out->data[2] + y * out->linesize[2];
        for (int x = 0; x < cw; ++x) {
            if (!wide) {
                u[x] = src[2 * x];
                v[x] = src[2 * x + 1];
            } else {
                const auto* s = reinterpret_cast<const uint16_t*>(src);
                reinterpret_cast<uint16_t*>(u)[x] = static_cast<uint16_t>(s[2 * x] >> shift);
                reinterpret_cast<uint16_t*>(v)[x] = static_cast<uint16_t>(s[2 * x + 1] >> shift);
            }
        }
    }
    return out;
}

}  // namespace vidi::media
