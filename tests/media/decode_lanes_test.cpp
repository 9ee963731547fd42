// Decoding in lanes (several cursors, each starting at a keyframe) hands out exactly the
// batches one sequential decoder does: same positions, same pixels, on streams with
// B-frames and long or short GOPs, with thinned sampling, and where lanes do not apply.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "media/media.h"
#include "media/media_test_util.h"

namespace vidi::media {
namespace {

// *lane_segments: how many segments came from lanes (0: the stream stayed sequential).
void expect_same_batches(const std::string& video, int batch, int lanes, int64_t keep_every = 1,
                         int64_t* lane_segments = nullptr) {
    FrameStream one(video, 48, batch, 1), many(video, 48, batch, lanes);
    one.keep_every(keep_every);
    many.keep_every(keep_every);
    ASSERT_EQ(one.total_frames(), many.total_frames());
    Tensor a, b;
    std::vector<int64_t> pa, pb;
    int batches = 0;
    while (one.next(a, pa)) {
        ASSERT_TRUE(many.next(b, pb)) << video << " batch " << batches;
        ASSERT_EQ(pa, pb) << video;
        ASSERT_EQ(a.shape(), b.shape());
        ASSERT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes())) << video << " batch " << batches;
        ++batches;
    }
    EXPECT_FALSE(many.next(b, pb));
    EXPECT_GE(batches, 2) << video;
    EXPECT_EQ(one.lane_segments(), 0);
    if (lane_segments) *lane_segments = many.lane_segments();
}

TEST(DecodeLanes, SameBatchesAsOneDecoder) {
    test::TempDir tmp("lanes");
    // 30 fps with B-frames; keyframes every 45 frames (1.5 s), every 300 frames (a seek
    // goes back up to 10 s) and open-GOP x264 defaults.
    const std::string short_gop = tmp.file("gop45.mp4"), long_gop = tmp.file("gop300.mp4"), mkv = tmp.file("v.mkv");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=40 -c:v libx264 -preset veryfast -g 45 -bf 3 " + short_gop);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=40 -c:v libx264 -preset veryfast -g 300 -bf 2 " + long_gop);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=25:d=30 -c:v libx264 -preset veryfast -g 50 -x264-params open-gop=1 " + mkv);
    for (const std::string& v : {short_gop, long_gop, mkv}) {
        int64_t lane_segments = 0;
        expect_same_batches(v, 4, 3, 1, &lane_segments);
        EXPECT_GE(lane_segments, 2) << v << ": the lanes did not run";
        expect_same_batches(v, 5, 2, 3);  // thinned sampling
    }
    expect_same_batches(test::golden_path("synth.mp4"), 3, 4);
    expect_same_batches(test::golden_path("dummy.mp4"), 4, 3);
}

TEST(DecodeLanes, LanesDecodeAheadWhileTheReaderWaits) {
    // The reader takes one batch and then waits (as it does on the GPU): the lanes go on with
    // the next segments, up to their memory budget, instead of stopping after one each.
    test::TempDir tmp("lanes-ahead");
    const std::string v = tmp.file("v.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=40 -c:v libx264 -preset veryfast -g 30 " + v);
    FrameStream stream(v, 48, 4, 2);
    Tensor batch;
    std::vector<int64_t> positions;
    ASSERT_TRUE(stream.next(batch, positions));
    int64_t decoded = -1;
    for (int quiet = 0, i = 0; quiet < 10 && i < 300; ++i) {  // until 1 s without progress
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const int64_t now = stream.decoded_frames();
        quiet = now == decoded ? quiet + 1 : 0;
        decoded = now;
    }
    // All of it, for scale: 40 sampled frames. One segment per lane past the first batch
    // would have stopped near 12 of them (~30% of the decoding); 4 segments a lane reach 36.
    FrameStream all(v, 48, 4, 2);
    while (all.next(batch, positions)) {
    }
    EXPECT_GT(decoded, all.decoded_frames() * 3 / 4)
        << "frames decoded while the reader waited, of " << all.decoded_frames();
}

// Every batch is shared out among the lanes, not only the first: segments of a lane's share,
// so that batches come out one after another at the lanes' combined pace (whole-batch segments
// all finished at about the same time, after one lane had decoded a batch). A keyframe on every
// sampled frame (30 fps, one a second) keeps the segments at exactly their share here.
TEST(DecodeLanes, EveryBatchIsSharedOutAmongTheLanes) {
    test::TempDir tmp("lanes-share");
    const std::string v = tmp.file("v.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=40 -c:v libx264 -preset veryfast -g 30 " + v);
    int64_t lane_segments = 0;
    expect_same_batches(v, 4, 2, 1, &lane_segments);
    EXPECT_EQ(lane_segments, 40 / 2) << "40 sampled frames in segments of 2 (batches of 4, 2 lanes)";
}

// Frames decoded for every batch of a `seconds`-long 30 fps video with a keyframe every `gop`
// frames, by one decoder and by `lanes` lanes, and the lanes' segments.
struct DecodedCounts {
    int64_t one = 0, lanes = 0, segments = 0;
};
DecodedCounts decoded_counts(const std::string& name, int seconds, int gop, int batch, int lanes) {
    test::TempDir tmp(name);
    const std::string v = tmp.file("v.mp4");
    test::ffmpeg_cli(cat("-f lavfi -i testsrc2=s=96x64:r=30:d=", seconds, " -c:v libx264 -preset veryfast -g ", gop,
                         " -keyint_min ", gop, " ", v));
    FrameStream one(v, 48, batch, 1), many(v, 48, batch, lanes);
    Tensor b;
    std::vector<int64_t> positions;
    while (one.next(b, positions)) {
    }
    while (many.next(b, positions)) {
    }
    return {one.decoded_frames(), many.decoded_frames(), many.lane_segments()};
}

// Where decord's decoder decodes on through a keyframe (a GOP of 37 frames, a sampled frame
// every 30), a segment ends only where the next picture's decoding restarts: a cursor starting
// at a keyframe the segment before decoded through would decode those frames again.
TEST(DecodeLanes, LanesDecodeNothingTwice) {
    const DecodedCounts n = decoded_counts("lanes-once", 60, 37, 8, 2);
    EXPECT_GT(n.segments, 10);
    EXPECT_EQ(n.lanes, n.one);
}

// The first batch within one long GOP: its pictures go to one lane, not one lane each, since
// every one of them needs the GOP's references before it (lanes each decoding the GOP's start
// again: 979 frames decoded here against one decoder's 675).
TEST(DecodeLanes, TheFirstBatchDoesNotSplitAGopAmongTheLanes) {
    const DecodedCounts n = decoded_counts("lanes-first", 40, 300, 8, 8);
    EXPECT_GT(n.segments, 3);
    // Only the second batch's start, inside the first GOP, decodes that GOP's start again.
    EXPECT_LE(n.lanes, n.one * 5 / 4) << "one decoder decoded " << n.one;
    std::printf("[ first batch ] %lld frames decoded by 8 lanes, %lld by one decoder\n",
                static_cast<long long>(n.lanes), static_cast<long long>(n.one));
}

// A damaged stream is concealed from what the decoder held before: each picture must come from
// decoding on from the keyframe decord's decoder restarted at, whatever the lanes (segments
// begin at other keyframes for other lane counts). FFmpeg's frame threads conceal damage
// differently from run to run (docs/conformance.md), so the lanes compared here have one thread
// each (at least as many lanes as cores).
TEST(DecodeLanes, ADamagedStreamGivesTheSamePicturesWhateverTheLanes) {
    test::TempDir tmp("lanes-damaged");
    const std::string clean = tmp.file("clean.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x96:r=30:d=40 -c:v libx264 -preset veryfast -g 45 -bf 3 " + clean);
    const std::string damaged = tmp.file("damaged.mp4");
    test::write_damaged_copy(clean, damaged, 40);
    const auto pictures = [](const std::string& video, int lanes) {
        FrameStream s(video, 48, 4, lanes);
        std::vector<uint8_t> all;
        Tensor batch;
        std::vector<int64_t> positions;
        while (s.next(batch, positions)) {
            const auto* v = static_cast<const uint8_t*>(batch.raw());
            all.insert(all.end(), v, v + batch.nbytes());
        }
        EXPECT_GE(s.lane_segments(), 2) << lanes << " lanes did not run";
        return all;
    };
    const int cores = std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
    const std::vector<uint8_t> first = pictures(damaged, cores);
    EXPECT_EQ(first.size(), size_t(40) * 48 * 48 * 3 * sizeof(float));
    EXPECT_FALSE(first == pictures(clean, cores)) << "the damage did not show";
    for (int lanes : {cores + 1, 2 * cores + 1}) EXPECT_TRUE(pictures(damaged, lanes) == first) << lanes << " lanes";
}

// MPEG-TS has no index, but the demux pass knows each keyframe's byte position: lanes start
// there (H.264 with B-frames, HEVC, and an MP4's stream copied into TS), with the pictures of
// one decoder from the start.
TEST(DecodeLanes, MpegTsLanesStartAtKeyframesByTheirBytes) {
    test::TempDir tmp("lanes-ts");
    const std::string h264 = tmp.file("h264.ts"), hevc = tmp.file("hevc.ts"), mp4 = tmp.file("v.mp4"),
                      copied = tmp.file("copied.ts");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=30 -c:v libx264 -preset veryfast -g 45 -bf 3 " + h264);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=25:d=30 -c:v libx265 -g 50 -x265-params log-level=error " + hevc);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=30 -c:v libx264 -preset veryfast -g 60 " + mp4);
    test::ffmpeg_cli("-i " + mp4 + " -c copy -f mpegts " + copied);
    for (const std::string& v : {h264, hevc, copied}) {
        int64_t lane_segments = 0;
        expect_same_batches(v, 4, 3, 1, &lane_segments);
        EXPECT_GE(lane_segments, 2) << v << ": the lanes did not run";
        expect_same_batches(v, 5, 2, 3);  // thinned sampling
    }
}

// Where no keyframe can be sought exactly, one decoder goes from the start: a raw stream (no
// timestamps) and an MPEG-TS joined from two files (its timestamps start again midway).
TEST(DecodeLanes, WithoutExactKeyframesTheStreamStaysSequential) {
    test::TempDir tmp("lanes-seq");
    const std::string raw = tmp.file("v.h264"), a = tmp.file("a.ts"), b = tmp.file("b.ts"), joined = tmp.file("joined.ts");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=12 -c:v libx264 -preset veryfast -g 30 " + raw);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=8 -c:v libx264 -preset veryfast -g 30 " + a);
    test::ffmpeg_cli("-f lavfi -i testsrc=s=96x64:r=30:d=8 -c:v libx264 -preset veryfast -g 30 " + b);
    test::join_files({a, b}, joined);
    for (const std::string& v : {raw, joined}) {
        int64_t lane_segments = -1;
        expect_same_batches(v, 4, 3, 1, &lane_segments);
        EXPECT_EQ(lane_segments, 0) << v;
    }
}

TEST(DecodeLanes, TheAutomaticCountLeavesAQuarterOfTheCoresToTheOtherThreads) {
    EXPECT_EQ(automatic_lanes(0), 1);  // the core count unknown
    EXPECT_EQ(automatic_lanes(1), 1);
    EXPECT_EQ(automatic_lanes(2), 2);
    EXPECT_EQ(automatic_lanes(4), 3);
    EXPECT_EQ(automatic_lanes(16), 12);  // the GPU hosts measured (bench/RESULTS.md, 2026-12-06)
    for (unsigned cores = 1; cores <= 256; ++cores) {
        const int lanes = automatic_lanes(cores);
        EXPECT_GE(lanes, 1) << cores;
        EXPECT_LE(lanes, static_cast<int>(cores)) << cores;
        EXPECT_GE(static_cast<int>(cores) - lanes, static_cast<int>(cores / 4)) << cores;
    }
}

TEST(DecodeLanes, LargeFramesGetTheLanesTheirDecodersMemoryAllows) {
    // The lanes are bounded by what their decoders hold (reference pictures, 1 GiB over all of
    // them) and the pictures ahead by their own budget: twelve lanes (the automatic count on 16
    // cores) still decode 1080p, at most four decode 4K. Capped at two batches of pictures a
    // lane, they were five and one (a single decoder: 2.8x slower for 4K on 16 cores,
    // bench/RESULTS.md 2026-12-06). The frames are those of one decoder.
    test::TempDir tmp("large_frames");
    struct Case {
        const char* size;
        int most;  // lanes its decoders' memory allows
    };
    for (const Case& c : {Case{"1920x1080", 17}, Case{"3840x2160", 4}}) {
        const std::string f = tmp.file(std::string(c.size) + ".mp4");
        test::ffmpeg_cli(std::string("-f lavfi -i testsrc2=s=") + c.size + ":r=30:d=3 -c:v libx264 -preset ultrafast -g 30 " + f);
        EXPECT_EQ(FrameStream(f, 48, 16, 12).lanes(), std::min(12, c.most)) << c.size;
        EXPECT_EQ(FrameStream(f, 48, 16, 64).lanes(), c.most) << c.size << ": more asked";
        EXPECT_EQ(FrameStream(f, 48, 16, 2).lanes(), 2) << c.size << ": fewer asked";
        expect_same_batches(f, 1, c.most);
    }
}

}  // namespace
}  // namespace vidi::media
