// Clip export by stream copy (libavformat remux, no re-encode): fast and lossless, but a
// clip can only start on a keyframe. Each clip therefore starts at the last video
// keyframe at or before the requested start (so it may begin earlier than asked, by up
// to one GOP) and ends at the requested end (the last packets whose decode time falls
// before it). Audio is cut to the same start. Subtitle/data streams are dropped.
#pragma once

#include <string>
#include <vector>

#include "vidi/vidi.h"

namespace vidi {

struct ExportedClip {
    std::string path;
    double start = 0;  // where the clip really begins in the source (the keyframe), seconds
    double end = 0;    // the requested end, clamped to the source's duration
};

// Writes `range` of `video` to `out_path` (container chosen from its extension); `inputs`
// is what the source may be (vidi.h).
// Throws vidi::Error naming the file on unreadable input, an empty or inverted range, a
// range outside the video, or a write failure.
ExportedClip export_clip(const std::string& video, const TimeRange& range, const std::string& out_path,
                         MediaInputs inputs = MediaInputs::Any);

// Creates `dir` when missing and checks that a file can be written in it; throws vidi::Error
// naming it otherwise. export_clips calls it; call it before the work whose answers are to
// be exported, so that a bad directory fails at once.
void prepare_clip_dir(const std::string& dir);

// Writes each range as its own file in `dir` (prepare_clip_dir), named
// "<video stem>_<n>_<HH-MM-SS.ss>-<HH-MM-SS.ss><ext>" with the source's extension when it
// is one of the single-file containers below, else ".mkv". Returns the written paths in
// the order of `ranges`.
std::vector<std::string> export_clips(const std::string& video, const std::vector<TimeRange>& ranges,
                                      const std::string& dir);

// The extension (with its dot, lower-case) clips of `video` get: its own when it is a
// single-file container (.mp4, .m4v, .mov, .mkv, .webm, .ogv, .avi, .ts, .flv), else ".mkv".
// export_clip refuses other extensions: HLS (.m3u8) or DASH (.mpd) would leave segment
// files beside the clip.
std::string clip_extension(const std::string& video);

}  // namespace vidi
