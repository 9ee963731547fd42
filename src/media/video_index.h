// The demux-only pass over a video: stream facts plus every frame's presentation
// timestamp, sorted, which is how decord numbers frames (index i = i-th frame in
// presentation order). Internal to the media layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "media/ffmpeg_util.h"
#include "media/media.h"

namespace vidi::media {

struct VideoIndex {
    VideoInfo info;
    int stream = -1;
    // Sorted presentation timestamps of all frames (stream time base); empty when some
    // packet has no timestamp, in which case frames are numbered in decoder output order.
    std::vector<int64_t> pts;
    // Sorted timestamps of the keyframe packets (where decoding can start after a seek).
    std::vector<int64_t> key_pts;
    // The container has a seek index (MP4/MOV, Matroska/WebM): seeking to a keyframe is exact.
    bool indexed_seek = false;
};

// Scans `fmt` (freshly opened) to the end; the caller reopens or seeks to decode.
VideoIndex index_video(AVFormatContext* fmt, const std::string& path);

}  // namespace vidi::media
