// HevcSublayers (media/hevc_sublayers.h): an HEVC packet may be skipped as non-reference only
// where all its slices lie in the highest temporal sub-layer the sequence parameter sets allow,
// read from hvcC records, Annex B extradata and in-band parameter sets; and on real files
// (x265's two sub-layers) exactly the upper sub-layer's packets qualify.
#include <gtest/gtest.h>

#include <vector>

#include "media/ffmpeg_util.h"
#include "media/hevc_sublayers.h"
#include "media/media_test_util.h"
#include "media/nal_test_util.h"

namespace vidi::media {
namespace {

using test::annex_b;
using test::Bytes;
using test::length_prefixed;

// A NAL unit: its two-byte header (type, TemporalId) and a few payload bytes.
Bytes nal(int type, int tid, Bytes payload = {0xaf, 0x10}) {
    Bytes n{static_cast<uint8_t>(type << 1), static_cast<uint8_t>(tid + 1)};
    n.insert(n.end(), payload.begin(), payload.end());
    return n;
}
// A sequence parameter set allowing `sub_layers` temporal sub-layers.
Bytes sps(int sub_layers) { return nal(33, 0, {static_cast<uint8_t>((sub_layers - 1) << 1 | 1), 0x01, 0x60}); }

constexpr int kTrailN = 0, kTsaN = 2, kTrailR = 1;

// hvcC with 4-byte NAL lengths and one array holding `set`.
Bytes hvcc(const Bytes& set) {
    Bytes h(23, 0);
    h[0] = 1;
    h[21] = 0x03;
    h[22] = 1;
    h.insert(h.end(), {0xa1, 0x00, 0x01, 0x00, static_cast<uint8_t>(set.size())});
    h.insert(h.end(), set.begin(), set.end());
    return h;
}
bool skippable(HevcSublayers& h, const Bytes& packet) { return h.skippable(packet.data(), static_cast<int>(packet.size())); }

}  // namespace

TEST(HevcSublayers, OnlyTheHighestSubLayerIsSkippable) {
    const Bytes ex = hvcc(sps(3));
    HevcSublayers h(ex.data(), static_cast<int>(ex.size()));
    EXPECT_EQ(h.highest(), 2);
    EXPECT_TRUE(skippable(h, length_prefixed({nal(kTrailN, 2)})));
    // A sub-layer non-reference picture of a lower sub-layer: a higher one may refer to it.
    EXPECT_FALSE(skippable(h, length_prefixed({nal(kTsaN, 1)})));
    EXPECT_FALSE(skippable(h, length_prefixed({nal(kTrailN, 0)})));
    EXPECT_FALSE(skippable(h, length_prefixed({nal(kTrailN, 2), nal(kTrailN, 1)})));  // every slice counts
    EXPECT_TRUE(skippable(h, length_prefixed({nal(39, 0), nal(kTrailN, 2)})));          // an SEI is no slice
}

TEST(HevcSublayers, OneSubLayerSkipsEveryNonReferencePicture) {
    const Bytes ex = hvcc(sps(1));
    HevcSublayers h(ex.data(), static_cast<int>(ex.size()));
    EXPECT_EQ(h.highest(), 0);
    EXPECT_TRUE(skippable(h, length_prefixed({nal(kTrailN, 0)})));
    EXPECT_TRUE(skippable(h, length_prefixed({nal(kTrailR, 0)})));  // FFmpeg itself keeps reference pictures
}

TEST(HevcSublayers, UnknownUntilASequenceParameterSetArrives) {
    HevcSublayers none(nullptr, 0);  // MPEG-TS without extradata: Annex B packets
    EXPECT_EQ(none.highest(), -1);
    EXPECT_FALSE(skippable(none, annex_b({nal(kTrailN, 0)})));
    EXPECT_TRUE(skippable(none, annex_b({nal(32, 0), sps(2), nal(34, 0), nal(kTsaN, 1)})));  // in-band, then a slice
    EXPECT_EQ(none.highest(), 1);
    EXPECT_FALSE(skippable(none, annex_b({nal(kTrailN, 0)})));

    const Bytes ts_extradata = annex_b({nal(32, 0), sps(2), nal(34, 0)});
    HevcSublayers ts(ts_extradata.data(), static_cast<int>(ts_extradata.size()));
    EXPECT_EQ(ts.highest(), 1);
    // A sequence parameter set allowing more sub-layers raises the bar; one allowing fewer does
    // not lower it (the most any of them allows: never skipping what another layer may read).
    EXPECT_FALSE(skippable(ts, annex_b({sps(3), nal(kTsaN, 1)})));
    EXPECT_TRUE(skippable(ts, annex_b({sps(1), nal(kTrailN, 2)})));
}

TEST(HevcSublayers, DamagedInputIsReadOnlyAsFarAsItGoes) {
    const Bytes ex = hvcc(sps(2));
    HevcSublayers h(ex.data(), static_cast<int>(ex.size()));
    Bytes cut = length_prefixed({nal(kTsaN, 1)});
    cut[3] = 200;  // a length past the packet's end
    EXPECT_FALSE(skippable(h, cut));
    Bytes truncated = ex;
    truncated.resize(26);  // the array's header cut short
    HevcSublayers t(truncated.data(), static_cast<int>(truncated.size()));
    EXPECT_EQ(t.highest(), -1);
    EXPECT_FALSE(skippable(t, length_prefixed({nal(kTrailN, 0)})));
    const Bytes zeros(64, 0);
    HevcSublayers z(zeros.data(), static_cast<int>(zeros.size()));
    EXPECT_FALSE(skippable(z, zeros));
}

TEST(HevcSublayers, X265sUpperSubLayerIsWhatIsSkippable) {
    // x265's temporal layers: referenced pictures in sub-layer 0, unreferenced B-frames (TSA_N)
    // in sub-layer 1. In MP4 (hvcC) and MPEG-TS (Annex B) alike, just those are skippable.
    test::TempDir tmp("hevc_layers");
    for (const char* name : {"layers.mp4", "layers.ts"}) {
        const std::string f = tmp.file(name);
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=128x72:r=30:d=3 -c:v libx265 -preset veryfast -g 30 "
                         "-x265-params log-level=error:temporal-layers=1 " + f);
        ff::FormatPtr fmt = ff::open_input(f);
        const AVCodecParameters* par = fmt->streams[0]->codecpar;
        HevcSublayers h(par->extradata, par->extradata_size);
        ff::PacketPtr pkt = ff::make_packet();
        int packets = 0, skippable_packets = 0;
        while (av_read_frame(fmt.get(), pkt.get()) >= 0) {
            const bool s = h.skippable(pkt->data, pkt->size);
            ++packets;
            skippable_packets += s;
            av_packet_unref(pkt.get());
        }
        EXPECT_EQ(h.highest(), 1) << name;
        // The first GOP's structure: about two of every three pictures are unreferenced B-frames.
        EXPECT_GT(skippable_packets, packets / 3) << name;
        EXPECT_LT(skippable_packets, packets) << name;
    }
}

}  // namespace vidi::media
