// Packets whose frame is not sampled are decoded with AVDISCARD_NONREF (H.264/HEVC), so
// non-reference frames nobody asked for are never reconstructed, and unsampled frames
// never reach swscale.
extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include "media/decode_cursor.h"

#include "core/rotate.h"

#include <algorithm>

namespace vidi::media {

// Rows padded to 64 bytes plus a spare row: swscale's SIMD writes whole blocks.
Picture blank_picture(int w, int h) {
    Picture p;
    p.width = w;
    p.height = h;
    p.stride = (w * 3 + 63) / 64 * 64;
    p.rgb.resize(static_cast<size_t>(p.stride) * (h + 1));
    return p;
}

DecodeCursor::DecodeCursor(const std::string& path, const VideoIndex& vx, const std::vector<int64_t>& wanted_pts,
                           int threads, int64_t seek_pts, std::atomic<int64_t>* decoded_counter,
                           MediaInputs inputs)
    : path_(path), vx_(vx), wanted_pts_(wanted_pts), decoded_(decoded_counter) {
    fmt_ = ff::open_input(path, inputs);
    for (unsigned i = 0; i < fmt_->nb_streams; ++i)
        if (static_cast<int>(i) != vx.stream) fmt_->streams[i]->discard = AVDISCARD_ALL;
    dec_ = ff::open_decoder(fmt_.get(), vx.stream, path, FF_THREAD_FRAME | FF_THREAD_SLICE, threads);
    if (seek_pts != AV_NOPTS_VALUE && av_seek_frame(fmt_.get(), vx.stream, seek_pts, AVSEEK_FLAG_BACKWARD) < 0)
        fail("'", path, "': cannot seek to timestamp ", seek_pts);
    const AVCodecID id = fmt_->streams[vx.stream]->codecpar->codec_id;
    // Only where "non-reference" is exact (no later frame reads a discarded one).
    skip_nonref_ = !wanted_pts.empty() && (id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_HEVC);
    pkt_ = ff::make_packet();
    frame_ = ff::make_frame();
}

DecodeCursor::~DecodeCursor() { sws_freeContext(sws_); }

bool DecodeCursor::receive() {
    for (;;) {
        int rc = avcodec_receive_frame(dec_.get(), frame_.get());
        if (rc == 0) {
            frame_key_ = wanted_pts_.empty() ? outputs_
                         : frame_->pts != AV_NOPTS_VALUE ? frame_->pts
                                                         : frame_->best_effort_timestamp;
            if (!have_frame_) first_key_ = frame_key_;
            have_frame_ = true;
            ++outputs_;
            if (decoded_) decoded_->fetch_add(1, std::memory_order_relaxed);
            return true;
        }
        if (rc == AVERROR_EOF) {
            decoder_done_ = true;
            return false;
        }
        // EAGAIN, or a damaged frame (dropped): feed more input.
        if (demux_done_) {
            // Draining; a decoder that keeps failing instead of reaching EOF is given up on.
            if (avcodec_send_packet(dec_.get(), nullptr) == AVERROR_EOF && ++drain_errors_ > 64) {
                decoder_done_ = true;
                return false;
            }
            continue;
        }
        for (;;) {  // feed the next video packet
            rc = av_read_frame(fmt_.get(), pkt_.get());
            if (rc < 0) {
                demux_done_ = true;
                avcodec_send_packet(dec_.get(), nullptr);  // drain
                break;
            }
            if (pkt_->stream_index != vx_.stream) {
                av_packet_unref(pkt_.get());
                continue;
            }
            if (skip_nonref_) {
                const bool wanted = pkt_->pts == AV_NOPTS_VALUE ||
                                    std::binary_search(wanted_pts_.begin(), wanted_pts_.end(), pkt_->pts);
                dec_->skip_frame = wanted ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
            }
            rc = avcodec_send_packet(dec_.get(), pkt_.get());
            av_packet_unref(pkt_.get());
            (void)rc;  // invalid data: the frame is lost, its successor stands in
            break;
        }
    }
}

void DecodeCursor::advance_to(int64_t want) {
    while (!(have_frame_ && frame_key_ >= want)) {
        if (decoder_done_ || !receive()) {
            if (!have_frame_) fail("'", path_, "': no video frame could be decoded (corrupt or unsupported stream)");
            return;  // past the last decodable frame: the last picture stands in (damaged tail)
        }
    }
}

namespace {
// The formats decord's transpose filter takes as they are: chroma subsampled alike both ways,
// not paletted, bitstream or hardware frames.
bool transposable(const AVPixFmtDescriptor* d) {
    return d && !(d->flags & (AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)) &&
           d->log2_chroma_w == d->log2_chroma_h;
}
}  // namespace

const AVFrame* DecodeCursor::turn_planes(const AVFrame* f, int degrees) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(f->format));
    if (!upright_) upright_ = ff::make_frame();
    av_frame_unref(upright_.get());
    const bool swap = degrees != 180;
    upright_->format = f->format;
    upright_->width = swap ? f->height : f->width;
    upright_->height = swap ? f->width : f->height;
    if (av_frame_get_buffer(upright_.get(), 0) < 0) fail("'", path_, "': out of memory turning a frame upright");
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

Picture DecodeCursor::picture() {
    const AVFrame* f = frame_.get();
    const int w = f->width, h = f->height;
    if (w <= 0 || h <= 0 || w > kMaxFrameSide || h > kMaxFrameSide)
        fail("'", path_, "': decoded frame has absurd size ", w, "x", h);
    const auto src_fmt = static_cast<AVPixelFormat>(f->format);
    // decord's filter graph: the transpose filter(s) on the decoder's planes, then one scale
    // filter to the stream's (upright) size and RGB24, so frames of a stream that changes
    // size midway all come out at its first size. A format the transpose filter does not take
    // is turned after the RGB conversion instead (docs/conformance.md).
    const int degrees = vx_.info.rotation;
    const bool planes_first = degrees != 0 && transposable(av_pix_fmt_desc_get(src_fmt));
    const AVFrame* src = planes_first ? turn_planes(f, degrees) : f;
    const bool rgb_after = degrees != 0 && !planes_first;
    const int out_w = rgb_after ? vx_.coded_width : vx_.info.width;
    const int out_h = rgb_after ? vx_.coded_height : vx_.info.height;
    // Bilinear: decord's scale filter has no flags of its own, and in FFmpeg 4.1 (the one
    // its wheel bundles) the filter's default is bilinear. Frames at the stream's size in
    // 4:2:0 with an even height take swscale's unscaled converter, where the flag changes
    // nothing (the ffmpeg CLI's bicubic gives the same bytes there).
    sws_ = sws_getCachedContext(sws_, src->width, src->height, src_fmt, out_w, out_h, AV_PIX_FMT_RGB24,
                                SWS_BILINEAR, nullptr, nullptr, nullptr);
    if (!sws_) {
        const char* name = av_get_pix_fmt_name(src_fmt);
        fail("'", path_, "': cannot convert pixel format ", name ? name : "(unknown)", " to RGB24");
    }
    // As the scale filter does: the frame's own matrix and range.
    int *inv_table = nullptr, *table = nullptr, in_full = 0, out_full = 0, brightness = 0, contrast = 0,
        saturation = 0;
    sws_getColorspaceDetails(sws_, &inv_table, &in_full, &table, &out_full, &brightness, &contrast, &saturation);
    const int* matrix = sws_getCoefficients(f->colorspace);
    if (f->color_range != AVCOL_RANGE_UNSPECIFIED) in_full = f->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws_, matrix, in_full, matrix, out_full, brightness, contrast, saturation);
    Picture p = blank_picture(out_w, out_h);
    uint8_t* dst[4] = {p.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {p.stride, 0, 0, 0};
    if (sws_scale(sws_, src->data, src->linesize, 0, src->height, dst, dst_stride) != out_h)
        fail("'", path_, "': RGB conversion failed");
    if (!rgb_after) return p;
    Picture turned = blank_picture(vx_.info.width, vx_.info.height);
    rotate_plane(p.rgb.data(), p.stride, p.width, p.height, 3, degrees, turned.rgb.data(), turned.stride);
    return turned;
}

}  // namespace vidi::media
