// One demuxer + decoder reading a video forward, from the start or from a keyframe, and
// handing out the decoded frames the sampler asks for as RGB24 pictures. FrameStream runs
// one cursor, or several over separate stretches of the video at once. Internal.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "media/hevc_sublayers.h"
#include "media/rgb_picture.h"
#include "media/video_index.h"

namespace vidi::media {

class DecodeCursor {
public:
    // Frames are keyed by timestamp when `wanted_pts` is non-empty (the sampled frames'
    // timestamps, sorted; used to skip unsampled non-reference frames), else by output number.
    // seek_pts: a keyframe timestamp to start at (AV_NOPTS_VALUE: the start of the file).
    // hw_device: a CUDA device context (nvdec.h) to decode with NVDEC; null: in software.
    // buffers: where picture() takes its memory (null: fresh buffers).
    // keep_decoder: a restart at an IDR keyframe (vx.idr_key) goes on with the same decoder,
    // unflushed, dropping the frames from before the keyframe it still gives (keyed by timestamp
    // only). For H.264 on NVDEC: a flush makes FFmpeg's H.264 decoder set up its hardware session
    // anew, ~0.2 s each and one at a time on an H100 (bench/RESULTS.md, 2026-12-06).
    DecodeCursor(const std::string& path, const VideoIndex& vx, const std::vector<int64_t>& wanted_pts, int threads,
                 int64_t seek_pts, std::atomic<int64_t>* decoded_counter, MediaInputs inputs,
                 AVBufferRef* hw_device = nullptr, PictureBuffers* buffers = nullptr, bool keep_decoder = false);
    ~DecodeCursor();
    DecodeCursor(const DecodeCursor&) = delete;
    DecodeCursor& operator=(const DecodeCursor&) = delete;

    // Advances to the first frame whose key is >= want (decord's accurate seek: a damaged
    // frame is replaced by its successor; past the end the last frame stands in).
    void advance_to(int64_t want);
    // The same, false where the stream ends first (the last frame held, if any, stands in; a
    // cursor that restarted holds a frame from before its keyframe, or none).
    bool try_advance_to(int64_t want);
    // Where decoding last (re)started: the keyframe timestamp sought to, or AV_NOPTS_VALUE
    // (the file's start).
    int64_t origin() const { return origin_; }
    // Whether decoding can restart at keyframe `key` without going back in the file: it lies
    // after the origin and after every keyframe packet read so far.
    bool can_restart_at(int64_t key) const;
    // Restarts at keyframe `key` as decord's seek does: the decoder is flushed, the packets
    // before the keyframe are passed over (never decoded), and the frames come from `key` on.
    // Where the keyframe's packet was read already, or `seek` says so (a keyframe far ahead),
    // the demuxer seeks to it. With keep_decoder, at an IDR keyframe whose packet was not read
    // yet, the decoder is not flushed: the frames it still gives from before `key` are dropped.
    void restart_at(int64_t key, bool seek = false);
    // Key of the first frame decoded since the cursor opened or last restarted (to detect a
    // seek that went too far).
    int64_t first_key() const { return first_key_; }
    // The current frame as decord's filter graph makes it: turned upright (transposed planes),
    // then scaled to the stream's size and converted to RGB24 by one swscale pass (a frame
    // NVDEC decoded is brought to the host first).
    Picture picture();
    // A picture this cursor made and nobody reads any more: its memory serves the next ones.
    void recycle(Picture&& p) { rgb_.recycle(std::move(p)); }
    // The current frame as decoded (a CUDA frame when NVDEC decoded it), and the format the
    // software decoder gives for this stream (yuv420p, yuvj420p, yuv420p10le, ...).
    const AVFrame* frame() const { return frame_.get(); }
    AVPixelFormat software_format() const { return dec_->sw_pix_fmt; }

private:
    bool receive();
    // Whether the demuxer gave keyframe `key`'s packet already (or the whole file).
    bool read_past(int64_t key) const { return key <= read_key_ || demux_done_; }

    const std::string& path_;
    const VideoIndex& vx_;
    const std::vector<int64_t>& wanted_pts_;
    ff::FormatPtr fmt_;
    ff::CodecPtr dec_;
    ff::PacketPtr pkt_;
    ff::FramePtr frame_, next_;  // the current frame; the one being received
    bool skip_nonref_ = false;
    std::optional<HevcSublayers> hevc_;  // HEVC: which packets skip_nonref_ may skip
    int64_t origin_ = AV_NOPTS_VALUE;
    int64_t read_key_ = AV_NOPTS_VALUE;    // the last keyframe packet the demuxer gave
    int64_t restart_at_ = AV_NOPTS_VALUE;  // a keyframe whose earlier packets are passed over
    bool keep_decoder_ = false;
    int64_t drop_before_ = AV_NOPTS_VALUE;  // after an unflushed restart: frames keyed before it are dropped
    bool have_frame_ = false;
    bool stale_ = false;  // the frame held came from before a restart (it stands in only at the end)
    int64_t frame_key_ = 0, first_key_ = 0, outputs_ = 0;
    bool demux_done_ = false, decoder_done_ = false;
    int drain_errors_ = 0;
    std::atomic<int64_t>* decoded_ = nullptr;
    RgbConverter rgb_;
};

}  // namespace vidi::media
