// Frame numbering and sampling as decord does it, on streams with B-frames, variable
// frame rate and non-integer rates: the sampled frames are exactly the CLI's decoded
// frames at those indices (so skipping unsampled non-reference frames changes nothing).
#include <gtest/gtest.h>

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

// Each sampled frame against the CLI decoding the file from the keyframe decord decoded it
// from (a fresh decoder after an input seek there, which is what decord's flush and seek
// give), picked by its timestamp; from the start where decord had not sought yet.
void expect_sampled_frames_match_cli_from_their_keyframes(const std::string& video) {
    test::TempDir tmp("cli-keys");
    ff::FormatPtr fmt = ff::open_input(video);
    const VideoIndex vx = index_video(fmt.get(), video);
    ASSERT_TRUE(vx.all_pts && vx.indexed_seek) << video;
    const AVRational tb = fmt->streams[vx.stream]->time_base;
    const double start = fmt->start_time == AV_NOPTS_VALUE ? 0.0 : fmt->start_time / double(AV_TIME_BASE);
    const double frame_s = 1.0 / vx.info.avg_fps;
    const std::vector<DecordPicture> pictures = decord_pictures(vx.packets, sampled_frame_indices(vx.info));
    FrameStream stream(video, 32);
    Tensor rgb;
    int64_t p = 0;
    int from_keyframes = 0;
    while (stream.next_rgb(rgb, p)) {
        const DecordPicture& pic = pictures.at(static_cast<size_t>(p));
        std::string seek;
        if (pic.origin != AV_NOPTS_VALUE) {  // half a frame past it: the seek lands on it, nothing is trimmed
            char s[64];
            std::snprintf(s, sizeof s, "-noaccurate_seek -ss %.6f ", pic.origin * av_q2d(tb) - start + frame_s / 2);
            seek = s;
            ++from_keyframes;
        }
        const std::string out = tmp.file("f" + std::to_string(p) + ".rgb");
        test::ffmpeg_cli(seek + "-copyts -i " + video + " -vf 'select=eq(pts\\," + std::to_string(pic.pts) +
                         ")' -frames:v 1 -f rawvideo -pix_fmt rgb24 " + out);
        const std::vector<uint8_t> cli = test::read_bytes(out);
        ASSERT_EQ(cli.size(), rgb.nbytes()) << video << ": sampled frame " << p;
        EXPECT_EQ(std::memcmp(rgb.data<uint8_t>(), cli.data(), cli.size()), 0)
            << video << ": sampled frame " << p << " (pts " << pic.pts << ", decoded from " << pic.origin << ")";
    }
    EXPECT_EQ(p + 1, static_cast<int64_t>(pictures.size()));
    EXPECT_GT(from_keyframes, 0) << video << ": decord never sought";
}

// Where decord seeks to a later keyframe the decoder restarts there too, passing over the
// packets before it: with keyframes every 0.5-1.5 s most of the file is never decoded. In a
// closed GOP the frames are those of a decode from the start (the CLI decodes every frame);
// in an open GOP, whose leading pictures refer to the GOP before, they are those of a decode
// from the keyframe, as decord's are.
TEST(Sampling, DecodingRestartsWhereDecordSeeks) {
    test::TempDir tmp("gops");
    struct Case {
        const char* name;
        const char* args;
        bool open_gop;
    };
    const Case cases[] = {
        {"g30.mp4", "-c:v libx264 -preset veryfast -g 30 -bf 3", false},  // a keyframe on every sampled frame
        {"g15.mp4", "-c:v libx264 -preset veryfast -g 15 -bf 2", false},  // broadcast-like
        {"g45.mp4", "-c:v libx264 -preset veryfast -g 45 -bf 3 -x264-params b-pyramid=normal", false},
        {"open.mkv", "-c:v libx264 -preset veryfast -g 40 -x264-params open-gop=1", true},
        {"hevc.mp4", "-c:v libx265 -preset veryfast -g 30 -tag:v hvc1 -x265-params log-level=error", true},  // CRA
    };
    for (const Case& c : cases) {
        const std::string f = tmp.file(c.name);
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=128x72:r=30:d=20 " + std::string(c.args) + " " + f);
        if (c.open_gop)
            expect_sampled_frames_match_cli_from_their_keyframes(f);
        else
            expect_sampled_frames_match_cli(f);
        for (int lanes : {1, 2}) {
            FrameStream stream(f, 32, 4, lanes);
            Tensor rgb;
            std::vector<int64_t> positions;
            while (stream.next_frames(rgb, positions)) {
            }
            // 600 frames, 20 sampled: at most what lies between a keyframe and a sampled frame
            // (under 45 each), far from the 300 or more reference frames a decode from the start needs.
            EXPECT_LT(stream.decoded_frames(), 20 * 45 / 2) << c.name << ", lanes " << lanes;
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
