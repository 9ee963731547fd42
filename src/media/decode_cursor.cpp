// Packets whose frame is not sampled are decoded with AVDISCARD_NONREF (H.264; HEVC where the
// packet lies in the highest temporal sub-layer: hevc_sublayers.h), so
// non-reference frames nobody asked for are never reconstructed, and unsampled frames
// never reach swscale. Whole stretches are passed over too: where decord seeks to a later
// keyframe (FrameStream knows where from decord_pictures), the decoder is flushed and the
// packets before that keyframe are dropped unread (or, where it was read already, the demuxer
// goes back to it). With keyframes every second (phones) and
// 1 fps sampling that is most of the file. The frames from the keyframe on are those of a
// decode from the start: no later frame refers back past a keyframe, even in an open GOP.
#include "media/decode_cursor.h"

#include <algorithm>

#include "media/nvdec.h"

namespace vidi::media {

DecodeCursor::DecodeCursor(const std::string& path, const VideoIndex& vx, const std::vector<int64_t>& wanted_pts,
                           int threads, int64_t seek_pts, std::atomic<int64_t>* decoded_counter,
                           MediaInputs inputs, AVBufferRef* hw_device, PictureBuffers* buffers, bool keep_decoder)
    : path_(path), vx_(vx), wanted_pts_(wanted_pts), keep_decoder_(keep_decoder && !wanted_pts.empty()),
      decoded_(decoded_counter), rgb_(buffers) {
    fmt_ = ff::open_input(path, inputs);
    for (unsigned i = 0; i < fmt_->nb_streams; ++i)
        if (static_cast<int>(i) != vx.stream) fmt_->streams[i]->discard = AVDISCARD_ALL;
    if (hw_device)
        dec_ = ff::open_decoder(fmt_.get(), vx.stream, path, 0, 1, nvdec_decoder(vx.codec_id),
                                [hw_device](AVCodecContext* c) { use_nvdec(c, hw_device); });
    else
        dec_ = ff::open_decoder(fmt_.get(), vx.stream, path, FF_THREAD_FRAME | FF_THREAD_SLICE, threads);
    if (seek_pts != AV_NOPTS_VALUE && !vx.seek_to_key(fmt_.get(), seek_pts))
        fail("'", path, "': cannot seek to timestamp ", seek_pts);
    const AVCodecID id = fmt_->streams[vx.stream]->codecpar->codec_id;
    // Only where "non-reference" is exact (no later frame reads a discarded one): in H.264 always,
    // in HEVC for the highest temporal sub-layer (hevc_sublayers.h).
    skip_nonref_ = !wanted_pts.empty() && (id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_HEVC);
    if (skip_nonref_ && id == AV_CODEC_ID_HEVC) {
        const AVCodecParameters* par = fmt_->streams[vx.stream]->codecpar;
        hevc_.emplace(par->extradata, par->extradata_size);
    }
    if (seek_pts != AV_NOPTS_VALUE) restart_at(seek_pts);
    pkt_ = ff::make_packet();
    frame_ = ff::make_frame();
    next_ = ff::make_frame();
}

DecodeCursor::~DecodeCursor() = default;

bool DecodeCursor::receive() {
    for (;;) {
        // Into a frame of its own: avcodec_receive_frame empties its frame when it has none to
        // give, and the last picture must stand in past the end.
        int rc = avcodec_receive_frame(dec_.get(), next_.get());
        if (rc == 0) {
            const int64_t key = wanted_pts_.empty()               ? outputs_
                                : next_->pts != AV_NOPTS_VALUE ? next_->pts
                                                                : next_->best_effort_timestamp;
            if (drop_before_ != AV_NOPTS_VALUE && key < drop_before_) {  // from before an unflushed restart
                av_frame_unref(next_.get());
                continue;
            }
            av_frame_unref(frame_.get());
            av_frame_move_ref(frame_.get(), next_.get());
            frame_key_ = key;
            if (!have_frame_ || stale_) first_key_ = frame_key_;
            have_frame_ = true;
            stale_ = false;
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
            const bool key = pkt_->flags & AV_PKT_FLAG_KEY;
            if (key) read_key_ = pkt_->pts;
            if (restart_at_ != AV_NOPTS_VALUE) {
                if (!key || pkt_->pts < restart_at_) {
                    av_packet_unref(pkt_.get());
                    continue;
                }
                restart_at_ = AV_NOPTS_VALUE;
            }
            if (skip_nonref_) {
                // Every HEVC packet is read: in-band parameter sets may change the sub-layers.
                const bool exact = !hevc_ || hevc_->skippable(pkt_->data, pkt_->size);
                const bool wanted = pkt_->pts == AV_NOPTS_VALUE ||
                                    std::binary_search(wanted_pts_.begin(), wanted_pts_.end(), pkt_->pts);
                dec_->skip_frame = wanted || !exact ? AVDISCARD_DEFAULT : AVDISCARD_NONREF;
            }
            rc = avcodec_send_packet(dec_.get(), pkt_.get());
            av_packet_unref(pkt_.get());
            (void)rc;  // invalid data: the frame is lost, its successor stands in
            break;
        }
    }
}

bool DecodeCursor::can_restart_at(int64_t key) const {
    return key != AV_NOPTS_VALUE && key > origin_ && !read_past(key);
}

void DecodeCursor::restart_at(int64_t key, bool seek) {
    const bool back = key != AV_NOPTS_VALUE && read_past(key);
    // Without a flush only where the decoder has not read the keyframe's packet (or any after
    // it) and was not drained: it then holds nothing but frames from before the keyframe.
    const bool keep = keep_decoder_ && !back && !demux_done_ && vx_.idr_key(key);
    if (back || (seek && key != AV_NOPTS_VALUE)) {
        // Its packet was read already (frame threads and reordering read ahead): the demuxer
        // goes back to it, so the frames from it on are decoded from it alone, as decord's are.
        if (!vx_.seek_to_key(fmt_.get(), key)) fail("'", path_, "': cannot seek to timestamp ", key);
        read_key_ = AV_NOPTS_VALUE;
        demux_done_ = decoder_done_ = false;
        drain_errors_ = 0;
    }
    restart_at_ = origin_ = key;
    // What the decoder holds (frame threads, reordering) came before the keyframe in the file.
    if (keep) {
        drop_before_ = key;
    } else {
        avcodec_flush_buffers(dec_.get());
        drop_before_ = AV_NOPTS_VALUE;
    }
    stale_ = true;
}

bool DecodeCursor::try_advance_to(int64_t want) {
    while (!(have_frame_ && !stale_ && frame_key_ >= want))
        if (decoder_done_ || !receive()) return false;
    return true;
}

void DecodeCursor::advance_to(int64_t want) {
    if (!try_advance_to(want) && !have_frame_)
        fail("'", path_, "': no video frame could be decoded (corrupt or unsupported stream)");
    // else past the last decodable frame: the last picture stands in (damaged tail)
}

Picture DecodeCursor::picture() {
    const AVFrame* f = frame_.get();
    const int w = f->width, h = f->height;
    require_plausible_frame_size(w, h, path_);
    if (f->format == AV_PIX_FMT_CUDA) return rgb_.convert(download_frame(f, dec_->sw_pix_fmt, path_).get(), vx_, path_);
    return rgb_.convert(f, vx_, path_);
}

}  // namespace vidi::media
