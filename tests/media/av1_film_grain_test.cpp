// AV1 film grain keeps a stream off NVDEC: the grain is synthesised after decoding, a step the
// standard does not hold to bit-exact output, so NVDEC's grain need not be dav1d's. The flag is
// read from the sequence headers (av1C in MP4 and Matroska, the OBUs of a raw stream).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "media/av1_film_grain.h"
#include "media/media.h"
#include "media/media_test_util.h"
#include "media/nvdec.h"
#include "media/video_index.h"

namespace vidi::media {
namespace {

using testing::HasSubstr;

// av1C records libaom wrote for a 96x64 yuv420p stream, with and without film-grain-test=1:
// they differ in the one bit after color_config().
const std::vector<uint8_t> kAv1cGrain = {0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00,
                                         0x00, 0x03, 0x2d, 0xff, 0xcd, 0xaf, 0x90, 0x0c};
const std::vector<uint8_t> kAv1cNoGrain = {0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0a, 0x00, 0x00,
                                           0x00, 0x03, 0x2d, 0xff, 0xcd, 0xaf, 0x90, 0x04};

// The same with timing-info=model: timing info, a decoder model and its operating parameters.
const std::vector<uint8_t> kAv1cModelGrain = {0x81, 0x00, 0x0c, 0x00, 0x0a, 0x1d, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00,
                                              0x00, 0x00, 0x15, 0x78, 0x00, 0x00, 0x00, 0x0a, 0x53, 0x00, 0x00, 0x03,
                                              0x5f, 0x91, 0x5f, 0x90, 0xbb, 0x2d, 0xff, 0xcd, 0xaf, 0x90, 0x0c};

TEST(Av1FilmGrain, TheSequenceHeaderSaysWhetherFramesMayCarryGrain) {
    EXPECT_EQ(av1_film_grain(kAv1cGrain.data(), kAv1cGrain.size()), true);
    EXPECT_EQ(av1_film_grain(kAv1cNoGrain.data(), kAv1cNoGrain.size()), false);
    std::vector<uint8_t> model = kAv1cModelGrain;
    EXPECT_EQ(av1_film_grain(model.data(), model.size()), true);
    model.back() = 0x04;
    EXPECT_EQ(av1_film_grain(model.data(), model.size()), false);
    // The same OBU without the av1C header (a raw stream's temporal unit), after a temporal
    // delimiter OBU.
    std::vector<uint8_t> obus = {0x12, 0x00};
    obus.insert(obus.end(), kAv1cGrain.begin() + 4, kAv1cGrain.end());
    EXPECT_EQ(av1_film_grain(obus.data(), obus.size()), true);
    // A header cut short, an OBU longer than its bytes, the forbidden bit, nothing: not known.
    EXPECT_EQ(av1_film_grain(kAv1cGrain.data(), kAv1cGrain.size() - 1), std::nullopt);
    std::vector<uint8_t> longer = kAv1cGrain;
    longer[5] = 0x40;
    EXPECT_EQ(av1_film_grain(longer.data(), longer.size()), std::nullopt);
    const uint8_t forbidden[] = {0x8a, 0x01, 0x00};
    EXPECT_EQ(av1_film_grain(forbidden, sizeof forbidden), std::nullopt);
    EXPECT_EQ(av1_film_grain(nullptr, 0), std::nullopt);
    const uint8_t no_header[] = {0x12, 0x00, 0x32, 0x01, 0x00};  // a temporal delimiter, a frame OBU
    EXPECT_EQ(av1_film_grain(no_header, sizeof no_header), std::nullopt);
}

VideoIndex index_of(const std::string& path) {
    ff::FormatPtr fmt = ff::open_input(path);
    return index_video(fmt.get(), path);
}

TEST(Av1FilmGrain, FilesWithGrainStayOnTheCpuWhateverTheContainer) {
    test::TempDir dir("av1grain");
    const std::string source =
        "-f lavfi -i testsrc2=s=96x64:r=5:d=3 -c:v libaom-av1 -cpu-used 8 -g 5 -pix_fmt yuv420p ";
    for (const char* ext : {"mp4", "mkv", "obu"}) {
        const std::string grain = dir.file(std::string("grain.") + ext), plain = dir.file(std::string("plain.") + ext);
        test::ffmpeg_cli(source + "-aom-params film-grain-test=1 " + grain);
        test::ffmpeg_cli(source + plain);
        const VideoIndex with = index_of(grain), without = index_of(plain);
        EXPECT_EQ(with.av1_film_grain, true) << ext;
        EXPECT_EQ(without.av1_film_grain, false) << ext;
        EXPECT_THAT(nvdec_refusal(with.codec_id, with.pix_fmt, with.av1_film_grain), HasSubstr("film grain")) << ext;
        if (nvdec_decoder(AV_CODEC_ID_AV1)) {
            EXPECT_EQ(nvdec_refusal(without.codec_id, without.pix_fmt, without.av1_film_grain), "") << ext;
        }
    }
    // Where no sequence header was read, grain cannot be ruled out.
    EXPECT_THAT(nvdec_refusal(AV_CODEC_ID_AV1, AV_PIX_FMT_YUV420P, std::nullopt), HasSubstr("cannot be ruled out"));
    EXPECT_EQ(nvdec_refusal(AV_CODEC_ID_HEVC, AV_PIX_FMT_YUV420P, std::nullopt), "");  // AV1's alone

    // `auto` with a GPU backend's ring: refused before any device memory is asked for.
    std::vector<std::string> notices;
    bool ring_asked = false;
    FrameOptions o;
    o.image_size = 32;
    o.device_frames = [&](const DeviceFramesShape&) -> std::unique_ptr<DeviceFrames> {
        ring_asked = true;
        return nullptr;
    };
    o.notice = [&](const std::string& s) { notices.push_back(s); };
    FrameStream s(dir.file("grain.mp4"), o);
    EXPECT_STREQ(s.decoder(), "cpu");
    EXPECT_FALSE(ring_asked);
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_THAT(notices[0], HasSubstr("frames decoded on the CPU: its AV1 frames may carry film grain"));
    Tensor rgb;
    int64_t at = -1;
    EXPECT_TRUE(s.next_rgb(rgb, at));
}

}  // namespace
}  // namespace vidi::media
