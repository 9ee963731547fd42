// Clip export by stream copy: clips start at the keyframe at or before the asked start,
// end at the asked end, keep the source's packets byte for byte, and fail cleanly.
#include "media/clip_export.h"

#include <gtest/gtest.h>

extern "C" {
#include <libavformat/avformat.h>
}

#include <algorithm>
#include <filesystem>

#include "media/media_test_util.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace vidi::test {
namespace {

struct Packets {
    double duration = 0;
    int streams = 0;
    AVCodecID video_codec = AV_CODEC_ID_NONE;
    int width = 0, height = 0;
    std::vector<std::string> video;  // payloads in decode order
    std::vector<double> video_pts;   // seconds
};

Packets read_packets(const std::string& path) {
    Packets p;
    AVFormatContext* fmt = nullptr;
    EXPECT_EQ(avformat_open_input(&fmt, path.c_str(), nullptr, nullptr), 0) << path;
    if (!fmt) return p;
    EXPECT_GE(avformat_find_stream_info(fmt, nullptr), 0);
    p.duration = fmt->duration / double(AV_TIME_BASE);
    p.streams = static_cast<int>(fmt->nb_streams);
    int v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    EXPECT_GE(v, 0);
    p.video_codec = fmt->streams[v]->codecpar->codec_id;
    p.width = fmt->streams[v]->codecpar->width;
    p.height = fmt->streams[v]->codecpar->height;
    AVPacket* pkt = av_packet_alloc();
    while (av_read_frame(fmt, pkt) >= 0) {
        if (pkt->stream_index == v) {
            p.video.emplace_back(reinterpret_cast<const char*>(pkt->data), pkt->size);
            p.video_pts.push_back(pkt->pts * av_q2d(fmt->streams[v]->time_base));
        }
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    return p;
}

const double kSecondKeyframe = 8.341667;  // synth.mp4: keyframes at 0 and 8.34 s

size_t shown_between(const Packets& p, double from, double to) {
    return std::count_if(p.video_pts.begin(), p.video_pts.end(),
                         [&](double t) { return t >= from - 1e-6 && t < to - 1e-6; });
}

// Every frame shown in [from, to) is in the clip; extra packets are only the few
// references that B-frames before `to` need, and the clip lasts about to - from.
void expect_covers(const Packets& src, const Packets& clip, double from, double to) {
    const size_t want = shown_between(src, from, to);
    EXPECT_GE(clip.video.size(), want);
    EXPECT_LE(clip.video.size(), want + 3);
    EXPECT_GE(clip.duration, to - from - 0.05);
    EXPECT_LE(clip.duration, to - from + 0.25);
}

TEST(ClipExport, StartsAtThePrecedingKeyframeAndCopiesPackets) {
    TempDir tmp("clip");
    const std::string src = golden_path("synth.mp4");
    auto clip = media::export_clip(src, {9.0, 10.5}, tmp.file("a.mp4"));
    EXPECT_NEAR(clip.start, kSecondKeyframe, 1e-4);
    EXPECT_DOUBLE_EQ(clip.end, 10.5);

    Packets in = read_packets(src), out = read_packets(clip.path);
    EXPECT_EQ(out.streams, 2);  // video and audio
    EXPECT_EQ(out.video_codec, in.video_codec);
    EXPECT_EQ(out.width, in.width);
    EXPECT_EQ(out.height, in.height);
    expect_covers(in, out, kSecondKeyframe, 10.5);
    // No re-encode: the clip's video packets are the source's, from the keyframe on.
    size_t first = 0;
    while (first < in.video.size() && std::abs(in.video_pts[first] - kSecondKeyframe) > 1e-3) ++first;
    ASSERT_LT(first, in.video.size());
    ASSERT_GE(out.video.size(), 60u);  // ~2.16 s at 29.97 fps
    ASSERT_LE(first + out.video.size(), in.video.size());
    for (size_t i = 0; i < out.video.size(); ++i) ASSERT_EQ(out.video[i], in.video[first + i]) << "packet " << i;
}

TEST(ClipExport, StartOnAKeyframeIsKept) {
    TempDir tmp("clip");
    auto clip = media::export_clip(golden_path("synth.mp4"), {0.0, 2.0}, tmp.file("b.mkv"));
    EXPECT_NEAR(clip.start, 0.0, 1e-6);
    expect_covers(read_packets(golden_path("synth.mp4")), read_packets(clip.path), 0.0, 2.0);
}

TEST(ClipExport, ExportClipsWritesOneNamedFilePerRange) {
    TempDir tmp("clip");
    const std::string dir = tmp.file("clips/nested");
    auto paths = media::export_clips(golden_path("synth.mp4"), {{1.0, 2.5}, {9.0, 11.0}}, dir);
    ASSERT_EQ(paths.size(), 2u);
    EXPECT_EQ(fs::path(paths[0]).filename(), "synth_1_00-00-01.00-00-00-02.50.mp4");
    EXPECT_EQ(fs::path(paths[1]).filename(), "synth_2_00-00-09.00-00-00-11.00.mp4");
    for (auto& p : paths) EXPECT_GT(fs::file_size(p), 1000u) << p;
    const Packets src = read_packets(golden_path("synth.mp4"));
    expect_covers(src, read_packets(paths[0]), 0.0, 2.5);  // from the keyframe at 0
    expect_covers(src, read_packets(paths[1]), kSecondKeyframe, 11.0);
}

TEST(ClipExport, EndPastTheVideoIsClamped) {
    TempDir tmp("clip");
    auto clip = media::export_clip(golden_path("synth.mp4"), {10.0, 99.0}, tmp.file("c.mp4"));
    EXPECT_NEAR(clip.end, 12.012, 1e-3);
    expect_covers(read_packets(golden_path("synth.mp4")), read_packets(clip.path), kSecondKeyframe, 12.012);
}

// Answers count from a file's start, its timestamps from its start_time (broadcast TS, a file
// cut with an offset): the clip of 2-4 s was searched for at 2-4 s of the timestamps, before
// the first packet, and refused ("no packets fall in"), or cut too early.
TEST(ClipExport, RangesCountFromTheFilesStartWhateverItsFirstTimestamp) {
    TempDir tmp("clip-offset");
    for (const char* ext : {".ts", ".mp4", ".mkv"}) {
        const std::string src = tmp.file(std::string("off") + ext);
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x120:r=30:d=6 -f lavfi -i sine=d=6 -c:v libx264 -g 30 "
                         "-bf 0 -c:a aac -output_ts_offset 10 " + src);
        const Packets in = read_packets(src);
        const double origin = *std::min_element(in.video_pts.begin(), in.video_pts.end());  // the first frame's
        ASSERT_GT(origin, 9.9) << ext;

        const auto clip = media::export_clip(src, {2.0, 4.0}, tmp.file(std::string("clip") + ext));
        EXPECT_NEAR(clip.start, 2.0, 0.02) << ext;  // a keyframe each second
        EXPECT_NEAR(clip.end, 4.0, 1e-9) << ext;
        const Packets out = read_packets(clip.path);
        expect_covers(in, out, origin + clip.start, origin + 4.0);
        // The clip's first packet is the source's shown at 2 s past its start.
        size_t first = 0;
        while (first < in.video.size() && std::abs(in.video_pts[first] - origin - clip.start) > 1e-3) ++first;
        ASSERT_LT(first, in.video.size()) << ext;
        ASSERT_FALSE(out.video.empty()) << ext;
        EXPECT_EQ(out.video[0], in.video[first]) << ext;
    }
}

TEST(ClipExport, BadInputsAreErrorsAndLeaveNoFile) {
    TempDir tmp("clip");
    const std::string src = golden_path("synth.mp4");
    auto expect_error = [&](const std::string& video, TimeRange r, const std::string& out, const std::string& words) {
        try {
            media::export_clip(video, r, out);
            ADD_FAILURE() << "no error for " << video << " " << r.start << "-" << r.end;
        } catch (const vidi::Error& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
        EXPECT_FALSE(fs::exists(out)) << out;
    };
    expect_error(src, {5, 5}, tmp.file("e1.mp4"), "bad range");
    expect_error(src, {-1, 2}, tmp.file("e2.mp4"), "bad range");
    expect_error(src, {30, 40}, tmp.file("e3.mp4"), "after the end");
    expect_error(tmp.file("missing.mp4"), {0, 1}, tmp.file("e4.mp4"), "missing.mp4");
    expect_error(src, {0, 1}, tmp.file("e5.unknownext"), "e5.unknownext");
    expect_error(src, {0, 1}, tmp.file("no/such/dir/e6.mp4"), "cannot write");
    EXPECT_THROW(media::export_clips(src, {{0, 1}}, "/proc/forbidden/clips"), vidi::Error);
}

// Found by probing the server: an upload named "a.m3u8" made its clips HLS playlists whose
// segment files (hundreds a clip) nothing removed; DASH (.mpd) writes segments under fixed
// names. Clips are single files: other extensions become .mkv, and export_clip refuses them.
TEST(ClipExport, ClipsAreSingleFilesWhateverTheSourceIsNamed) {
    EXPECT_EQ(media::clip_extension("/v/a.MP4"), ".mp4");
    EXPECT_EQ(media::clip_extension("/v/a.webm"), ".webm");
    EXPECT_EQ(media::clip_extension("/v/a.m3u8"), ".mkv");
    EXPECT_EQ(media::clip_extension("/v/a.mpd"), ".mkv");
    EXPECT_EQ(media::clip_extension("/v/a.gif"), ".mkv");
    EXPECT_EQ(media::clip_extension("/v/noext"), ".mkv");
    TempDir tmp("clip-hls");
    for (const char* name : {"c.m3u8", "c.mpd"}) {
        EXPECT_THROW(media::export_clip(golden_path("synth.mp4"), {0, 3}, tmp.file(name)), vidi::Error) << name;
        EXPECT_TRUE(fs::is_empty(tmp.path())) << name;  // no playlist, no segment
    }
}

}  // namespace
}  // namespace vidi::test
