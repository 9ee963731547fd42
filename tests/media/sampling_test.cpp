// Frame numbering and sampling as decord does it, on streams with B-frames, variable
// frame rate and non-integer rates: the sampled frames are exactly the CLI's decoded
// frames at those indices (so skipping unsampled non-reference frames changes nothing).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "media/ffmpeg_util.h"
#include "media/media.h"
#include "media/media_test_util.h"
#include "media/video_index.h"

namespace vidi::media {
namespace {

TEST(Sampling, StrideIsRoundedFrameRate) {
    VideoInfo info;
    info.frame_count = 360;
    info.avg_fps = 30000.0 / 1001;
    EXPECT_EQ(sampled_frame_indices(info), (std::vector<int64_t>{0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330}));
    info.frame_count = 7;
    info.avg_fps = 2.5;  // Python round(): half to even
    EXPECT_EQ(sampled_frame_indices(info), (std::vector<int64_t>{0, 2, 4, 6}));
    info.avg_fps = 3.5;
    EXPECT_EQ(sampled_frame_indices(info), (std::vector<int64_t>{0, 4}));
    info.avg_fps = 0.2;  // slower than 1 fps: every frame
    EXPECT_EQ(sampled_frame_indices(info).size(), 7u);
    info.frame_count = 0;
    EXPECT_TRUE(sampled_frame_indices(info).empty());
}

// Decodes every frame with the CLI (timestamps passed through, no duplication) and
// compares the sampled ones with ours, byte for byte.
void expect_sampled_frames_match_cli(const std::string& video) {
    test::TempDir tmp("cli");
    test::ffmpeg_cli("-i " + video + " -fps_mode passthrough -f rawvideo -pix_fmt rgb24 " + tmp.file("all.rgb"));
    const std::vector<uint8_t> all = test::read_bytes(tmp.file("all.rgb"));
    FrameStream stream(video, 32);
    const VideoInfo& info = stream.info();
    const size_t frame_bytes = static_cast<size_t>(info.width) * info.height * 3;
    ASSERT_EQ(all.size(), frame_bytes * info.frame_count) << video;
    const std::vector<int64_t> idx = sampled_frame_indices(info);
    ASSERT_EQ(stream.total_frames(), static_cast<int64_t>(idx.size()));
    Tensor rgb;
    int64_t p = 0;
    while (stream.next_rgb(rgb, p)) {
        ASSERT_EQ(rgb.nbytes(), frame_bytes);
        EXPECT_EQ(std::memcmp(rgb.data<uint8_t>(), all.data() + frame_bytes * idx[p], frame_bytes), 0)
            << video << ": sampled frame " << p << " (index " << idx[p] << ")";
    }
    EXPECT_EQ(p + 1, stream.total_frames());
}

TEST(Sampling, BFramePyramidH264) {
    test::TempDir tmp("bf");
    const std::string f = tmp.file("bframes.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=192x108:r=25:d=6 -c:v libx264 -bf 3 -b_strategy 2 -x264-params b-pyramid=normal -g 40 " + f);
    EXPECT_EQ(probe(f).frame_count, 150);
    expect_sampled_frames_match_cli(f);
}

// Each sampled frame against the frame with its timestamp in the CLI's decode of the whole
// file from the start (where decord's numbering and the CLI's output order part, after an edit
// list's lead-in, the timestamp still names the picture).
void expect_sampled_frames_match_cli_by_timestamp(const std::string& video) {
    test::TempDir tmp("cli-pts");
    ff::FormatPtr fmt = ff::open_input(video);
    const VideoIndex vx = index_video(fmt.get(), video);
    ASSERT_TRUE(vx.all_pts) << video;
    const std::vector<DecordPicture> pictures = decord_pictures(vx.packets, sampled_frame_indices(vx.info));
    // One CLI run: the frames with those timestamps, in display order.
    std::vector<int64_t> shown;
    for (const DecordPicture& pic : pictures) shown.push_back(pic.pts);
    std::sort(shown.begin(), shown.end());
    shown.erase(std::unique(shown.begin(), shown.end()), shown.end());
    std::string select;
    for (int64_t pts : shown) select += (select.empty() ? "" : "+") + std::string("eq(pts\\,") + std::to_string(pts) + ")";
    const std::string out = tmp.file("sampled.rgb");
    test::ffmpeg_cli("-copyts -i " + video + " -vf 'select=" + select + "' -fps_mode passthrough -f rawvideo -pix_fmt rgb24 " +
                     out);
    const std::vector<uint8_t> cli = test::read_bytes(out);
    FrameStream stream(video, 32);
    const size_t frame_bytes = size_t(stream.info().width) * stream.info().height * 3;
    ASSERT_EQ(cli.size(), frame_bytes * shown.size()) << video;
    Tensor rgb;
    int64_t p = 0;
    while (stream.next_rgb(rgb, p)) {
        const int64_t pts = pictures.at(static_cast<size_t>(p)).pts;
        const size_t at = static_cast<size_t>(std::lower_bound(shown.begin(), shown.end(), pts) - shown.begin());
        ASSERT_EQ(rgb.nbytes(), frame_bytes);
        EXPECT_EQ(std::memcmp(rgb.data<uint8_t>(), cli.data() + at * frame_bytes, frame_bytes), 0)
            << video << ": sampled frame " << p << " (pts " << pts << ")";
    }
    EXPECT_EQ(p + 1, static_cast<int64_t>(pictures.size()));
}

// Where decord seeks to a later keyframe the decoder restarts there too, passing over the
// packets before it: with keyframes every 0.5-1.5 s most of the file is never decoded. The
// frames are still those of a decode from the start, in closed GOPs and in open ones (x264's
// open-gop in Matroska, HEVC's CRA keyframes: their leading pictures, which refer to the GOP
// before, show before the keyframe, and decord never returns them after its seek), in MP4,
// Matroska and MPEG-TS.
TEST(Sampling, DecodingRestartsWhereDecordSeeks) {
    test::TempDir tmp("gops");
    struct Case {
        const char* name;
        const char* args;
        int64_t most_decoded;  // of 600 frames, 20 sampled
    };
    // A decode from the start, skipping non-reference frames, produces 240-400 of these
    // streams' frames (g30 324, g15 398, g45 317, open 311, HEVC 241). Restarting, each sampled
    // frame costs what lies between decord's keyframe and it (20, 20, 169, 180 and 57 here).
    const Case cases[] = {
        {"g30.mp4", "-c:v libx264 -preset veryfast -g 30 -bf 3", 60},  // a keyframe on every sampled frame
        {"g15.mp4", "-c:v libx264 -preset veryfast -g 15 -bf 2", 60},  // broadcast-like: the same
        {"g45.mp4", "-c:v libx264 -preset veryfast -g 45 -bf 3 -x264-params b-pyramid=normal", 250},
        {"open.mkv", "-c:v libx264 -preset veryfast -g 40 -x264-params open-gop=1", 250},
        {"hevc.mp4", "-c:v libx265 -preset veryfast -g 30 -tag:v hvc1 -x265-params log-level=error", 120},
        // Two temporal sub-layers (x265 puts its unreferenced B-frames in the upper one, as
        // TSA_N): only those may be skipped (media/hevc_sublayers.h).
        {"hevc_layers.mp4", "-c:v libx265 -preset veryfast -g 30 -tag:v hvc1 -x265-params log-level=error:temporal-layers=1", 120},
        // MPEG-TS: no index; its keyframes are sought by their byte positions.
        {"g30.ts", "-c:v libx264 -preset veryfast -g 30 -bf 3", 60},
        {"g45.ts", "-c:v libx264 -preset veryfast -g 45 -bf 3 -x264-params b-pyramid=normal", 250},
        {"hevc.ts", "-c:v libx265 -preset veryfast -g 30 -x265-params log-level=error", 120},
        {"hevc_layers.ts", "-c:v libx265 -preset veryfast -g 30 -x265-params log-level=error:temporal-layers=1", 120},
        {"wrapped.ts", "-c:v libx264 -preset veryfast -g 30 -bf 3 -output_ts_offset 95435", 60},  // 33-bit wrap at 7 s
        {"interlaced.ts", "-c:v libx264 -preset veryfast -g 15 -bf 2 -flags +ildct+ilme -x264-params tff=1", 60},  // broadcast
    };
    for (const Case& c : cases) {
        const std::string f = tmp.file(c.name);
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=128x72:r=30:d=20 " + std::string(c.args) + " " + f);
        expect_sampled_frames_match_cli_by_timestamp(f);
        for (int lanes : {1, 2}) {
            FrameStream stream(f, 32, 4, lanes);
            Tensor rgb;
            std::vector<int64_t> positions;
            while (stream.next_frames(rgb, positions)) {
            }
            EXPECT_LE(stream.decoded_frames(), c.most_decoded) << c.name << ", lanes " << lanes;
            EXPECT_GE(stream.decoded_frames(), 20) << c.name << ", lanes " << lanes;
        }
    }
}

struct VfrCase {
    const char* ext;
    double avg_fps;                // what the container reports
    std::vector<int64_t> sampled;  // decord's indices: stride round(avg_fps), frames by timestamp
};
class VariableFrameRate : public ::testing::TestWithParam<VfrCase> {};

TEST_P(VariableFrameRate, StrideFromTheAverageRateFramesByTimestamp) {
    // 30 frames at 30 fps, then 40 frames at 10 fps: 70 packets. MP4 reports 70 frames over
    // its 4.8 s (175/12 fps, stride 15); Matroska the 30 fps it guesses (stride 30).
    const VfrCase& c = GetParam();
    test::TempDir tmp("vfr");
    const std::string f = tmp.file(std::string("vfr.") + c.ext);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=128x96:r=30 -frames:v 70 -vf \"setpts='if(lt(N,30),N/30,1+(N-30)/10)/TB'\" "
                     "-fps_mode passthrough -c:v libx264 -bf 2 " + f);
    const VideoInfo info = probe(f);
    EXPECT_EQ(info.frame_count, 70);
    EXPECT_NEAR(info.avg_fps, c.avg_fps, 1e-9);
    EXPECT_EQ(sampled_frame_indices(info), c.sampled);
    expect_sampled_frames_match_cli(f);
}

INSTANTIATE_TEST_SUITE_P(Containers, VariableFrameRate,
                         ::testing::Values(VfrCase{"mkv", 30.0, {0, 30, 60}},
                                           VfrCase{"mp4", 175.0 / 12, {0, 15, 30, 45, 60}}),
                         [](const auto& info) { return std::string(info.param.ext); });

TEST(Sampling, Vp9InWebm) {
    test::TempDir tmp("vp9");
    const std::string f = tmp.file("clip.webm");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x90:r=12:d=3 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 " + f);
    expect_sampled_frames_match_cli(f);
}

}  // namespace
}  // namespace vidi::media
