// vidi/clips.h: the media layer's clip export (media/clip_export.h), public.
#include "media/clip_export.h"
#include "vidi/clips.h"

namespace vidi {

ExportedClip export_clip(const std::string& video, const TimeRange& range, const std::string& out_path) {
    const media::ExportedClip c = media::export_clip(video, range, out_path);
    return {c.path, c.start, c.end};
}

std::vector<std::string> export_clips(const std::string& video, const std::vector<TimeRange>& ranges,
                                      const std::string& dir) {
    return media::export_clips(video, ranges, dir);
}

std::string clip_extension(const std::string& video) { return media::clip_extension(video); }

}  // namespace vidi
