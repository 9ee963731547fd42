// The demux-only pass over a video: stream facts plus every packet of the video stream,
// which is how decord counts and numbers frames (index i = the i-th packet in timestamp
// order, discard-flagged packets included). Internal to the media layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "media/ffmpeg_util.h"
#include "media/media.h"

namespace vidi::media {

struct VideoPacket {
    int64_t pts = 0;       // AV_NOPTS_VALUE when the container gave none
    bool key = false;      // AV_PKT_FLAG_KEY
    bool discard = false;  // AV_PKT_FLAG_DISCARD: decoded for reference only, never shown (edit lists)
    int64_t pos = -1;      // byte position in the file (-1: unknown)
};

struct VideoIndex {
    VideoInfo info;
    int stream = -1;
    int coded_width = 0, coded_height = 0;  // the stream's size before rotation (codecpar)
    AVCodecID codec_id = AV_CODEC_ID_NONE;
    AVPixelFormat pix_fmt = AV_PIX_FMT_NONE;  // as the stream's header or first frames say
    // Every packet of the video stream in file order.
    std::vector<VideoPacket> packets;
    bool all_pts = false;  // every packet has a timestamp (else frames are numbered in decoder output order)
    // Sorted timestamps of the keyframe packets (where decoding can start after a seek), and
    // their byte positions (key_pos[i] is key_pts[i]'s).
    std::vector<int64_t> key_pts, key_pos;
    // The container has a seek index (MP4/MOV, Matroska/WebM): seeking to a keyframe is exact.
    bool indexed_seek = false;
    // No index, but every keyframe's byte position is known and their timestamps rise in file
    // order (MPEG-TS without a timestamp jump): a seek to the keyframe's byte is exact.
    bool byte_seek = false;
    // H.264: the sorted timestamps of the keyframes that are IDR pictures (nal_units.h). A
    // decoder may jump to one without a flush: nothing from before it is used again.
    std::vector<int64_t> idr_pts;
    bool idr_key(int64_t key) const;
    // AV1: whether the sequence headers read (the extradata's, the keyframes') say its frames may
    // carry film grain (av1_film_grain.h); nullopt where none was read.
    std::optional<bool> av1_film_grain;
    // Seeks `fmt` (opened on this file) to keyframe `key` (one of key_pts) as one of the two
    // allows; false when it cannot.
    bool seek_to_key(AVFormatContext* fmt, int64_t key) const;
};

// Scans `fmt` (freshly opened) to the end; the caller reopens or seeks to decode.
VideoIndex index_video(AVFormatContext* fmt, const std::string& path);

// decord's rotation of a stream, clockwise degrees (0, 90, 180 or 270): its `rotate` tag
// when present and not "0", else the display matrix's rotation (as FFmpeg 4.1, which the
// official decord wheel bundles, formats it into that tag: "%g"); anything that is not a
// whole quarter turn after truncation to an integer is 0. Mirroring is ignored (decord
// reads only the rotation). Either argument may be null.
int decord_rotation(const char* rotate_tag, const int32_t* display_matrix);
// The same for a stream of an open file.
int stream_rotation(const AVStream* st);

// The pictures decord's VideoReader.get_batch(indices) returns, as the timestamps of the
// decoded frames that hold them, for ascending indices < packets.size() (needs all_pts).
// decord numbers frames by packet timestamp but, decoding from the start, by decoder
// output until its first keyframe seek: where leading packets are discard-flagged (an
// MP4/MOV edit list) the two disagree; this replays its seek logic to say which picture
// each index gets, and from which keyframe decord decoded it. See decord_frames.cpp.
struct DecordPicture {
    int64_t pts;     // the decoded frame that holds it
    int64_t origin;  // the keyframe decord's decoder restarted at before it (AV_NOPTS_VALUE: the file's start)
};
std::vector<DecordPicture> decord_pictures(const std::vector<VideoPacket>& packets, const std::vector<int64_t>& indices);

}  // namespace vidi::media
