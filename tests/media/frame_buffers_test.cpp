// The stream's host memory is reused only where nothing else holds it: a batch the caller
// released is refilled in place, one it kept is never written again, and the pictures made in
// recycled buffers are the CLI's frames.
#include <gtest/gtest.h>

#include <cstring>

#include "media/media.h"
#include "media/media_test_util.h"
#include "media/rgb_picture.h"

namespace vidi::media {
namespace {

std::string make_video(test::TempDir& tmp) {
    const std::string v = tmp.file("v.mp4");
    // No B-frames, so no edit list: sampled frame p is the CLI's frame 30·p.
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=30:d=20 -c:v libx264 -preset veryfast -g 45 -bf 0 " + v);
    return v;
}

// Each frame of a batch against the CLI's decode of that frame.
void expect_frames(const Tensor& rgb, const std::vector<int64_t>& positions, const std::vector<Tensor>& alone,
                   int lanes) {
    ASSERT_EQ(rgb.dim(0), static_cast<int64_t>(positions.size()));
    for (size_t i = 0; i < positions.size(); ++i)
        EXPECT_EQ(test::bytes_differing(rgb.row(static_cast<int64_t>(i)), alone.at(static_cast<size_t>(positions[i]))),
                  0u)
            << "lanes " << lanes << " frame " << positions[i];
}

TEST(FrameBuffers, AReleasedBatchIsRefilledInPlaceAKeptOneIsNeverWritten) {
    test::TempDir tmp("frame-buffers");
    const std::string v = make_video(tmp);
    const std::vector<uint8_t> cli = test::cli_rgb_frames(v);
    std::vector<Tensor> alone;
    for (int64_t p = 0; p < 20; ++p) alone.push_back(test::rgb_frame(cli, 30 * p, 96, 64));
    for (int lanes : {1, 2}) {
        FrameStream stream(v, 48, 4, lanes);
        Tensor rgb;
        std::vector<int64_t> positions;
        ASSERT_TRUE(stream.next_frames(rgb, positions));
        const void* storage = rgb.raw();
        // Released (only `rgb` holds it): the next batch of the same shape goes into it.
        ASSERT_TRUE(stream.next_frames(rgb, positions));
        EXPECT_EQ(rgb.raw(), storage) << "lanes " << lanes;
        expect_frames(rgb, positions, alone, lanes);
        // Kept (a copy of the handle and a view of a row): the stream must not write into it.
        const Tensor kept = rgb, kept_row = rgb.row(0), snapshot = rgb.clone();
        ASSERT_TRUE(stream.next_frames(rgb, positions));
        EXPECT_NE(rgb.raw(), kept.raw());
        EXPECT_EQ(test::bytes_differing(kept, snapshot), 0u) << "lanes " << lanes;
        int taken = 3;
        expect_frames(rgb, positions, alone, lanes);
        while (stream.next_frames(rgb, positions)) {
            expect_frames(rgb, positions, alone, lanes);
            ++taken;
        }
        EXPECT_EQ(taken, 5);  // 20 sampled frames, 4 a batch
    }
}

TEST(FrameBuffers, AGivenBackBufferServesTheNextPictureItFits) {
    PictureBuffers buffers;
    Picture small = blank_picture(50, 30, &buffers), large = blank_picture(80, 40, &buffers);
    ASSERT_EQ(small.rgb.size(), size_t(small.stride) * 31);
    const uint8_t* small_memory = small.rgb.data();
    const uint8_t* large_memory = large.rgb.data();
    buffers.give_back(std::move(small));
    buffers.give_back(std::move(large));
    // A large picture takes the large buffer; the next one finds only the small buffer, too
    // small, and gets a new one, leaving the small buffer for a small picture.
    const Picture a = blank_picture(80, 40, &buffers);
    EXPECT_EQ(a.rgb.data(), large_memory);
    EXPECT_EQ(a.rgb.size(), size_t(a.stride) * 41);
    const Picture b = blank_picture(80, 40, &buffers);
    EXPECT_NE(b.rgb.data(), small_memory);
    const Picture c = blank_picture(50, 30, &buffers);
    EXPECT_EQ(c.rgb.data(), small_memory);
}

}  // namespace
}  // namespace vidi::media
