#include "media/clip_export.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>

#include "io/files.h"
#include "media/ffmpeg_util.h"
#include "vidi/error.h"

namespace fs = std::filesystem;

namespace vidi {
namespace {

namespace ff = media::ff;

// Containers a clip is written in: one file each. Muxers such as HLS (.m3u8) and DASH (.mpd)
// write segment files beside the named one (under fixed names, for DASH), which nothing
// removes; a client that named its upload "a.m3u8" filled the server's disk with them.
const char* const kClipContainers[] = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ogv", ".avi", ".ts", ".flv"};

std::string lower_extension(const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return ext;
}

bool single_file_container(const std::string& ext) {
    return std::find(std::begin(kClipContainers), std::end(kClipContainers), ext) != std::end(kClipContainers);
}

// Owns the output context and its file; the file is removed if never finished.
class Output {
public:
    Output(const std::string& path) : path_(path) {
        VIDI_CHECK(single_file_container(lower_extension(path)), "clip export: ", path,
                   ": clips are written as .mp4, .m4v, .mov, .mkv, .webm, .ogv, .avi, .ts or .flv");
        int rc = avformat_alloc_output_context2(&ctx_, nullptr, nullptr, path.c_str());
        VIDI_CHECK(rc >= 0 && ctx_, "clip export: no container for the extension of ", path, " (",
                   ff::error_string(rc), ")");
    }
    ~Output() {
        if (!ctx_) return;
        if (opened_) avio_closep(&ctx_->pb);
        avformat_free_context(ctx_);
        if (!finished_) {
            std::error_code ec;
            fs::remove(path_, ec);
        }
    }
    AVFormatContext* get() const { return ctx_; }
    void open() {
        if (!(ctx_->oformat->flags & AVFMT_NOFILE)) {
            int rc = avio_open(&ctx_->pb, path_.c_str(), AVIO_FLAG_WRITE);
            VIDI_CHECK(rc >= 0, "clip export: cannot write ", path_, ": ", ff::error_string(rc));
            opened_ = true;
        }
    }
    void finish() { finished_ = true; }

private:
    std::string path_;
    AVFormatContext* ctx_ = nullptr;
    bool opened_ = false;
    bool finished_ = false;
};

double duration_seconds(const AVFormatContext* in) {
    if (in->duration > 0) return in->duration / static_cast<double>(AV_TIME_BASE);
    double d = 0;
    for (unsigned i = 0; i < in->nb_streams; ++i) {
        const AVStream* s = in->streams[i];
        if (s->duration > 0) d = std::max(d, s->duration * av_q2d(s->time_base));
    }
    return d;
}

double packet_seconds(const AVPacket* p, const AVStream* s) {
    int64_t t = p->dts != AV_NOPTS_VALUE ? p->dts : p->pts;
    return t == AV_NOPTS_VALUE ? std::numeric_limits<double>::quiet_NaN() : t * av_q2d(s->time_base);
}

// Answers count from the first video frame (decord's frame 0); timestamps from wherever the
// file starts them (broadcast TS, a phone file cut with an offset: 10 s, 1000 s). The seek and
// the cut-offs add this back.
double timeline_origin(AVFormatContext* fmt) {
    const int v = ff::find_video_stream(fmt);
    if (v >= 0 && fmt->streams[v]->start_time != AV_NOPTS_VALUE)
        return fmt->streams[v]->start_time * av_q2d(fmt->streams[v]->time_base);
    return fmt->start_time != AV_NOPTS_VALUE ? fmt->start_time / double(AV_TIME_BASE) : 0.0;
}

std::string file_timestamp(double seconds) {
    long long cs = std::llround(seconds * 100);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02lld-%02lld-%02lld.%02lld", cs / 360000, cs / 6000 % 60, cs / 100 % 60,
                  cs % 100);
    return buf;
}

}  // namespace

ExportedClip export_clip(const std::string& video, const TimeRange& range, const std::string& out_path,
                         MediaInputs inputs) {
    VIDI_CHECK(std::isfinite(range.start) && std::isfinite(range.end) && range.start >= 0 && range.end > range.start,
               "clip export: bad range ", range.start, "-", range.end, " s (need 0 <= start < end)");
    ff::FormatPtr in = ff::open_input(video, inputs);
    const double duration = duration_seconds(in.get());
    VIDI_CHECK(duration <= 0 || range.start < duration, "clip export: the range starts at ", range.start,
               " s, after the end of ", video, " (", duration, " s)");
    const double origin = timeline_origin(in.get());
    const double end = origin + (duration > 0 ? std::min(range.end, duration) : range.end);

    // Map the audio and video streams; everything else is dropped.
    Output out(out_path);
    std::vector<int> out_index(in->nb_streams, -1);
    const int video_stream = ff::find_video_stream(in.get());  // the one timeline_origin reads
    for (unsigned i = 0; i < in->nb_streams; ++i) {
        const AVCodecParameters* par = in->streams[i]->codecpar;
        if (par->codec_type != AVMEDIA_TYPE_VIDEO && par->codec_type != AVMEDIA_TYPE_AUDIO) continue;
        if (in->streams[i]->disposition & AV_DISPOSITION_ATTACHED_PIC) continue;
        AVStream* os = avformat_new_stream(out.get(), nullptr);
        VIDI_CHECK(os, "clip export: out of memory");
        int rc = avcodec_parameters_copy(os->codecpar, par);
        VIDI_CHECK(rc >= 0, "clip export: cannot copy stream parameters: ", ff::error_string(rc));
        os->codecpar->codec_tag = 0;  // let the output container pick its own tag
        os->time_base = in->streams[i]->time_base;
        out_index[i] = os->index;
    }
    VIDI_CHECK(out.get()->nb_streams > 0, "clip export: ", video, " has no audio or video stream");

    // Seek backward: demuxing resumes at the keyframe at or before the start.
    const int64_t seek_to = static_cast<int64_t>((origin + range.start) * AV_TIME_BASE);
    int rc = avformat_seek_file(in.get(), -1, std::numeric_limits<int64_t>::min(), seek_to, seek_to, 0);
    if (rc < 0) rc = av_seek_frame(in.get(), -1, seek_to, AVSEEK_FLAG_BACKWARD);
    VIDI_CHECK(rc >= 0, "clip export: cannot seek in ", video, ": ", ff::error_string(rc));

    out.open();
    out.get()->avoid_negative_ts = AVFMT_AVOID_NEG_TS_MAKE_ZERO;
    rc = avformat_write_header(out.get(), nullptr);
    VIDI_CHECK(rc >= 0, "clip export: cannot write the header of ", out_path, ": ", ff::error_string(rc));

    ff::PacketPtr pkt = ff::make_packet();
    double cut = std::numeric_limits<double>::quiet_NaN();  // the keyframe the clip starts at
    std::vector<bool> done(in->nb_streams, false);
    int64_t written = 0;
    auto write = [&](AVPacket* p) {
        const AVStream* is = in->streams[p->stream_index];
        AVStream* os = out.get()->streams[out_index[p->stream_index]];
        const int64_t shift = static_cast<int64_t>(std::llround(cut / av_q2d(is->time_base)));
        if (p->pts != AV_NOPTS_VALUE) p->pts -= shift;
        if (p->dts != AV_NOPTS_VALUE) p->dts -= shift;
        av_packet_rescale_ts(p, is->time_base, os->time_base);
        p->stream_index = os->index;
        p->pos = -1;
        int wrc = av_interleaved_write_frame(out.get(), p);  // takes the packet's data
        VIDI_CHECK(wrc >= 0, "clip export: cannot write to ", out_path, ": ", ff::error_string(wrc));
        ++written;
    };
    // Video packets shown at or after the end are kept back: they are written only if a
    // later packet (in decode order) is shown before the end and may reference them.
    std::vector<ff::PacketPtr> held;
    while ((rc = av_read_frame(in.get(), pkt.get())) >= 0) {
        const int si = pkt->stream_index;
        const AVStream* is = in->streams[si];
        if (out_index[si] < 0 || done[si]) {
            av_packet_unref(pkt.get());
            continue;
        }
        const double t = packet_seconds(pkt.get(), is);
        const double pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts * av_q2d(is->time_base) : t;
        if (std::isnan(cut)) {
            // The first video keyframe fixes the cut; without video, the first packet does.
            bool starts = video_stream < 0 || (si == video_stream && (pkt->flags & AV_PKT_FLAG_KEY));
            if (!starts) {
                av_packet_unref(pkt.get());
                continue;
            }
            cut = pts;
        }
        if (!std::isnan(t) && t >= end) {  // decode time past the end: nothing later is shown before it
            done[si] = true;
            av_packet_unref(pkt.get());
            bool all_done = true;
            for (size_t i = 0; i < done.size(); ++i) all_done &= out_index[i] < 0 || done[i];
            if (all_done) break;
            continue;
        }
        if (si != video_stream && pts < cut) {  // audio from before the keyframe
            av_packet_unref(pkt.get());
            continue;
        }
        if (si == video_stream && pts >= end) {
            held.push_back(ff::make_packet());
            av_packet_move_ref(held.back().get(), pkt.get());
            continue;
        }
        if (si == video_stream) {
            for (auto& h : held) write(h.get());
            held.clear();
        }
        write(pkt.get());
    }
    VIDI_CHECK(rc >= 0 || rc == AVERROR_EOF, "clip export: read error in ", video, ": ", ff::error_string(rc));
    VIDI_CHECK(written > 0, "clip export: no packets of ", video, " fall in ", range.start, "-", range.end, " s");
    rc = av_write_trailer(out.get());
    VIDI_CHECK(rc >= 0, "clip export: cannot finish ", out_path, ": ", ff::error_string(rc));
    out.finish();
    return {out_path, std::isnan(cut) ? range.start : cut - origin, end - origin};
}

std::string clip_extension(const std::string& video) {
    const std::string ext = lower_extension(video);
    return single_file_container(ext) ? ext : ".mkv";
}

void prepare_clip_dir(const std::string& dir) {
    VIDI_CHECK(!dir.empty(), "clip export: no directory given (an empty name)");
    std::error_code ec;
    fs::create_directories(dir, ec);
    VIDI_CHECK(!ec, "clip export: cannot create ", dir, ": ", ec.message());
    try {
        io::require_writable_dir(dir);
    } catch (const Error& e) {
        fail("clip export: ", e.what());
    }
}

std::vector<std::string> export_clips(const std::string& video, const std::vector<TimeRange>& ranges,
                                      const std::string& dir) {
    prepare_clip_dir(dir);
    const std::string stem = fs::path(video).stem().string();
    const std::string ext = clip_extension(video);
    std::vector<std::string> paths;
    for (size_t i = 0; i < ranges.size(); ++i) {
        const auto& r = ranges[i];
        std::string name = stem + "_" + std::to_string(i + 1) + "_" + file_timestamp(r.start) + "-" +
                           file_timestamp(r.end) + ext;
        paths.push_back(export_clip(video, r, (fs::path(dir) / name).string()).path);
    }
    return paths;
}

}  // namespace vidi
