// FrameStream: decodes only what the sampled frames need and hands them out in batches.
//
// Frames are numbered as decord numbers them: the i-th presentation timestamp of the
// video packets (VideoIndex). The decoder runs with frame threading; packets whose frame
// is not sampled are decoded with AVDISCARD_NONREF (H.264/HEVC), so non-reference frames
// that nobody asked for are never reconstructed, and unsampled frames never reach
// swscale. A sampled frame is the first decoded frame whose timestamp is >= the wanted
// one (decord's accurate seek), so a damaged frame is replaced by its successor rather
// than shifting every later index.
extern "C" {
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>

#include "media/video_index.h"

namespace vidi::media {

struct FrameStream::Impl {
    std::string path;
    int image_size = 0;
    int max_batch = 0;
    VideoIndex vx;
    std::vector<int64_t> indices;      // sampled frame indices
    std::vector<int64_t> wanted_pts;   // their timestamps (empty: count output frames)
    bool skip_nonref_allowed = false;

    ff::FormatPtr fmt;
    ff::CodecPtr dec;
    ff::PacketPtr pkt;
    ff::FramePtr frame;        // the most recent decoded frame
    bool have_frame = false;   // `frame` holds a decoded picture
    int64_t frame_key = 0;     // its timestamp, or its output number without timestamps
    int64_t output_count = 0;  // frames received from the decoder
    bool demux_done = false, decoder_done = false;
    int drain_errors = 0;
    size_t next_pos = 0;       // next sampled position to hand out

    SwsContext* sws = nullptr;
    std::vector<uint8_t> rgb;  // RGB24 of the current frame, 64-byte aligned rows
    int rgb_stride = 0;

    ~Impl() { sws_freeContext(sws); }

    void open();
    bool wanted_timestamp(int64_t pts) const {
        return std::binary_search(wanted_pts.begin(), wanted_pts.end(), pts);
    }
    bool receive();  // next decoded frame into `frame`; false when the decoder is drained
    bool frame_for_next_position();
    void convert_rgb();
};

void FrameStream::Impl::open() {
    {
        ff::FormatPtr scan = ff::open_input(path);
        vx = index_video(scan.get(), path);
    }
    indices = sampled_frame_indices(vx.info);
    if (!vx.pts.empty())
        for (int64_t i : indices) wanted_pts.push_back(vx.pts[static_cast<size_t>(i)]);
    fmt = ff::open_input(path);  // a fresh demuxer for decoding (the scan read to the end)
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
        if (static_cast<int>(i) != vx.stream) fmt->streams[i]->discard = AVDISCARD_ALL;
    dec = ff::open_decoder(fmt.get(), vx.stream, path, FF_THREAD_FRAME | FF_THREAD_SLICE);
    const AVCodecID id = fmt->streams[vx.stream]->codecpar->codec_id;
    // Only where "non-reference" is exact (no later frame reads a discarded one).
    skip_nonref_allowed = !wanted_pts.empty() && (id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_HEVC);
    pkt = ff::make_packet();
    frame = ff::make_frame();
}

bool FrameStream::Impl::receive() {
    for (;;) {
        int rc = avcodec_receive_frame(dec.get(), frame.get());
        if (rc == 0) {
            have_frame = true;
            if (wanted_pts.empty()) {
                frame_key = output_count;
            } else {
                frame_key = frame->pts != AV_NOPTS_VALUE ? frame->pts : frame->best_effort_timestamp;
            }
            ++output_count;
            return true;
        }
        if (rc == AVERROR_EOF) {
            decoder_done = true;
            return false;
        }
        // EAGAIN, or a damaged frame (dropped): feed more input.
        if (demux_done) {
            // Draining; a decoder that keeps failing instead of reaching EOF is given up on.
            if (avcodec_send_packet(dec.get(), nullptr) == AVERROR_EOF && ++drain_errors > 64) {
                decoder_done = true;
                return false;
            }
            continue;
        }
        // Feed the next video packet.
        for (;;) {
            rc = av_read_frame(fmt.get(), pkt.get());
            if (rc < 0) {
                demux_done = true;
                avcodec_send_packet(dec.get(), nullptr);  // drain
                break;
            }
            if (pkt->stream_index != vx.stream) {
                av_packet_unref(pkt.get());
                continue;
            }
            if (skip_nonref_allowed)
                dec->skip_frame = (pkt->pts != AV_NOPTS_VALUE && !wanted_timestamp(pkt->pts)) ? AVDISCARD_NONREF
                                                                                            : AVDISCARD_DEFAULT;
            rc = avcodec_send_packet(dec.get(), pkt.get());
            av_packet_unref(pkt.get());
            (void)rc;  // invalid data: the frame is lost, its successor stands in
            break;
        }
    }
}

bool FrameStream::Impl::frame_for_next_position() {
    if (next_pos >= indices.size()) return false;
    const int64_t want = wanted_pts.empty() ? indices[next_pos] : wanted_pts[next_pos];
    while (!(have_frame && frame_key >= want)) {
        if (decoder_done || !receive()) {
            // Past the last decodable frame: the last picture stands in (damaged tail).
            if (!have_frame)
                fail("'", path, "': no video frame could be decoded (corrupt or unsupported stream)");
            break;
        }
    }
    return true;
}

void FrameStream::Impl::convert_rgb() {
    const int w = frame->width, h = frame->height;
    if (w <= 0 || h <= 0 || w > kMaxFrameSide || h > kMaxFrameSide)
        fail("'", path, "': decoded frame has absurd size ", w, "x", h);
    const auto src_fmt = static_cast<AVPixelFormat>(frame->format);
    sws = sws_getCachedContext(sws, w, h, src_fmt, w, h, AV_PIX_FMT_RGB24, SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (!sws) {
        const char* name = av_get_pix_fmt_name(src_fmt);
        fail("'", path, "': cannot convert pixel format ", name ? name : "(unknown)", " to RGB24");
    }
    // As the ffmpeg CLI's scale filter does: the frame's own matrix and range.
    int *inv_table = nullptr, *table = nullptr, in_full = 0, out_full = 0, brightness = 0, contrast = 0,
        saturation = 0;
    sws_getColorspaceDetails(sws, &inv_table, &in_full, &table, &out_full, &brightness, &contrast, &saturation);
    const int* matrix = sws_getCoefficients(frame->colorspace);
    if (frame->color_range != AVCOL_RANGE_UNSPECIFIED) in_full = frame->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws, matrix, in_full, matrix, out_full, brightness, contrast, saturation);
    // Rows padded to 64 bytes plus a spare row: swscale's SIMD writes whole blocks.
    rgb_stride = (w * 3 + 63) / 64 * 64;
    rgb.resize(static_cast<size_t>(rgb_stride) * (h + 1));
    uint8_t* dst[4] = {rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {rgb_stride, 0, 0, 0};
    const int rows = sws_scale(sws, frame->data, frame->linesize, 0, h, dst, dst_stride);
    if (rows != h) fail("'", path, "': RGB conversion failed");
}

FrameStream::FrameStream(const std::string& path, int image_size, int max_batch)
    : impl_(std::make_unique<Impl>()) {
    VIDI_CHECK(image_size > 0 && image_size <= 4096, "FrameStream: bad image size ", image_size);
    VIDI_CHECK(max_batch > 0, "FrameStream: bad batch size ", max_batch);
    impl_->path = path;
    impl_->image_size = image_size;
    impl_->max_batch = max_batch;
    impl_->open();
}

FrameStream::~FrameStream() = default;

const VideoInfo& FrameStream::info() const { return impl_->vx.info; }
int64_t FrameStream::decoded_frames() const { return impl_->output_count; }
int64_t FrameStream::total_frames() const { return static_cast<int64_t>(impl_->indices.size()); }

void FrameStream::keep_every(int64_t step) {
    VIDI_CHECK(step >= 1, "keep_every: step must be at least 1, got ", step);
    VIDI_CHECK(impl_->next_pos == 0 && impl_->output_count == 0, "keep_every: frames were already read");
    if (step == 1) return;
    auto thin = [step](std::vector<int64_t>& v) {
        size_t kept = 0;
        for (size_t i = 0; i < v.size(); i += static_cast<size_t>(step)) v[kept++] = v[i];
        v.resize(kept);
    };
    thin(impl_->indices);
    thin(impl_->wanted_pts);
}

bool FrameStream::next_rgb(Tensor& rgb, int64_t& sampled_position) {
    Impl& s = *impl_;
    if (!s.frame_for_next_position()) return false;
    s.convert_rgb();
    const int w = s.frame->width, h = s.frame->height;
    rgb = Tensor::empty({h, w, 3}, DType::u8);
    for (int y = 0; y < h; ++y)
        std::copy_n(s.rgb.data() + static_cast<size_t>(y) * s.rgb_stride, w * 3, rgb.data<uint8_t>() + y * w * 3);
    sampled_position = static_cast<int64_t>(s.next_pos++);
    return true;
}

bool FrameStream::next(Tensor& batch, std::vector<int64_t>& sampled_positions) {
    Impl& s = *impl_;
    const int64_t left = total_frames() - static_cast<int64_t>(s.next_pos);
    sampled_positions.clear();
    if (left <= 0) return false;
    const int64_t n = std::min<int64_t>(left, s.max_batch);
    const int S = s.image_size;
    batch = Tensor::empty({n, 3, S, S}, DType::f32);
    // Decoding and colour conversion are sequential; the resizes of a batch are independent,
    // so they run in parallel while the decoder's own threads are free to work ahead.
    struct Picture {
        std::vector<uint8_t> rgb;
        int width = 0, height = 0, stride = 0;
    };
    std::vector<Picture> pictures(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        if (!s.frame_for_next_position()) fail("'", s.path, "': frame stream ended early");
        s.convert_rgb();
        Picture& p = pictures[static_cast<size_t>(i)];
        p.width = s.frame->width;
        p.height = s.frame->height;
        p.stride = s.rgb_stride;
        p.rgb.swap(s.rgb);
        sampled_positions.push_back(static_cast<int64_t>(s.next_pos++));
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) {
        const Picture& p = pictures[static_cast<size_t>(i)];
        std::vector<uint8_t> resized(static_cast<size_t>(S) * S * 3);
        resize_bicubic_u8(p.rgb.data(), p.width, p.height, static_cast<size_t>(p.stride), 3, resized.data(), S, S);
        normalize_siglip(resized.data(), S, batch.data<float>() + i * 3 * S * S);
    }
    return true;
}

}  // namespace vidi::media
