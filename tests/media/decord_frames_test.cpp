// decord's frame count and the picture it returns for each sampled index (SPEC §2.2;
// docs/conformance.md, "frame count"), on packet lists and on files where they are not
// simply "the i-th timestamp": edit-listed MP4s (stream-copied trims), a header whose
// nb_frames is short, variable frame rate, and a stream that changes size midway.
//
// decord's rules, from its video_reader.cc, that the expected values below follow:
//  R1 len(vr) is the number of packets of the video stream, discard-flagged ones included;
//     the header's nb_frames is not read.
//  R2 frame i is entry i of the packet list sorted by timestamp; keyframes are numbered by
//     their position in the file.
//  R3 reading from the start, decord counts decoder outputs; the decoder never outputs a
//     discard-flagged packet's frame, so before decord's first seek to a keyframe, frame i
//     is the i-th frame shown. It seeks when an index lies under another keyframe (by R2's
//     mixed numbering); from then on frame i is the i-th timestamp of R2.
//  R4 past the last output it repeats the last frame it returned.
//  R5 every frame is scaled to the stream's first size (bilinear swscale in FFmpeg 4.1).
#include <gtest/gtest.h>

#include <cstring>

#include "media/media.h"
#include "media/media_test_util.h"
#include "media/video_index.h"

namespace vidi::media {
namespace {

// Packets in file order from their timestamps; `discard` leading ones, keyframes at `keys`.
std::vector<VideoPacket> packets(const std::vector<int64_t>& pts, const std::vector<size_t>& keys, size_t discard) {
    std::vector<VideoPacket> p(pts.size());
    for (size_t i = 0; i < pts.size(); ++i) p[i].pts = pts[i];
    for (size_t k : keys) p[k].key = true;
    for (size_t i = 0; i < discard; ++i) p[i].discard = true;
    return p;
}
std::vector<int64_t> iota(int64_t from, int64_t n) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < n; ++i) v.push_back(from + i);
    return v;
}
// decord_pictures' timestamps only.
std::vector<int64_t> decord_picture_pts(const std::vector<VideoPacket>& packets, const std::vector<int64_t>& indices) {
    std::vector<int64_t> pts;
    for (const DecordPicture& p : decord_pictures(packets, indices)) pts.push_back(p.pts);
    return pts;
}
std::vector<int64_t> every(int64_t step, int64_t n) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < n; i += step) v.push_back(i);
    return v;
}

TEST(DecordPictures, PlainStreamIsTheIthTimestamp) {
    // I0 P3 B1 B2 P6 B4 B5 | I9 P12 B10 B11 ...: file order differs from timestamp order.
    std::vector<int64_t> pts;
    for (int64_t g = 0; g < 4; ++g)
        for (int64_t d : {0, 3, 1, 2, 6, 4, 5, 8, 7}) pts.push_back(100 + 9 * g + d);
    const auto p = packets(pts, {0, 9, 18, 27}, 0);
    EXPECT_EQ(decord_picture_pts(p, every(5, 36)), (std::vector<int64_t>{100, 105, 110, 115, 120, 125, 130, 135}));
    EXPECT_EQ(decord_picture_pts(p, iota(0, 36)), iota(100, 36));
}

TEST(DecordPictures, EachPictureSaysWhichKeyframeItWasDecodedFrom) {
    // The stream above: keyframes at timestamps 100, 109, 118, 127 (frames 0, 9, 18, 27). decord
    // seeks when the target's keyframe is not that of the frame it would read next (one past
    // the last it returned): after frame 8 it reads frame 9, under keyframe 9, so 12 and 16 are
    // decoded on from the start; 20 lies under keyframe 18 while it would read 17: a seek.
    std::vector<int64_t> pts;
    for (int64_t g = 0; g < 4; ++g)
        for (int64_t d : {0, 3, 1, 2, 6, 4, 5, 8, 7}) pts.push_back(100 + 9 * g + d);
    const auto p = packets(pts, {0, 9, 18, 27}, 0);
    std::vector<int64_t> got_pts, origins;
    for (const DecordPicture& pic : decord_pictures(p, every(4, 36))) {
        got_pts.push_back(pic.pts);
        origins.push_back(pic.origin);
    }
    EXPECT_EQ(got_pts, (std::vector<int64_t>{100, 104, 108, 112, 116, 120, 124, 128, 132}));
    const int64_t start = AV_NOPTS_VALUE;
    EXPECT_EQ(origins, (std::vector<int64_t>{start, start, start, start, start, 118, 118, 127, 127}));
    // 9 (under keyframe 9, read next would be 1): a seek; 10 goes on; 26 seeks to 18; 27 is the
    // frame it reads next, so it goes on from 18 although 27 is a keyframe.
    std::vector<int64_t> each;
    for (const DecordPicture& pic : decord_pictures(p, {0, 9, 10, 26, 27})) each.push_back(pic.origin);
    EXPECT_EQ(each, (std::vector<int64_t>{start, 109, 109, 118, 118}));
}

TEST(DecordPictures, EditListLeadInShiftsOnlyTheFirstKeyframesFrames) {
    // 13 discarded packets (timestamps -13..-1), then 30 shown (0..29); keyframes at file
    // positions 0, 20, 40. Indices 0 and 10: outputs 0 and 10 (R3, no seek yet). Index 20
    // lies under keyframe 20: a seek, and from then on index i is timestamp i - 13.
    const auto p = packets(iota(-13, 43), {0, 20, 40}, 13);
    EXPECT_EQ(decord_picture_pts(p, every(10, 43)), (std::vector<int64_t>{0, 10, 7, 17, 27}));
}

TEST(DecordPictures, OneKeyframeRepeatsTheLastFramePastTheOutputs) {
    // 5 discarded + 20 shown, one keyframe: never a seek, so index i is output i; index 20
    // has no output left and repeats the frame returned before (R4).
    const auto p = packets(iota(-5, 25), {0}, 5);
    EXPECT_EQ(decord_picture_pts(p, every(10, 25)), (std::vector<int64_t>{0, 10, 10}));
}

TEST(DecordPictures, LeadInPastASecondKeyframe) {
    // 25 discarded (-25..-1) + 35 shown (0..34); keyframes at 0, 20 (discarded) and 40.
    // Index 20: the seek to keyframe 20 decodes shown frame 0 first, which decord places at
    // index 25 > 20, so it seeks back to keyframe 20 and counts outputs from there: index 20
    // is shown frame 0, index 30 shown frame 10. Index 40 seeks to keyframe 40 (timestamp
    // 15), which checks out: 40 -> 15, 50 -> 25.
    const auto p = packets(iota(-25, 60), {0, 20, 40}, 25);
    EXPECT_EQ(decord_picture_pts(p, every(10, 60)), (std::vector<int64_t>{0, 10, 0, 10, 15, 25}));
}

TEST(DecordPictures, RejectsWhatItCannotNumber) {
    auto p = packets(iota(0, 4), {0}, 0);
    EXPECT_THROW(decord_picture_pts(p, {4}), Error);
    p[2].pts = AV_NOPTS_VALUE;
    EXPECT_THROW(decord_picture_pts(p, {0}), Error);
}

// Our sampled RGB frames equal the CLI's shown frames `shown` (the CLI outputs every shown
// frame once, in order); the same with several decoding lanes.
void expect_pictures(const std::string& video, const std::vector<int64_t>& shown, const std::string& cli_options = "") {
    const VideoInfo info = probe(video);
    const std::vector<uint8_t> cli = test::cli_rgb_frames(video, cli_options);
    const std::vector<Tensor> got = test::sampled_rgb(video);
    ASSERT_EQ(got.size(), shown.size()) << video;
    for (size_t i = 0; i < got.size(); ++i)
        EXPECT_EQ(test::bytes_differing(got[i], test::rgb_frame(cli, shown[i], info.width, info.height)), 0u)
            << video << ": sampled frame " << i << " should be shown frame " << shown[i];
    for (int lanes : {1, 2}) {  // two lanes share a batch of 6: segments of 3 sampled frames
        FrameStream stream(video, 32, 6, lanes);
        Tensor rgb;
        std::vector<int64_t> pos;
        while (stream.next_frames(rgb, pos))
            for (size_t j = 0; j < pos.size(); ++j)
                EXPECT_EQ(test::bytes_differing(rgb.row(static_cast<int64_t>(j)), got[static_cast<size_t>(pos[j])]), 0u)
                    << video << ": " << lanes << " lanes, sampled frame " << pos[j];
    }
}

class EditListTrim : public ::testing::TestWithParam<int> {};

TEST_P(EditListTrim, CountsDiscardedPacketsAndNumbersAsDecord) {
    // 10 fps, a keyframe every 20 frames, cut at 1.3 s without re-encoding: the copy starts at
    // the keyframe at 0 s and its edit list hides the 13 frames before 1.3 s (discard-flagged
    // packets). Keyframes sit at file positions 0, 20, 40 and the timestamp of position 20 is
    // shown frame 7, so by R1-R3 indices 0, 10, 20, 30, 40 get shown frames 0, 10, 7, 17, 27.
    const int bframes = GetParam();
    test::TempDir tmp("trim");
    const std::string src = tmp.file("src.mp4"), trim = tmp.file("trim.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=10:d=8 -c:v libx264 -preset ultrafast -g 20 -bf " +
                     std::to_string(bframes) + " " + src);
    test::ffmpeg_cli("-ss 1.3 -i " + src + " -c copy -t 3 " + trim);
    std::string out;
    ASSERT_EQ(test::run_command("ffprobe -v error -count_packets -select_streams v -show_entries "
                                "stream=nb_read_packets -of csv=p=0 " + trim, &out), 0);
    const int64_t packets_in_file = std::stoll(out);
    const VideoInfo info = probe(trim);
    EXPECT_EQ(info.frame_count, packets_in_file);
    EXPECT_EQ(info.frame_count, bframes == 0 ? 43 : 45);  // 13 hidden + 30 (or 32) shown
    EXPECT_DOUBLE_EQ(info.avg_fps, 10.0);
    EXPECT_EQ(sampled_frame_indices(info), (std::vector<int64_t>{0, 10, 20, 30, 40}));
    expect_pictures(trim, {0, 10, 7, 17, 27});
}

INSTANTIATE_TEST_SUITE_P(BFrames, EditListTrim, ::testing::Values(0, 2),
                         [](const auto& info) { return "bf" + std::to_string(info.param); });

TEST(DecordFrameCount, ShortNbFramesInTheHeaderIsIgnored) {
    // An AVI whose stream header claims 12 frames (strh dwLength, patched) over 30 packets:
    // FFmpeg reports nb_frames 12 and still demuxes all 30; decord counts the 30 (R1).
    test::TempDir tmp("avi");
    const std::string f = tmp.file("short.avi");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=10:d=3 -c:v mjpeg " + f);
    std::vector<uint8_t> bytes = test::read_bytes(f);
    const std::string strh = "strh";
    auto at = std::search(bytes.begin(), bytes.end(), strh.begin(), strh.end());
    ASSERT_NE(at, bytes.end());
    // After "strh" and its size: fccType, fccHandler, dwFlags, wPriority, wLanguage,
    // dwInitialFrames, dwScale, dwRate, dwStart, then dwLength.
    const size_t length = static_cast<size_t>(at - bytes.begin()) + 8 + 32;
    ASSERT_EQ(bytes[length], 30);
    bytes[length] = 12;
    test::write_bytes(f, bytes);
    std::string out;
    ASSERT_EQ(test::run_command("ffprobe -v error -select_streams v -show_entries stream=nb_frames -of csv=p=0 " + f, &out), 0);
    ASSERT_EQ(std::stoi(out), 12);

    const VideoInfo info = probe(f);
    EXPECT_EQ(info.frame_count, 30);
    EXPECT_NEAR(info.duration, 1.2, 1e-9);  // what ffprobe prints: the header's length
    EXPECT_EQ(sampled_frame_indices(info), (std::vector<int64_t>{0, 10, 20}));
    expect_pictures(f, {0, 10, 20});
}

TEST(DecordFrameCount, ResolutionChangeIsScaledToTheFirstSize) {
    // Two MPEG-TS pieces joined: 20 frames of 96x64, then 20 of 64x48 (another hue). Indices
    // 0, 10, 20, 30; the last two come from the small piece, scaled to 96x64 (R5).
    test::TempDir tmp("res");
    const std::string a = tmp.file("a.ts"), b = tmp.file("b.ts"), ab = tmp.file("ab.ts");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=10:d=2 -c:v libx264 -preset ultrafast -bf 0 -g 10 " + a);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=64x48:r=10:d=2,hue=h=90 -c:v libx264 -preset ultrafast -bf 0 -g 10 "
                     "-output_ts_offset 2 " + b);
    test::join_files({a, b}, ab);
    const VideoInfo info = probe(ab);
    EXPECT_EQ(info.width, 96);
    EXPECT_EQ(info.height, 64);
    EXPECT_EQ(info.frame_count, 40);
    EXPECT_EQ(sampled_frame_indices(info), (std::vector<int64_t>{0, 10, 20, 30}));
    // decord's graph is one scale filter straight into an RGB24 sink: it resizes and converts
    // in one swscale pass. `format=rgb24` right after the scale gives the CLI the same graph
    // (without it the CLI scales in YUV and converts in a second pass: other bytes).
    expect_pictures(ab, {0, 10, 20, 30}, "-sws_flags bilinear -vf scale=96:64,format=rgb24");
    // The flags matter: bicubic gives other bytes for the scaled frames.
    const std::vector<uint8_t> bicubic = test::cli_rgb_frames(ab, "-sws_flags bicubic -vf scale=96:64,format=rgb24");
    const std::vector<Tensor> got = test::sampled_rgb(ab);
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(test::bytes_differing(got[0], test::rgb_frame(bicubic, 0, 96, 64)), 0u);
    EXPECT_GT(test::bytes_differing(got[2], test::rgb_frame(bicubic, 20, 96, 64)), 0u);
}

// The scale filter's automatic matrix takes BT.601 for a colorspace it has no matrix for: a YUV
// stream tagged RGB (colorspace 0, as some encoders write) converts as BT.601, where
// sws_getCoefficients(0) alone gives BT.709's (up to 42/255 off).
TEST(DecordColour, AStreamTaggedRgbConvertsAsTheScaleFilterDoes) {
    test::TempDir tmp("gbr");
    const std::string video = tmp.file("tagged_gbr.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=10:d=2 -c:v libx264 -preset ultrafast -bf 0 -pix_fmt yuv420p "
                     "-colorspace rgb " + video);
    expect_pictures(video, {0, 10}, "-sws_flags bilinear -vf format=rgb24");
    const std::vector<uint8_t> bt709 = test::cli_rgb_frames(video, "-vf scale=in_color_matrix=bt709,format=rgb24");
    EXPECT_GT(test::bytes_differing(test::sampled_rgb(video)[0], test::rgb_frame(bt709, 0, 96, 64)), 0u);
}

// decord takes av_find_best_stream's video stream: the one flagged default, whatever its place
// or size (then the one with frames, then the higher bit rate). A file with two video streams
// gives the frames of that one.
TEST(DecordVideoStream, TheDefaultFlaggedStreamIsTheVideoWhateverItsPlace) {
    test::TempDir tmp("streams");
    const std::string two = "-f lavfi -i testsrc2=s=64x48:r=10:d=2 -f lavfi -i testsrc=s=96x64:r=10:d=2 "
                            "-map 0 -map 1 -c:v libx264 -pix_fmt yuv420p ";
    const std::string second = tmp.file("second.mp4"), first = tmp.file("first.mp4");
    test::ffmpeg_cli(two + "-disposition:v:0 0 -disposition:v:1 default " + second);
    test::ffmpeg_cli(two + first);  // the MP4 muxer flags the first track default
    EXPECT_EQ(probe(second).width, 96);
    EXPECT_EQ(probe(first).width, 64);
    FrameStream s(second, 384);
    EXPECT_EQ(s.total_frames(), 2);  // 20 frames at 10 fps, one a second
}

}  // namespace
}  // namespace vidi::media
