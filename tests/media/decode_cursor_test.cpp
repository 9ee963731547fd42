// DecodeCursor::restart_at: the frames from a keyframe on are those of a decoder that starts
// at that keyframe (as decord's does after its seek), also where the cursor's frame threads had
// read the keyframe's packet already. On a damaged stream, decoding on from there instead gave
// other pictures (concealed from the frames before), so which keyframes a cursor went through
// changed them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "media/decode_cursor.h"
#include "media/media_test_util.h"

namespace vidi::media {
namespace {

struct Opened {
    VideoIndex vx;
    std::vector<int64_t> all_pts;  // every packet's timestamp, sorted: frames keyed by timestamp, none skipped
};

Opened index(const std::string& path) {
    Opened o;
    ff::FormatPtr fmt = ff::open_input(path);
    o.vx = index_video(fmt.get(), path);
    for (const VideoPacket& p : o.vx.packets) o.all_pts.push_back(p.pts);
    std::sort(o.all_pts.begin(), o.all_pts.end());
    return o;
}

std::vector<uint8_t> rgb(DecodeCursor& c) {
    const Picture p = c.picture();
    std::vector<uint8_t> out;
    for (int y = 0; y < p.height; ++y) {
        const uint8_t* row = p.rgb.data() + static_cast<size_t>(y) * p.stride;
        out.insert(out.end(), row, row + p.width * 3);
    }
    return out;
}

// For each keyframe after the first: a cursor decodes up to the frame just before it (its
// frame threads, or the B-frames' reordering, have read the keyframe's packet by then),
// restarts there and takes the keyframe's picture and the one 10 frames on; a cursor that
// seeks to the keyframe takes the same.
void expect_restarts_equal_seeks(const std::string& path, int threads) {
    const Opened o = index(path);
    const std::vector<int64_t>& keys = o.vx.key_pts;
    ASSERT_GE(keys.size(), 4u) << path;
    DecodeCursor onward(path, o.vx, o.all_pts, threads, AV_NOPTS_VALUE, nullptr, MediaInputs::Any);
    int restarts_after_reading = 0;
    for (size_t k = 1; k < keys.size(); ++k) {
        const auto at = std::lower_bound(o.all_pts.begin(), o.all_pts.end(), keys[k]);
        ASSERT_TRUE(at != o.all_pts.begin() && at + 10 < o.all_pts.end()) << path;
        onward.advance_to(*(at - 1));
        restarts_after_reading += !onward.can_restart_at(keys[k]);
        onward.restart_at(keys[k]);
        DecodeCursor sought(path, o.vx, o.all_pts, threads, keys[k], nullptr, MediaInputs::Any);
        for (int64_t want : {*at, *(at + 10)}) {
            onward.advance_to(want);
            sought.advance_to(want);
            EXPECT_TRUE(rgb(onward) == rgb(sought)) << path << ": keyframe " << keys[k] << ", frame " << want;
        }
    }
    EXPECT_GT(restarts_after_reading, 0) << path << ": the decoder never read a keyframe ahead";
}

TEST(DecodeCursor, ARestartAtAKeyframeReadAlreadyDecodesFromIt) {
    test::TempDir tmp("cursor");
    const std::string clean = tmp.file("clean.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x96:r=30:d=20 -c:v libx264 -preset veryfast -g 45 -bf 3 " + clean);
    expect_restarts_equal_seeks(clean, 4);
    const std::string damaged = tmp.file("damaged.mp4");
    test::write_damaged_copy(clean, damaged, 30);
    // One thread: FFmpeg's frame threads conceal damage differently from run to run.
    expect_restarts_equal_seeks(damaged, 1);
}

// keep_decoder (H.264 on NVDEC): a restart at an IDR keyframe goes on without a flush. Jumping
// ahead over several keyframes (a lane's next segment) or to the next one, with frame threads
// and B-frames holding frames from before, the cursor gives the pictures of a cursor that seeks
// there, and none from before the keyframe (first_key).
TEST(DecodeCursor, AnUnflushedRestartAtAnIdrKeyframeGivesTheSoughtPictures) {
    test::TempDir tmp("cursor-keep");
    const std::string v = tmp.file("v.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x96:r=30:d=20 -c:v libx264 -preset veryfast -g 30 -bf 3 " + v);
    const Opened o = index(v);
    const std::vector<int64_t>& keys = o.vx.key_pts;
    ASSERT_GE(keys.size(), 10u);
    ASSERT_EQ(o.vx.idr_pts, keys);
    for (int threads : {1, 4}) {
        for (size_t stride : {1, 3}) {
            SCOPED_TRACE(std::to_string(threads) + " threads, every " + std::to_string(stride) + " keyframes");
            std::atomic<int64_t> decoded{0};
            DecodeCursor kept(v, o.vx, o.all_pts, threads, AV_NOPTS_VALUE, &decoded, MediaInputs::Any, nullptr,
                              nullptr, true);
            for (size_t k = stride; k < keys.size(); k += stride) {
                const auto at = std::lower_bound(o.all_pts.begin(), o.all_pts.end(), keys[k]);
                ASSERT_TRUE(at + 10 < o.all_pts.end());
                kept.advance_to(*(at - 15));  // half a GOP before: B-frames and threads hold frames
                ASSERT_TRUE(kept.can_restart_at(keys[k]));
                kept.restart_at(keys[k], stride > 1);
                DecodeCursor sought(v, o.vx, o.all_pts, threads, keys[k], nullptr, MediaInputs::Any);
                for (int64_t want : {*at, *(at + 1), *(at + 10)}) {
                    kept.advance_to(want);
                    sought.advance_to(want);
                    EXPECT_EQ(kept.first_key(), keys[k]);
                    EXPECT_TRUE(rgb(kept) == rgb(sought)) << "keyframe " << keys[k] << ", frame " << want;
                }
            }
            EXPECT_LT(decoded.load(), static_cast<int64_t>(o.all_pts.size()));  // stretches passed over
        }
    }
}

// decord repeats the last frame it returned past its last output (a damaged tail): asked for a
// frame after the last one, the cursor keeps the last picture. (avcodec_receive_frame empties
// the frame it is given when it has none; the picture then read as 0x0.)
TEST(DecodeCursor, PastTheLastFrameTheLastPictureStandsIn) {
    test::TempDir tmp("cursor-end");
    const std::string v = tmp.file("v.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=64x48:r=10:d=3 -c:v libx264 -preset veryfast -g 10 -bf 2 " + v);
    const Opened o = index(v);
    for (int threads : {1, 3}) {
        DecodeCursor c(v, o.vx, o.all_pts, threads, AV_NOPTS_VALUE, nullptr, MediaInputs::Any);
        c.advance_to(o.all_pts.back());
        const std::vector<uint8_t> last = rgb(c);
        EXPECT_FALSE(c.try_advance_to(o.all_pts.back() + 1));
        EXPECT_TRUE(rgb(c) == last) << threads << " threads";
        c.advance_to(o.all_pts.back() + 100000);  // no error: the last picture stands in
        EXPECT_TRUE(rgb(c) == last) << threads << " threads";
    }
}

}  // namespace
}  // namespace vidi::media
