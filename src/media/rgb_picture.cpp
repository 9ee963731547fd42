extern "C" {
#include <libavutil/cpu.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include "media/rgb_picture.h"

#include <algorithm>

#include "core/rotate.h"

namespace vidi::media {

namespace {

// The matrix the scale filter (decord's graph, FFmpeg 4.1 and 5.1 alike) takes for a frame's
// colorspace with in_color_matrix=auto: BT.601 for any value it has no matrix for (0 = RGB/GBR,
// 8 = YCgCo, past 10), where sws_getCoefficients(0) alone would give BT.709's.
const int* scale_filter_coefficients(AVColorSpace colorspace) {
    if (colorspace < 1 || colorspace > 10 || colorspace == 8) colorspace = AVCOL_SPC_BT470BG;
    return sws_getCoefficients(colorspace);
}

}  // namespace

// Rows padded to 64 bytes plus a spare row: swscale's SIMD writes whole blocks. Its
// unscaled converter works in steps of 8 pixels and converts 8 fewer where 8-pixel steps
// would overrun the row's stride, leaving up to 7 pixels at the right unwritten: the stride
// leaves room for whole 16-pixel blocks.
Picture blank_picture(int w, int h, PictureBuffers* buffers) {
    Picture p;
    p.width = w;
    p.height = h;
    p.stride = ((w + 15) / 16 * 16 * 3 + 63) / 64 * 64;
    const size_t bytes = static_cast<size_t>(p.stride) * (h + 1);
    if (buffers)
        p.rgb = buffers->take(bytes);
    else
        p.rgb.resize(bytes);
    return p;
}

PictureBytes PictureBuffers::take(size_t bytes) {
    PictureBytes b;
    {
        std::lock_guard<std::mutex> lock(mu_);
        // One large enough (pictures of a stream share a size; turning after the RGB conversion
        // alternates two): a smaller one stays for the pictures it fits.
        auto fits = std::find_if(free_.rbegin(), free_.rend(), [&](const auto& f) { return f.capacity() >= bytes; });
        if (fits != free_.rend()) {
            b = std::move(*fits);
            free_.erase(std::next(fits).base());
        }
    }
    b.resize(bytes);  // nothing is zeroed (UninitializedAllocator)
    return b;
}

void PictureBuffers::give_back(Picture&& p) {
    if (p.rgb.empty()) return;
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(p.rgb));
}

RgbConverter::~RgbConverter() { sws_freeContext(sws_); }

namespace {
// The formats decord's transpose filter takes as they are: chroma subsampled alike both ways,
// not paletted, bitstream or hardware frames.
bool transposable(const AVPixFmtDescriptor* d) {
    return d && !(d->flags & (AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)) &&
           d->log2_chroma_w == d->log2_chroma_h;
}

bool full_range_format(AVPixelFormat f) {
    return f == AV_PIX_FMT_YUVJ420P || f == AV_PIX_FMT_YUVJ422P || f == AV_PIX_FMT_YUVJ444P ||
           f == AV_PIX_FMT_YUVJ440P || f == AV_PIX_FMT_YUVJ411P;
}
}  // namespace

const AVFrame* RgbConverter::turn_planes(const AVFrame* f, int degrees, const std::string& path) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(f->format));
    if (!upright_) upright_ = ff::make_frame();
    av_frame_unref(upright_.get());
    const bool swap = degrees != 180;
    upright_->format = f->format;
    upright_->width = swap ? f->height : f->width;
    upright_->height = swap ? f->width : f->height;
    if (av_frame_get_buffer(upright_.get(), 0) < 0) fail("'", path, "': out of memory turning a frame upright");
    int steps[4] = {0, 0, 0, 0};
    av_image_fill_max_pixsteps(steps, nullptr, d);
    for (int p = 0; p < av_pix_fmt_count_planes(static_cast<AVPixelFormat>(f->format)); ++p) {
        const bool chroma = p == 1 || p == 2;
        const int pw = chroma ? AV_CEIL_RSHIFT(f->width, d->log2_chroma_w) : f->width;
        const int ph = chroma ? AV_CEIL_RSHIFT(f->height, d->log2_chroma_h) : f->height;
        rotate_plane(f->data[p], f->linesize[p], pw, ph, steps[p], degrees, upright_->data[p], upright_->linesize[p]);
    }
    return upright_.get();
}

Picture RgbConverter::convert(const AVFrame* f, const VideoIndex& vx, const std::string& path) {
    const auto src_fmt = static_cast<AVPixelFormat>(f->format);
    // decord's filter graph: the transpose filter(s) on the decoder's planes, then one scale
    // filter to the stream's (upright) size and RGB24, so frames of a stream that changes
    // size midway all come out at its first size. A format the transpose filter does not take
    // is turned after the RGB conversion instead (docs/conformance.md).
    const int degrees = vx.info.rotation;
    const bool planes_first = degrees != 0 && transposable(av_pix_fmt_desc_get(src_fmt));
    const AVFrame* src = planes_first ? turn_planes(f, degrees, path) : f;
    const bool rgb_after = degrees != 0 && !planes_first;
    const int out_w = rgb_after ? vx.coded_width : vx.info.width;
    const int out_h = rgb_after ? vx.coded_height : vx.info.height;
    // Bilinear: decord's scale filter has no flags of its own, and in FFmpeg 4.1 (the one
    // its wheel bundles) the filter's default is bilinear. Frames at the stream's size in
    // 4:2:0 with an even height take swscale's unscaled converter, where the flag changes
    // nothing (the ffmpeg CLI's bicubic gives the same bytes there).
    sws_ = sws_getCachedContext(sws_, src->width, src->height, src_fmt, out_w, out_h, AV_PIX_FMT_RGB24,
                                SWS_BILINEAR, nullptr, nullptr, nullptr);
    if (!sws_) {
        const char* name = av_get_pix_fmt_name(src_fmt);
        fail("'", path, "': cannot convert pixel format ", name ? name : "(unknown)", " to RGB24");
    }
    // As the scale filter does: the frame's own matrix and range.
    int *inv_table = nullptr, *table = nullptr, in_full = 0, out_full = 0, brightness = 0, contrast = 0,
        saturation = 0;
    sws_getColorspaceDetails(sws_, &inv_table, &in_full, &table, &out_full, &brightness, &contrast, &saturation);
    const int* matrix = scale_filter_coefficients(f->colorspace);
    if (f->color_range != AVCOL_RANGE_UNSPECIFIED) in_full = f->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws_, matrix, in_full, matrix, out_full, brightness, contrast, saturation);
    Picture p = blank_picture(out_w, out_h, buffers_);
    uint8_t* dst[4] = {p.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {p.stride, 0, 0, 0};
    if (sws_scale(sws_, src->data, src->linesize, 0, src->height, dst, dst_stride) != out_h)
        fail("'", path, "': RGB conversion failed");
    if (!rgb_after) return p;
    Picture turned = blank_picture(vx.info.width, vx.info.height, buffers_);
    rotate_plane(p.rgb.data(), p.stride, p.width, p.height, 3, degrees, turned.rgb.data(), turned.stride);
    recycle(std::move(p));
    return turned;
}

YuvColor frame_color(const AVFrame* f, AVPixelFormat format) {
    YuvColor c;
    const int* matrix = scale_filter_coefficients(f->colorspace);
    for (int i = 0; i < 4; ++i) c.coefficients[i] = matrix[i];
    c.full_range = f->color_range != AVCOL_RANGE_UNSPECIFIED ? f->color_range == AVCOL_RANGE_JPEG
                                                            : full_range_format(format);
    return c;
}

bool swscale_x86_simd() {
#if defined(__x86_64__) || defined(__i386__)
    return (av_get_cpu_flags() & AV_CPU_FLAG_MMX) != 0;
#else
    return false;
#endif
}

}  // namespace vidi::media
