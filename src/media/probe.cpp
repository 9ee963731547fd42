// probe(): container facts and an exact frame count from one demux-only pass.
#include <algorithm>
#include <cmath>

#include "media/av1_film_grain.h"
#include "media/nal_units.h"
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

void require_plausible_frame_size(int w, int h, const std::string& path) {
    if (!plausible_frame_size(w, h))
        fail("'", path, "': absurd frame size ", w, "x", h, " (limit ", kMaxFrameSide, " a side and 8192x8192 pixels)");
}

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
    vx.codec_id = par->codec_id;
    vx.pix_fmt = static_cast<AVPixelFormat>(par->format);
    vx.coded_width = par->width;
    vx.coded_height = par->height;
    if (vx.coded_width <= 0 || vx.coded_height <= 0)
        fail("'", path, "': the video stream's frame size is unknown (", vx.coded_width, "x", vx.coded_height,
             "): no picture could be read where the file was probed (a recording cut inside a long group of "
             "pictures, or a damaged stream)");
    require_plausible_frame_size(vx.coded_width, vx.coded_height, path);
    info.rotation = stream_rotation(st);
    const bool quarter = info.rotation == 90 || info.rotation == 270;
    info.width = quarter ? vx.coded_height : vx.coded_width;
    info.height = quarter ? vx.coded_width : vx.coded_height;
    info.duration = container_duration(fmt, st);

    // Demux only the video stream and record every packet, as decord's index does: it counts
    // discard-flagged packets too (the lead-in of an MP4 edit list) and never the header's
    // nb_frames, which can be short or absent.
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
        if (static_cast<int>(i) != vx.stream) fmt->streams[i]->discard = AVDISCARD_ALL;
    ff::PacketPtr pkt = ff::make_packet();
    vx.all_pts = true;
    std::vector<std::pair<int64_t, int64_t>> keys;  // (pts, byte position) in file order
    const bool h264 = par->codec_id == AV_CODEC_ID_H264;
    const int length_size = h264 ? h264_length_size(par->extradata, par->extradata_size) : 0;
    const bool av1 = par->codec_id == AV_CODEC_ID_AV1;
    auto note_grain = [&vx](std::optional<bool> grain) {
        if (grain) vx.av1_film_grain = vx.av1_film_grain.value_or(false) || *grain;
    };
    if (av1 && par->extradata) note_grain(av1_film_grain(par->extradata, static_cast<size_t>(par->extradata_size)));
    for (;;) {
        const int rc = av_read_frame(fmt, pkt.get());
        if (rc == AVERROR_EOF) break;
        if (rc < 0) break;  // a damaged tail: keep what was read, decoding decides the rest
        if (pkt->stream_index == vx.stream) {
            VideoPacket p;
            p.pts = pkt->pts;
            p.key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
            p.discard = (pkt->flags & AV_PKT_FLAG_DISCARD) != 0;
            p.pos = pkt->pos;
            if (p.pts == AV_NOPTS_VALUE) vx.all_pts = false;
            else if (p.key) {
                keys.push_back({p.pts, p.pos});
                if (h264 && h264_idr(pkt->data, pkt->size, length_size)) vx.idr_pts.push_back(p.pts);
            }
            if (av1 && p.key && pkt->data) note_grain(av1_film_grain(pkt->data, static_cast<size_t>(pkt->size)));
            vx.packets.push_back(p);
        }
        av_packet_unref(pkt.get());
    }
    const std::string demuxer = fmt->iformat && fmt->iformat->name ? fmt->iformat->name : "";
    vx.indexed_seek = demuxer.find("mp4") != std::string::npos || demuxer.find("matroska") != std::string::npos;
    // MPEG-TS: a keyframe is found by its byte position, where its timestamps say which one it
    // is: they must rise in file order (a joined or wrapped file does not qualify).
    vx.byte_seek = demuxer == "mpegts" && vx.all_pts && !keys.empty();
    for (size_t i = 0; i < keys.size() && vx.byte_seek; ++i)
        vx.byte_seek = keys[i].second >= 0 && (i == 0 || keys[i].first > keys[i - 1].first);
    std::sort(keys.begin(), keys.end());
    std::sort(vx.idr_pts.begin(), vx.idr_pts.end());
    for (const auto& [pts, pos] : keys) {
        vx.key_pts.push_back(pts);
        vx.key_pos.push_back(pos);
    }
    info.frame_count = static_cast<int64_t>(vx.packets.size());

    info.avg_fps = rational(st->avg_frame_rate);
    if (info.avg_fps <= 0) info.avg_fps = rational(st->r_frame_rate);
    if (info.avg_fps <= 0 && info.duration > 0) info.avg_fps = info.frame_count / info.duration;
    if (info.frame_count == 0) fail("'", path, "' has a video stream with no frames");
    // A raw stream (.h264, .hevc) has no duration (ffprobe says N/A, and the official script
    // fails): its frames at its rate, rather than 0, which put every answer at 00:00:00.
    if (info.duration <= 0 && info.avg_fps > 0) info.duration = info.frame_count / info.avg_fps;
    return vx;
}

bool VideoIndex::idr_key(int64_t key) const { return std::binary_search(idr_pts.begin(), idr_pts.end(), key); }

bool VideoIndex::seek_to_key(AVFormatContext* fmt, int64_t key) const {
    if (indexed_seek) return av_seek_frame(fmt, stream, key, AVSEEK_FLAG_BACKWARD) >= 0;
    const auto at = std::lower_bound(key_pts.begin(), key_pts.end(), key);
    if (!byte_seek || at == key_pts.end() || *at != key) return false;
    return av_seek_frame(fmt, -1, key_pos[static_cast<size_t>(at - key_pts.begin())], AVSEEK_FLAG_BYTE) >= 0;
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
