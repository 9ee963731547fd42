// Upright frames (SPEC §2.2; docs/conformance.md, "rotation"): decord's rotation rule, and for
// each quarter turn a lossless file whose frames are turned by metadata (display matrix or
// legacy `rotate` tag) gives exactly the RGB, pixel values and visual tokens of the same
// pictures turned physically by the ffmpeg CLI's transpose filter.
#include <gtest/gtest.h>

extern "C" {
#include <libavutil/display.h>
}

#include <cstring>

#include "media/media.h"
#include "media/media_test_util.h"
#include "media/video_index.h"
#include "model/tiny_media_model.h"

namespace vidi::media {
namespace {

// av_display_rotation_set takes a clockwise angle; av_display_rotation_get returns the
// counter-clockwise one; decord turns frames clockwise by -get.
TEST(DecordRotation, DisplayMatrixQuarterTurns) {
    int32_t m[9];
    for (int cw : {0, 90, 180, 270}) {
        av_display_rotation_set(m, cw);
        EXPECT_EQ(decord_rotation(nullptr, m), cw) << cw;
    }
    av_display_rotation_set(m, 90);
    ASSERT_NEAR(av_display_rotation_get(m), -90, 1e-9);
    av_display_rotation_set(m, -90);
    EXPECT_EQ(decord_rotation(nullptr, m), 270);
    av_display_rotation_set(m, 45);  // not a quarter turn: decord leaves the frames as they are
    EXPECT_EQ(decord_rotation(nullptr, m), 0);
    EXPECT_EQ(decord_rotation(nullptr, nullptr), 0);
}

TEST(DecordRotation, MirroredMatricesCountOnlyTheirRotation) {
    int32_t m[9];
    av_display_rotation_set(m, 0);
    av_display_matrix_flip(m, 1, 0);  // mirrored left-right: reads as a half turn
    EXPECT_EQ(decord_rotation(nullptr, m), 180);
    av_display_rotation_set(m, 0);
    av_display_matrix_flip(m, 0, 1);  // mirrored top-bottom: reads as no turn
    EXPECT_EQ(decord_rotation(nullptr, m), 0);
}

TEST(DecordRotation, AnglesAreTruncatedToWholeDegrees) {
    // A quarter turn one 16.16 unit off: 89.9991 degrees truncates to 89 (no turn), 90.0009
    // to 90. Both are printed with "%g" first, as FFmpeg 4.1 writes the `rotate` tag.
    const int32_t below[9] = {1, 65536, 0, -65536, 1, 0, 0, 0, 1 << 30};
    const int32_t above[9] = {-1, 65536, 0, -65536, -1, 0, 0, 0, 1 << 30};
    ASSERT_NEAR(-av_display_rotation_get(below), 89.9991, 1e-4);
    ASSERT_NEAR(-av_display_rotation_get(above), 90.0009, 1e-4);
    EXPECT_EQ(decord_rotation(nullptr, below), 0);
    EXPECT_EQ(decord_rotation(nullptr, above), 90);
}

TEST(DecordRotation, TagComesFirst) {
    int32_t half[9];
    av_display_rotation_set(half, 180);
    EXPECT_EQ(decord_rotation("90", nullptr), 90);
    EXPECT_EQ(decord_rotation("90", half), 90);    // the tag wins over the matrix
    EXPECT_EQ(decord_rotation("0", half), 180);    // "0" means no tag
    EXPECT_EQ(decord_rotation("abc", half), 180);  // reads as 0: the matrix decides
    EXPECT_EQ(decord_rotation("-90", nullptr), 270);
    EXPECT_EQ(decord_rotation("450", nullptr), 90);
    EXPECT_EQ(decord_rotation("180.7", nullptr), 180);
    EXPECT_EQ(decord_rotation("89.9", nullptr), 0);
    EXPECT_EQ(decord_rotation("", nullptr), 0);
}

struct RotationCase {
    const char* name;
    const char* ext;
    const char* pix_fmt;
    const char* metadata;  // turns the copy by metadata only
    int rotation;          // decord's clockwise turn for it
    const char* physical;  // the CLI filter that turns the pictures themselves the same way
    bool cli_turns;        // the ffmpeg 5.1 CLI honours this metadata too
};

// `-metadata:s:v:0 rotate=R` makes ffmpeg 5.1 write an MP4 display matrix whose
// av_display_rotation_get is R, i.e. a clockwise turn of 360 - R. An upper-case ROTATE tag
// passes the CLI untouched into Matroska: only decord (case-insensitive lookup) reads it.
const RotationCase kCases[] = {
    {"matrix90", "mp4", "yuv420p", "-metadata:s:v:0 rotate=270", 90, "transpose=clock", true},
    {"matrix180", "mp4", "yuv420p", "-metadata:s:v:0 rotate=180", 180, "transpose=clock,transpose=clock", true},
    {"matrix270", "mp4", "yuv420p", "-metadata:s:v:0 rotate=90", 270, "transpose=cclock", true},
    // 10 bits take swscale's general path (chroma interpolated): the planes must turn before it.
    {"matrix90_10bit", "mp4", "yuv420p10le", "-metadata:s:v:0 rotate=270", 90, "transpose=clock", true},
    {"tag90", "mkv", "yuv420p", "-metadata:s:v:0 ROTATE=90", 90, "transpose=clock", false},
    {"tag180", "mkv", "yuv420p", "-metadata:s:v:0 ROTATE=180", 180, "transpose=clock,transpose=clock", false},
    {"tag270", "mkv", "yuv420p", "-metadata:s:v:0 ROTATE=-90", 270, "transpose=cclock", false},
};

class RotatedFile : public ::testing::TestWithParam<RotationCase> {
protected:
    static test::TinyMediaModel& tiny() {
        static test::TinyMediaModel model;
        return model;
    }
    struct Encoded {
        VideoInfo info;
        Tensor pixels;  // [F, 3, 384, 384]
        Tensor tokens;  // visual tokens of tiny-a
    };
    static Encoded encode(const std::string& video) {
        FrameStream stream(video, 384, 8);
        Encoded e;
        e.info = stream.info();
        std::vector<int64_t> pos;
        EXPECT_TRUE(stream.next(e.pixels, pos));
        EXPECT_EQ(static_cast<int64_t>(pos.size()), stream.total_frames());
        e.tokens = tiny().backend->to_host(tiny().encoder.image_tokens(e.pixels, pos, stream.total_frames()));
        return e;
    }
};

TEST_P(RotatedFile, EqualsThePicturesTurnedPhysically) {
    const RotationCase& c = GetParam();
    test::TempDir tmp("rot");
    const std::string lossless = std::string(" -c:v libx264 -preset ultrafast -qp 0 -pix_fmt ") + c.pix_fmt + " ";
    const std::string base = tmp.file(std::string("base.") + c.ext);
    const std::string meta = tmp.file(std::string("meta.") + c.ext);
    const std::string phys = tmp.file(std::string("phys.") + c.ext);
    // 96x64, 20 frames at 10 fps: frames 0 and 10 are sampled.
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=10:d=2" + lossless + base);
    test::ffmpeg_cli("-i " + base + " -c copy " + c.metadata + " " + meta);
    test::ffmpeg_cli("-i " + base + " -vf " + c.physical + lossless + phys);

    const VideoInfo info = probe(meta), upright = probe(phys), plain = probe(base);
    EXPECT_EQ(info.rotation, c.rotation);
    EXPECT_EQ(upright.rotation, 0);
    EXPECT_EQ(info.width, upright.width);
    EXPECT_EQ(info.height, upright.height);
    EXPECT_EQ(info.width, c.rotation == 180 ? 96 : 64);
    EXPECT_EQ(info.frame_count, 20);
    EXPECT_EQ(upright.frame_count, 20);
    EXPECT_DOUBLE_EQ(info.duration, plain.duration);

    const std::vector<Tensor> got = test::sampled_rgb(meta), want = test::sampled_rgb(phys);
    ASSERT_EQ(got.size(), 2u);
    ASSERT_EQ(want.size(), 2u);
    for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(test::bytes_differing(got[i], want[i]), 0u) << c.name << " sampled frame " << i;
    if (c.cli_turns) {  // and what the CLI makes of the metadata (transpose before the RGB conversion)
        const std::vector<uint8_t> cli = test::cli_rgb_frames(meta, "-sws_flags bilinear");
        for (size_t i = 0; i < got.size(); ++i)
            EXPECT_EQ(test::bytes_differing(got[i], test::rgb_frame(cli, 10 * static_cast<int64_t>(i), info.width,
                                                                    info.height)),
                      0u)
                << c.name << " sampled frame " << i << " vs the CLI";
    }

    const Encoded m = encode(meta), p = encode(phys), b = encode(base);
    EXPECT_EQ(test::bytes_differing(m.pixels, p.pixels), 0u) << c.name;
    EXPECT_EQ(test::bytes_differing(m.tokens, p.tokens), 0u) << c.name;
    // The sideways pictures give other tokens: the check above can fail.
    EXPECT_GT(test::max_abs_diff(m.tokens, b.tokens), 1e-3) << c.name;
}

INSTANTIATE_TEST_SUITE_P(Turns, RotatedFile, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace vidi::media
