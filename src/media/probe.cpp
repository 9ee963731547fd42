// probe(): container facts and an exact frame count from one demux-only pass.
#include <algorithm>
#include <cmath>

#include "media/video_index.h"

namespace vidi::media {
namespace {

double rational(AVRational r) { return r.num > 0 && r.den > 0 ? av_q2d(r) : 0.0; }

double container_duration(AVFormatContext* fmt, const AVStream* video) {
    if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
        return static_cast<double>(fmt->duration) / AV_TIME_BASE;
    if (video && video->duration != AV_NOPTS_VALUE && video->duration > 0)
        return video->duration * av_q2d(video->time_base);
    return 0.0;
}

}  // namespace

VideoIndex index_video(AVFormatContext* fmt, const std::string& path) {
    VideoIndex vx;
    VideoInfo& info = vx.info;
    info.path = path;
    vx.stream = ff::find_video_stream(fmt);
    const int audio = ff::find_audio_stream(fmt);
    info.has_audio = audio >= 0;
    if (info.has_audio) info.audio_codec = avcodec_get_name(fmt->streams[audio]->codecpar->codec_id);
    info.has_video = vx.stream >= 0;
    if (!info.has_video)
        fail("'", path, "' has no video stream", info.has_audio ? " (it is audio only)" : "");
    AVStream* st = fmt->streams[vx.stream];
    const AVCodecParameters* par = st->codecpar;
    info.video_codec = avcodec_get_name(par->codec_id);
    info.width = par->width;
    info.height = par->height;
    if (info.width <= 0 || info.height <= 0)
        fail("'", path, "': the video stream has no valid frame size (", info.width, "x", info.height, ")");
    if (info.width > kMaxFrameSide || info.height > kMaxFrameSide)
        fail("'", path, "': absurd frame size ", info.width, "x", info.height, " (limit ", kMaxFrameSide,
             " per side)");
    info.duration = container_duration(fmt, st);

    // Demux only the video stream and collect the presentation timestamps.
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
        if (static_cast<int>(i) != vx.stream) fmt->streams[i]->discard = AVDISCARD_ALL;
    ff::PacketPtr pkt = ff::make_packet();
    bool all_pts = true;
    int64_t packets = 0;
    for (;;) {
        const int rc = av_read_frame(fmt, pkt.get());
        if (rc == AVERROR_EOF) break;
        if (rc < 0) break;  // a damaged tail: keep what was read, decoding decides the rest
        if (pkt->stream_index == vx.stream && !(pkt->flags & AV_PKT_FLAG_DISCARD)) {
            ++packets;
            if (pkt->pts == AV_NOPTS_VALUE) all_pts = false;
            else vx.pts.push_back(pkt->pts);
            if (pkt->pts != AV_NOPTS_VALUE && (pkt->flags & AV_PKT_FLAG_KEY)) vx.key_pts.push_back(pkt->pts);
        }
        av_packet_unref(pkt.get());
    }
    if (all_pts) std::sort(vx.pts.begin(), vx.pts.end());
    else vx.pts.clear();
    std::sort(vx.key_pts.begin(), vx.key_pts.end());
    const std::string demuxer = fmt->iformat && fmt->iformat->name ? fmt->iformat->name : "";
    vx.indexed_seek = demuxer.find("mp4") != std::string::npos || demuxer.find("matroska") != std::string::npos;
    // decord's len(vr) is the header's nb_frames when present; the packets actually in the
    // file are the frames that exist, so a damaged file can only have fewer.
    info.frame_count = packets;
    if (st->nb_frames > 0 && st->nb_frames < packets) info.frame_count = st->nb_frames;
    if (all_pts && static_cast<int64_t>(vx.pts.size()) > info.frame_count) vx.pts.resize(info.frame_count);

    info.avg_fps = rational(st->avg_frame_rate);
    if (info.avg_fps <= 0) info.avg_fps = rational(st->r_frame_rate);
    if (info.avg_fps <= 0 && info.duration > 0) info.avg_fps = info.frame_count / info.duration;
    if (info.frame_count == 0) fail("'", path, "' has a video stream with no frames");
    return vx;
}

VideoInfo probe(const std::string& path, MediaInputs inputs) {
    ff::FormatPtr fmt = ff::open_input(path, inputs);
    return index_video(fmt.get(), path).info;
}

std::vector<int64_t> sampled_frame_indices(const VideoInfo& info) {
    // Python's round(): half to even, which nearbyint does in the default rounding mode.
    const int64_t stride = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(info.avg_fps)));
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < info.frame_count; i += stride) idx.push_back(i);
    return idx;
}

}  // namespace vidi::media
