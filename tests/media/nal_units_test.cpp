// h264_idr (media/nal_units.h): an H.264 packet is an IDR picture only where it reads to its
// end and every slice in it is an IDR slice, in length-prefixed and Annex B packets alike; and
// on real files the index (VideoIndex::idr_pts) holds every keyframe of closed GOPs, in MP4 and
// MPEG-TS, but only the first of an open-GOP stream, whose other keyframes are I pictures that
// later B-frames read past.
#include <gtest/gtest.h>

#include "media/media_test_util.h"
#include "media/nal_test_util.h"
#include "media/nal_units.h"
#include "media/video_index.h"

namespace vidi::media {
namespace {

using test::annex_b;
using test::Bytes;
using test::length_prefixed;

// An H.264 NAL unit: its header byte (nal_ref_idc 3, the type) and a few payload bytes.
Bytes nal(int type) { return {static_cast<uint8_t>(0x60 | type), 0x88, 0x84, 0x21}; }
constexpr int kSlice = 1, kIdr = 5, kSei = 6, kSps = 7, kPps = 8, kAud = 9;

bool idr(const Bytes& packet, int length_size) {
    return h264_idr(packet.data(), static_cast<int>(packet.size()), length_size);
}

}  // namespace

TEST(H264Idr, EverySliceMustBeAnIdrSlice) {
    for (int length_size : {4, 0}) {
        SCOPED_TRACE(length_size ? "length-prefixed" : "Annex B");
        const auto packet = [&](const std::vector<Bytes>& nals) {
            return length_size ? length_prefixed(nals) : annex_b(nals);
        };
        EXPECT_TRUE(idr(packet({nal(kIdr)}), length_size));
        EXPECT_TRUE(idr(packet({nal(kAud), nal(kSps), nal(kPps), nal(kSei), nal(kIdr), nal(kIdr)}), length_size));
        EXPECT_FALSE(idr(packet({nal(kSlice)}), length_size));
        EXPECT_FALSE(idr(packet({nal(kIdr), nal(kSlice)}), length_size));  // not one picture's slices
        EXPECT_FALSE(idr(packet({nal(kSps), nal(kPps), nal(kSei)}), length_size));  // no slice at all
        EXPECT_FALSE(idr(Bytes{}, length_size));
    }
}

TEST(H264Idr, APacketWhoseLengthsDoNotAddUpIsNone) {
    Bytes p = length_prefixed({nal(kIdr)});
    p[3] = 40;  // longer than the packet
    EXPECT_FALSE(idr(p, 4));
    Bytes extra = length_prefixed({nal(kIdr)});
    extra.push_back(0);  // a stray byte after the last unit
    EXPECT_FALSE(idr(extra, 4));
    const Bytes two = {0, 4, 0x65, 0x88, 0x84, 0x21};  // 2-byte lengths
    EXPECT_TRUE(idr(two, 2));
}

TEST(H264Idr, TheLengthFieldSizeComesFromTheAvcCRecord) {
    const Bytes avcc = {1, 0x64, 0x00, 0x1f, 0xfc | 3, 0xe1, 0x00};
    EXPECT_EQ(h264_length_size(avcc.data(), static_cast<int>(avcc.size())), 4);
    const Bytes avcc2 = {1, 0x64, 0x00, 0x1f, 0xfc | 1, 0xe1, 0x00};
    EXPECT_EQ(h264_length_size(avcc2.data(), static_cast<int>(avcc2.size())), 2);
    const Bytes sps = annex_b({nal(kSps)});  // Annex B parameter sets: start codes
    EXPECT_EQ(h264_length_size(sps.data(), static_cast<int>(sps.size())), 0);
    EXPECT_EQ(h264_length_size(nullptr, 0), 0);
    EXPECT_EQ(h264_length_size(avcc.data(), 5), 0);  // cut short
}

TEST(H264Idr, TheIndexNamesTheIdrKeyframesOfRealFiles) {
    test::TempDir tmp("h264_idr");
    struct Case {
        const char* name;
        const char* args;
        bool closed;
    };
    const Case cases[] = {
        {"closed.mp4", "-c:v libx264 -preset veryfast -g 30 -bf 3", true},
        {"closed.ts", "-c:v libx264 -preset veryfast -g 30 -bf 3", true},
        {"open.mkv", "-c:v libx264 -preset veryfast -g 30 -x264-params open-gop=1", false},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        const std::string f = tmp.file(c.name);
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=128x72:r=30:d=5 " + std::string(c.args) + " " + f);
        ff::FormatPtr fmt = ff::open_input(f);
        const VideoIndex vx = index_video(fmt.get(), f);
        ASSERT_GE(vx.key_pts.size(), 5u);
        if (c.closed) {
            EXPECT_EQ(vx.idr_pts, vx.key_pts);
        } else {
            ASSERT_EQ(vx.idr_pts.size(), 1u);  // the stream's first picture only
            EXPECT_EQ(vx.idr_pts[0], vx.key_pts[0]);
        }
        for (int64_t k : vx.key_pts) EXPECT_EQ(vx.idr_key(k), c.closed || k == vx.key_pts[0]);
    }
}

}  // namespace vidi::media
