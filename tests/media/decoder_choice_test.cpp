// FrameOptions::decoder: NVDEC where it can take the file, the CPU otherwise, with one notice
// (auto) or an error (nvdec) naming why; and the device path's batching (decoding lanes
// filling a ring of batches ahead of the reader), which gives the CPU path's batches byte for
// byte. This machine has no GPU: a host-memory ring (core/host_frames.h) plays the GPU backend's,
// and the lanes decode in software into it (FrameOptions::software_to_device).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <thread>

#include "core/host_frames.h"
#include "media/media.h"
#include "media/media_test_util.h"
#include "media/nvdec.h"

namespace vidi::media {
namespace {

using testing::HasSubstr;

struct Ring {
    std::vector<HostFrames*> made;  // owned by the FrameStream
    std::vector<DeviceFramesShape> asked;  // every shape asked for (outlives what was made)
    int slots = 0;     // the rings made have this many slots (0: as asked)
    int fail_at = -1;    // HostFrames::fail_at of the rings made
    int fail_lane = -1;  // and their fail_lane
    DeviceFramesMaker maker() {
        return [this](const DeviceFramesShape& s) {
            asked.push_back(s);
            DeviceFramesShape shape = s;
            if (slots > 0) shape.slots = slots;
            auto f = std::make_unique<HostFrames>(shape);
            f->fail_at = fail_at;
            f->fail_lane = fail_lane;
            made.push_back(f.get());
            return f;
        };
    }
};

FrameOptions options(const std::string& decoder, int batch, int lanes) {
    FrameOptions o;
    o.image_size = 32;
    o.max_batch = batch;
    o.lanes = lanes;
    o.decoder = decoder;
    o.cpu_head_lanes = 0;  // NVDEC's lanes alone, whatever the default (NvdecsCpuHead* add the CPU's start)
    return o;
}

// Options whose frames go to `ring`: written by NVDEC's lanes (their software stand-in here) or,
// with cpu_lanes, by the CPU decoders' (FrameOptions::cpu_to_device).
FrameOptions ring_options(Ring& ring, bool cpu_lanes, int batch, int lanes) {
    FrameOptions o = options(cpu_lanes ? "cpu" : "nvdec", batch, lanes);
    o.device_frames = ring.maker();
    (cpu_lanes ? o.cpu_to_device : o.software_to_device) = true;
    return o;
}

// Every batch of `b` equals `a`'s (positions and bytes); returns the batches.
int expect_same_batches(FrameStream& a, FrameStream& b) {
    Tensor x, y;
    std::vector<int64_t> px, py;
    int batches = 0;
    while (a.next_frames(x, px)) {
        EXPECT_TRUE(b.next_frames(y, py)) << "batch " << batches;
        EXPECT_EQ(px, py);
        EXPECT_EQ(x.shape(), y.shape());
        if (x.shape() != y.shape()) return batches;
        EXPECT_EQ(0, std::memcmp(x.raw(), y.raw(), x.nbytes())) << "batch " << batches;
        ++batches;
    }
    EXPECT_FALSE(b.next_frames(y, py));
    return batches;
}

using FramesByPosition = std::map<int64_t, std::vector<uint8_t>>;

// Every frame `s` hands out, by sampled position (the bytes of each).
FramesByPosition frames_by_position(FrameStream& s) {
    FramesByPosition out;
    Tensor rgb;
    std::vector<int64_t> pos;
    while (s.next_frames(rgb, pos))
        for (size_t i = 0; i < pos.size(); ++i) {
            const Tensor row = rgb.row(static_cast<int64_t>(i));
            out[pos[i]].assign(row.data<uint8_t>(), row.data<uint8_t>() + row.nbytes());
        }
    return out;
}

// Reads `dev` to its end, batches in any order: every frame of `want` comes once, with its
// bytes. Returns the first batch's positions.
std::vector<int64_t> expect_each_frame_once(FrameStream& dev, const FramesByPosition& want) {
    Tensor rgb;
    std::vector<int64_t> pos, first;
    std::map<int64_t, int> seen;
    while (dev.next_frames(rgb, pos)) {
        if (first.empty()) first = pos;
        for (size_t i = 0; i < pos.size(); ++i) {
            ++seen[pos[i]];
            const Tensor row = rgb.row(static_cast<int64_t>(i));
            const auto w = want.find(pos[i]);
            if (w == want.end()) {
                ADD_FAILURE() << "frame " << pos[i] << " is not one of the video's";
                continue;
            }
            EXPECT_EQ(0, std::memcmp(row.data<uint8_t>(), w->second.data(), row.nbytes())) << pos[i];
        }
    }
    EXPECT_EQ(seen.size(), want.size());
    for (const auto& [p, n] : seen) EXPECT_EQ(n, 1) << "frame " << p;
    return first;
}

class DecoderChoice : public testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new test::TempDir("decoder");
        // 45 sampled frames, a keyframe every 2 s (seekable lanes), B-frames.
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=5:d=45 -c:v libx264 -g 10 -bf 2 -pix_fmt yuv420p " +
                         video());
    }
    static void TearDownTestSuite() {
        delete dir_;
        dir_ = nullptr;
    }
    static std::string video() { return dir_->file("h264.mp4"); }
    static test::TempDir* dir_;
};
test::TempDir* DecoderChoice::dir_ = nullptr;

// The ring filled by NVDEC's lanes (their software stand-in here) or by the CPU decoders' lanes
// (FrameOptions::cpu_to_device: as many as the host path's, copying each frame in) holds the
// host path's batches byte for byte; without cpu_to_device the CPU's pictures stay on the host.
TEST_F(DecoderChoice, LanesFillingTheDeviceRingGiveTheCpuBatches) {
    for (bool cpu_lanes : {false, true})
        for (int lanes : {1, 3}) {
            SCOPED_TRACE(std::string(cpu_lanes ? "CPU" : "NVDEC") + " lanes: " + std::to_string(lanes));
            Ring ring;
            FrameStream cpu(video(), options("cpu", 4, lanes)), dev(video(), ring_options(ring, cpu_lanes, 4, lanes));
            EXPECT_STREQ(cpu.decoder(), "cpu");
            EXPECT_STREQ(dev.decoder(), cpu_lanes ? "cpu" : "nvdec");
            EXPECT_EQ(dev.lanes(), cpu.lanes());
            ASSERT_EQ(ring.made.size(), 1u);
            const DeviceFramesShape& s = ring.made[0]->shape();
            EXPECT_EQ(s.batch, 4);
            EXPECT_EQ(s.width, 96);
            EXPECT_EQ(s.height, 64);
            EXPECT_EQ(s.lanes, lanes);
            EXPECT_GE(s.slots, 3);
            EXPECT_EQ(s.lane_outside_bytes, 0u);  // software decoders hold host memory only
            dev.start();
            EXPECT_EQ(expect_same_batches(cpu, dev), 12);  // 45 frames, 4 a batch
            EXPECT_EQ(ring.made[0]->frames_put.load(), 45);
            EXPECT_EQ(ring.made[0]->violations.load(), 0);
            if (lanes > 1) {
                EXPECT_GT(dev.lane_segments(), 1);
            }
        }
    Ring unused;
    FrameOptions o = options("cpu", 4, 3);
    o.device_frames = unused.maker();  // without cpu_to_device: host batches
    FrameStream host(video(), o);
    EXPECT_TRUE(unused.asked.empty());
}

// start(true): the frames may come in any order. The CPU decoders' lanes filling the ring then
// hand out their first segments' frames in turn (each lane's first, then second, ...), so the
// first batch holds the lanes' first frames, not one lane's run; every sampled frame still
// comes once, with the host path's bytes. Also in a ring of three slots (the fewest: under
// --gpu-memory), where lanes wait for room while the reader waits for frames of other lanes.
// One lane, NVDEC's lanes (their sessions start one at a time) and the host path keep the order.
TEST_F(DecoderChoice, AnyOrderInterleavesTheLanesFirstSegmentsWithTheSameFrames) {
    FrameStream cpu(video(), options("cpu", 4, 1));
    const FramesByPosition want = frames_by_position(cpu);
    ASSERT_EQ(want.size(), 45u);
    for (const int slots : {0, 3})
        for (const int lanes : {1, 3, 5})
            for (const bool cpu_lanes : {true, false}) {
                SCOPED_TRACE(std::string(cpu_lanes ? "CPU" : "NVDEC") + " lanes: " + std::to_string(lanes) +
                             ", slots: " + (slots ? std::to_string(slots) : "as planned"));
                Ring ring;
                ring.slots = slots;
                FrameStream dev(video(), ring_options(ring, cpu_lanes, 4, lanes));
                dev.start(true);
                const std::vector<int64_t> first = expect_each_frame_once(dev, want);
                // A keyframe every 2 s: the lanes' first segments are 2 sampled frames each.
                const std::vector<int64_t> in_order = {0, 1, 2, 3}, three = {0, 2, 4, 1}, five = {0, 2, 4, 6};
                EXPECT_EQ(first, lanes == 1 || !cpu_lanes ? in_order : lanes == 3 ? three : five);
                EXPECT_EQ(ring.made[0]->violations.load(), 0);
            }
}

// NVDEC's lanes (their software stand-in) with a CPU head: in any order, the first wave of
// segments goes to CPU lanes of their own (the ring's last lanes), a segment each, interleaved,
// and NVDEC's lanes take every segment after it; every sampled frame comes once, with the host
// path's bytes, also in a ring of three slots.
TEST_F(DecoderChoice, NvdecsCpuHeadDecodesTheFirstWaveInterleavedWithTheSameFrames) {
    FrameStream cpu(video(), options("cpu", 4, 1));
    const FramesByPosition want = frames_by_position(cpu);
    ASSERT_EQ(want.size(), 45u);
    for (const int slots : {0, 3})
        for (const int lanes : {2, 3})
            for (const int head : {1, 2, 4, 8}) {
                SCOPED_TRACE("NVDEC lanes: " + std::to_string(lanes) + ", CPU head: " + std::to_string(head) +
                             ", slots: " + (slots ? std::to_string(slots) : "as planned"));
                Ring ring;
                ring.slots = slots;
                FrameOptions o = ring_options(ring, false, 4, lanes);
                o.cpu_head_lanes = head;
                FrameStream dev(video(), o);
                ASSERT_EQ(ring.made.size(), 1u);
                HostFrames& r = *ring.made[0];
                EXPECT_EQ(r.shape().lanes, lanes + head);
                EXPECT_EQ(r.shape().host_lanes, head);
                EXPECT_EQ(dev.lanes(), lanes);
                dev.start(true);
                // A keyframe every 2 s: the head's segments are a GOP each (2 sampled frames), but
                // for a head of one lane, whose segment is at least a batch.
                const int64_t head_frames = head == 1 ? 4 : std::min<int64_t>(45, 2 * head);
                EXPECT_EQ(dev.head_lanes(), head);
                EXPECT_EQ(dev.head_frames(), head_frames);
                const std::vector<int64_t> first = expect_each_frame_once(dev, want);
                const std::vector<int64_t> one = {0, 1, 2, 3}, two = {0, 2, 1, 3}, more = {0, 2, 4, 6};
                EXPECT_EQ(first, head == 1 ? one : head == 2 ? two : more);
                // The head's lanes wrote its frames, NVDEC's the rest.
                int from_head = 0, from_nvdec = 0;
                for (int l = 0; l < lanes; ++l) from_nvdec += r.frames_from(l);
                for (int l = lanes; l < lanes + head; ++l) from_head += r.frames_from(l);
                EXPECT_EQ(from_head, head_frames);
                EXPECT_EQ(from_nvdec, 45 - head_frames);
                EXPECT_EQ(r.violations.load(), 0);
            }
}

// The head only where NVDEC's lanes decode in parallel and the frames may come in any order: in
// order its lanes stay idle (NVDEC's take every segment); one NVDEC lane, a sequential decoder,
// has none. Left automatic, it takes the CPU path's lane count within four per NVDEC lane, and
// its decoders hold no device memory (the ring's estimate counts NVDEC's sessions only).
TEST_F(DecoderChoice, NvdecsCpuHeadOnlyWhereItsLanesAndAnyOrderAllowIt) {
    {
        Ring ring;
        FrameOptions o = ring_options(ring, false, 4, 3);
        o.cpu_head_lanes = 2;
        FrameStream dev(video(), o), cpu(video(), options("cpu", 4, 3));
        dev.start();
        EXPECT_EQ(dev.head_lanes(), 0);
        EXPECT_EQ(expect_same_batches(cpu, dev), 12);
        EXPECT_EQ(ring.made[0]->frames_from(3) + ring.made[0]->frames_from(4), 0);
    }
    {
        Ring ring;
        FrameOptions o = ring_options(ring, false, 4, 1);
        o.cpu_head_lanes = 2;
        FrameStream dev(video(), o);
        EXPECT_EQ(ring.made[0]->shape().lanes, 1);
        EXPECT_EQ(ring.made[0]->shape().host_lanes, 0);
    }
    for (const int lanes : {2, 4}) {
        Ring ring;
        FrameOptions o = ring_options(ring, false, 4, lanes);
        o.cpu_head_lanes = -1;
        FrameStream dev(video(), o);
        const int expected = std::min(automatic_lanes(std::thread::hardware_concurrency()), 4 * lanes);
        EXPECT_EQ(ring.made[0]->shape().host_lanes, expected) << lanes;
        EXPECT_EQ(ring.made[0]->shape().lanes, lanes + expected) << lanes;
    }
    DeviceFramesShape s;
    s.slots = 3;
    s.batch = 2;
    s.height = s.width = 4;
    s.lanes = 6;
    s.host_lanes = 2;
    s.lane_outside_bytes = 100;
    EXPECT_EQ(s.device_bytes(), size_t(3 * 2 * 4 * 4 * 3 + 4 * 100));
}

// NVDEC's lanes start beside a CPU head that fills its `ahead` budget (long GOPs: segments of two
// batches, the head at its most, four lanes per NVDEC lane): the head's lanes write nothing until
// an NVDEC lane has written a frame (HostFrames::gate_lanes_from), which happens only where NVDEC's
// first segments were launched with the head's.
TEST_F(DecoderChoice, NvdecsLanesStartBesideAHeadAsLargeAsItsBudget) {
    const std::string f = dir_->file("g16.mp4");  // 100 sampled frames, a keyframe every 16
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=5:d=100 -c:v libx264 -g 80 -bf 2 -x264-params scenecut=0 -pix_fmt yuv420p " + f);
    FrameStream cpu(f, options("cpu", 4, 1));
    const FramesByPosition want = frames_by_position(cpu);
    ASSERT_EQ(want.size(), 100u);
    Ring ring;
    ring.slots = 40;  // room for NVDEC's first frames past the wave
    FrameOptions o = ring_options(ring, false, 4, 2);
    o.cpu_head_lanes = 8;
    FrameStream dev(f, o);
    ring.made.at(0)->gate_lanes_from = 2;
    dev.start(true);
    EXPECT_EQ(dev.head_lanes(), 8);
    EXPECT_EQ(dev.head_frames(), 64);  // 8 segments of two batches
    expect_each_frame_once(dev, want);
    EXPECT_EQ(ring.made[0]->violations.load(), 0);
    EXPECT_EQ(ring.made[0]->frames_from(0) + ring.made[0]->frames_from(1), 36);
}

// A head may hold the whole video (a segment a lane: fewer segments than lanes report as many
// lanes), and an error of one of its lanes reaches the reader.
TEST_F(DecoderChoice, NvdecsCpuHeadMayHoldTheWholeVideoAndReportsItsErrors) {
    for (const int step : {6, 9}) {  // 8 and 5 sampled frames, each in a GOP of its own
        SCOPED_TRACE("every " + std::to_string(step) + "th frame");
        FrameStream cpu(video(), options("cpu", 4, 1));
        cpu.keep_every(step);
        const FramesByPosition want = frames_by_position(cpu);
        Ring ring;
        FrameOptions o = ring_options(ring, false, 4, 2);
        o.cpu_head_lanes = 8;
        FrameStream dev(video(), o);
        dev.keep_every(step);
        dev.start(true);
        EXPECT_EQ(dev.head_lanes(), static_cast<int>(want.size()));
        EXPECT_EQ(dev.head_frames(), static_cast<int64_t>(want.size()));
        expect_each_frame_once(dev, want);
        EXPECT_EQ(ring.made[0]->frames_from(0) + ring.made[0]->frames_from(1), 0);
        EXPECT_EQ(ring.made[0]->violations.load(), 0);
    }
    Ring ring;
    FrameOptions o = ring_options(ring, false, 4, 3);
    o.cpu_head_lanes = 4;
    ring.fail_lane = 4;  // the head's second lane
    FrameStream dev(video(), o);
    dev.start(true);
    Tensor rgb;
    std::vector<int64_t> pos;
    EXPECT_THAT(test::error_of([&] {
                    while (dev.next_frames(rgb, pos)) {
                    }
                }),
                HasSubstr("lane 4's copy failed"));
}

// More lanes than 64 (automatic_lanes() on a 128-core host) decode as 64, with the same frames.
TEST_F(DecoderChoice, AtMost64LanesDecodeAtOnce) {
    for (const bool ring_path : {false, true}) {
        SCOPED_TRACE(ring_path ? "device ring" : "host batches");
        Ring ring;
        FrameStream one(video(), options("cpu", 4, 1)),
            many(video(), ring_path ? ring_options(ring, true, 4, 100) : options("cpu", 4, 100));
        EXPECT_EQ(many.lanes(), 64);
        many.start(true);
        if (!ring_path) {
            EXPECT_EQ(expect_same_batches(one, many), 12);
            continue;
        }
        EXPECT_EQ(ring.made.at(0)->shape().lanes, 64);
        Tensor rgb;
        std::vector<int64_t> pos;
        int64_t frames = 0;
        while (many.next_frames(rgb, pos)) frames += static_cast<int64_t>(pos.size());
        EXPECT_EQ(frames, 45);
    }
}

// A lane's error reaches the reader (no hang), whether the batch it waits for is written by one
// lane or, interleaved, by several, and also where the other lanes wait for room in the ring.
TEST_F(DecoderChoice, ALanesErrorReachesTheReaderInEitherOrder) {
    for (const bool nvdec_head : {false, true})
        for (const bool any_order : {false, true})
            for (const int fail_at : {0, 5, 30}) {
                SCOPED_TRACE(std::string(nvdec_head ? "NVDEC with a CPU head, " : "CPU lanes, ") +
                             (any_order ? "any order" : "in order") + ", failing at frame " + std::to_string(fail_at));
                Ring ring;
                ring.slots = 3;
                ring.fail_at = fail_at;
                FrameOptions o = ring_options(ring, !nvdec_head, 4, 3);
                o.cpu_head_lanes = nvdec_head ? 4 : 0;
                FrameStream dev(video(), o);
                dev.start(any_order);
                Tensor rgb;
                std::vector<int64_t> pos;
                int batches = 0;
                EXPECT_THAT(test::error_of([&] {
                                while (dev.next_frames(rgb, pos)) ++batches;
                            }),
                            HasSubstr("host frames: the copy failed"));
                EXPECT_LE(batches * 4, fail_at);
            }
}

// Where the ring would cost the video (the runtime's answer: a lower plan under --gpu-memory), the
// CPU decoders' pictures stay on the host, with the host path's lanes.
TEST_F(DecoderChoice, CpuLanesKeepThePicturesOnTheHostWhereTheRingWouldCostTheVideo) {
    std::vector<DeviceFramesShape> asked;
    Ring ring;
    FrameOptions o = options("cpu", 4, 3);
    o.device_frames = ring.maker();
    o.cpu_to_device = true;
    o.ring_cost = [&](const VideoInfo&, int64_t, const DeviceFramesShape& shape) {
        asked.push_back(shape);
        return std::string("it would lower the plan");
    };
    FrameStream costly(video(), o), cpu(video(), options("cpu", 4, 3));
    EXPECT_TRUE(ring.made.empty());
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_EQ(asked[0].lanes, 3);
    EXPECT_EQ(asked[0].lane_outside_bytes, 0u);
    EXPECT_EQ(costly.lanes(), cpu.lanes());
    EXPECT_EQ(expect_same_batches(cpu, costly), 12);
}

// ready(): false only while the lanes are still decoding the next batch; once it says true,
// next_frames() has that batch, on the host path and the device path alike, and at the end.
TEST_F(DecoderChoice, ReadySaysWhenTheNextBatchIsDecoded) {
    for (bool to_device : {false, true}) {
        SCOPED_TRACE(to_device ? "device ring" : "host batches");
        Ring ring;
        FrameStream s(video(), to_device ? ring_options(ring, false, 4, 3) : options("cpu", 4, 3));
        s.start();
        Tensor rgb;
        std::vector<int64_t> pos;
        int batches = 0;
        for (;;) {
            const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (!s.ready() && std::chrono::steady_clock::now() < give_up)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            ASSERT_TRUE(s.ready()) << "batch " << batches;
            const int64_t decoded = s.decoded_frames();
            if (!s.next_frames(rgb, pos)) break;
            EXPECT_EQ(pos.size(), batches < 11 ? 4u : 1u);
            // What next_frames() handed out was decoded before it was called.
            EXPECT_GE(decoded, static_cast<int64_t>(pos.back()) + 1);
            ++batches;
        }
        EXPECT_EQ(batches, 12);  // 45 frames, 4 a batch
        EXPECT_TRUE(s.ready());
    }
}

TEST_F(DecoderChoice, AStreamWithoutExactKeyframesFillsTheRingFromTheReadersThread) {
    // MPEG-TS joined from two pieces of different sizes, whose frames are scaled to the first's.
    // Timestamps that start again midway: no keyframe can be sought, so one sequential decoder
    // on the reader's thread (lane 0 of the ring). Timestamps that go on rising: the lanes seek
    // the keyframes by their bytes and fill the ring as with MP4.
    const std::string a = dir_->file("a.ts"), b = dir_->file("b.ts"), later = dir_->file("later.ts");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=10:d=4 -c:v libx264 -preset ultrafast -g 10 " + a);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=64x48:r=10:d=4,hue=h=90 -c:v libx264 -preset ultrafast -g 10 " + b);
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=64x48:r=10:d=4,hue=h=90 -c:v libx264 -preset ultrafast -g 10 "
                     "-output_ts_offset 4 " + later);
    const std::string restarting = dir_->file("restarting.ts"), rising = dir_->file("rising.ts");
    test::join_files({a, b}, restarting);
    test::join_files({a, later}, rising);
    for (const std::string& ts : {restarting, rising}) {
        const bool sequential = ts == restarting;
        Ring ring;
        FrameStream cpu(ts, options("cpu", 3, 4)), dev(ts, ring_options(ring, false, 3, 4));
        ASSERT_EQ(ring.made.size(), 1u);
        EXPECT_EQ(ring.made[0]->shape().lanes, sequential ? 1 : 4) << ts;
        EXPECT_EQ(expect_same_batches(cpu, dev), 3) << ts;  // 8 frames, 3 a batch
        if (sequential) EXPECT_EQ(dev.lane_segments(), 0);
        else EXPECT_GE(dev.lane_segments(), 2);
        EXPECT_EQ(ring.made[0]->violations.load(), 0) << ts;
    }
}

TEST_F(DecoderChoice, TheDevicePathKeepsTheLanesHostMemoryWouldCut) {
    // 1080p in batches of 40: two segments' pictures fill the host path's 1 GiB, so it
    // decodes with 2 lanes; to the device nothing waits on the host and all 6 run.
    const std::string big = dir_->file("1080p.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc=s=1920x1080:r=2:d=8 -c:v libx264 -preset ultrafast -g 4 -pix_fmt yuv420p " +
                     big);
    Ring ring;
    FrameStream dev(big, ring_options(ring, false, 40, 6));
    ASSERT_EQ(ring.made.size(), 1u);
    EXPECT_EQ(ring.made[0]->shape().lanes, 6);
    EXPECT_EQ(ring.made[0]->shape().slots, 3);  // 512 MiB holds two batches of 40: three is the least
}

TEST_F(DecoderChoice, ThinnedSamplingAndTheHostOnlyCallsOnTheDevicePath) {
    Ring ring;
    FrameOptions o = options("auto", 3, 2);
    o.device_frames = ring.maker();
    o.software_to_device = true;
    FrameStream cpu(video(), options("cpu", 3, 2)), dev(video(), o);
    cpu.keep_every(4);
    dev.keep_every(4);
    EXPECT_EQ(expect_same_batches(cpu, dev), 4);  // 12 frames
    Tensor t;
    std::vector<int64_t> p;
    EXPECT_THROW(dev.next(t, p), Error);  // host pixels: only from the CPU path
}

// H.264 on the device path restarts only at IDR keyframes, and there without a flush (NVDEC's
// session would be set up anew at each flush); through other keyframes (an open GOP) it
// decodes on: more frames decoded, the same pixels. HEVC restarts with a flush, which keeps its
// session. A lane's decoder goes on to its next segment: one decoder a lane where it restarts.
TEST_F(DecoderChoice, H264OnTheDevicePathRestartsOnlyAtIdrKeyframesKeepingItsDecoder) {
    struct Case {
        const char* name;
        const char* args;
        bool restarts;
    };
    const Case cases[] = {
        {"g45.mp4", "-c:v libx264 -preset veryfast -g 45 -bf 3", true},
        {"g45.ts", "-c:v libx264 -preset veryfast -g 45 -bf 3", true},
        {"open.mkv", "-c:v libx264 -preset veryfast -g 40 -x264-params open-gop=1", false},
        {"hevc.mp4", "-c:v libx265 -preset veryfast -g 45 -tag:v hvc1 -x265-params log-level=error", true},
    };
    for (const Case& c : cases) {
        const std::string f = dir_->file(c.name);
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=128x72:r=30:d=20 " + std::string(c.args) + " " + f);
        for (int lanes : {1, 2, 3}) {
            for (bool cpu_lanes : {false, true}) {
                SCOPED_TRACE(std::string(c.name) + ", lanes " + std::to_string(lanes) + (cpu_lanes ? ", CPU" : ""));
                Ring ring;
                FrameStream cpu(f, options("cpu", 4, lanes)), dev(f, ring_options(ring, cpu_lanes, 4, lanes));
                dev.start();
                EXPECT_EQ(expect_same_batches(cpu, dev), 5);  // 20 sampled frames, 4 a batch
                // The CPU decoders' lanes restart where the host path's do (decord's flush),
                // open GOPs included.
                if (c.restarts || cpu_lanes) {
                    EXPECT_EQ(dev.decoded_frames(), cpu.decoded_frames());
                    // Never more than a decoder a lane (fewer where a lane came free for the next segment).
                    if (lanes > 1) {
                        EXPECT_GT(dev.lane_segments(), lanes);
                    }
                    EXPECT_GE(dev.decoders_opened(), 1);
                    EXPECT_LE(dev.decoders_opened(), lanes);
                } else {
                    EXPECT_GT(dev.decoded_frames(), cpu.decoded_frames() + 20);
                }
            }
        }
    }
}

TEST_F(DecoderChoice, NvdecWithoutAGpuBackendIsAnErrorAndAutoStaysQuiet) {
    std::vector<std::string> notices;
    FrameOptions o = options("nvdec", 4, 1);
    o.notice = [&](const std::string& s) { notices.push_back(s); };
    try {
        FrameStream s(video(), o);
        ADD_FAILURE() << "decoder nvdec without a GPU backend was accepted";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("NVDEC needs the CUDA backend"));
        EXPECT_THAT(e.what(), HasSubstr("h264.mp4"));
    }
    o.decoder = "auto";
    FrameStream s(video(), o);
    EXPECT_STREQ(s.decoder(), "cpu");
    EXPECT_TRUE(notices.empty());  // the CPU backend: nothing falls back
    o.decoder = "gpu";
    EXPECT_THROW({ FrameStream bad(video(), o); }, Error);
}

TEST_F(DecoderChoice, AutoFallsBackToTheCpuWithOneNoticeWhenNvdecCannotStart) {
    // A GPU backend's ring, but no NVIDIA driver here: FFmpeg cannot load libcuda (or, on a
    // machine with it and no libnvcuvid, NVDEC cannot set up), so the file decodes on the CPU.
    Ring ring;
    std::vector<std::string> notices;
    FrameOptions o = options("auto", 4, 2);
    o.device_frames = ring.maker();
    o.notice = [&](const std::string& s) { notices.push_back(s); };
    FrameStream dev(video(), o), cpu(video(), options("cpu", 4, 2));
    EXPECT_STREQ(dev.decoder(), "cpu");
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_THAT(notices[0], HasSubstr("video '" + video() + "': frames decoded on the CPU: "));
    EXPECT_THAT(notices[0], testing::AnyOf(HasSubstr("CUDA"), HasSubstr("NVDEC")));
    EXPECT_EQ(expect_same_batches(cpu, dev), 12);
    // NVDEC was tried with its sessions' memory counted.
    ASSERT_EQ(ring.asked.size(), 1u);
    EXPECT_EQ(ring.asked[0].lane_outside_bytes, nvdec_session_bytes(96, 64, AV_PIX_FMT_YUV420P));

    // With cpu_to_device the CPU's lanes then fill a ring of their own (no sessions counted).
    o.cpu_to_device = true;
    {
        FrameStream ringed(video(), o), host(video(), options("cpu", 4, 2));
        EXPECT_STREQ(ringed.decoder(), "cpu");
        EXPECT_EQ(notices.size(), 2u);
        ASSERT_EQ(ring.asked.size(), 3u);
        EXPECT_EQ(ring.asked[2].lane_outside_bytes, 0u);
        ringed.start();
        EXPECT_EQ(expect_same_batches(host, ringed), 12);
        EXPECT_EQ(ring.made.back()->frames_put.load(), 45);
    }

    o.decoder = "nvdec";
    try {
        FrameStream s(video(), o);
        ADD_FAILURE() << "decoder nvdec was accepted where NVDEC cannot start";
    } catch (const Error& e) {
        EXPECT_THAT(e.what(), HasSubstr("decoder nvdec cannot take it: "));
    }
}

TEST_F(DecoderChoice, CodecsWhoseNvdecPicturesMayDifferStayOnTheCpu) {
    const std::string mpeg2 = dir_->file("mpeg2.mpg");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=5:d=3 -c:v mpeg2video " + mpeg2);
    Ring ring;
    std::vector<std::string> notices;
    FrameOptions o = options("auto", 4, 1);
    o.device_frames = ring.maker();
    o.notice = [&](const std::string& s) { notices.push_back(s); };
    FrameStream s(mpeg2, o);
    EXPECT_STREQ(s.decoder(), "cpu");
    EXPECT_TRUE(ring.made.empty());  // refused before any device memory was asked for
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_THAT(notices[0], HasSubstr("NVDEC's mpeg2video pictures may differ from FFmpeg's"));
}

// "auto" asks what NVDEC's device memory would cost the video before it takes any (the
// runtime's answer: a lower plan under --gpu-memory); "nvdec" takes it regardless.
TEST_F(DecoderChoice, AutoLeavesNvdecWhereItsMemoryWouldCostTheVideo) {
    struct Asked {
        int64_t sampled = 0;
        DeviceFramesShape ring;
        std::string path;
    };
    std::vector<Asked> asked;
    std::string answer = "it would lower the plan";
    Ring ring;
    std::vector<std::string> notices;
    FrameOptions o = options("auto", 4, 2);
    o.device_frames = ring.maker();
    o.software_to_device = true;
    o.notice = [&](const std::string& s) { notices.push_back(s); };
    o.ring_cost = [&](const VideoInfo& info, int64_t sampled, const DeviceFramesShape& shape) {
        asked.push_back({sampled, shape, info.path});
        return answer;
    };
    {
        FrameStream costly(video(), o), cpu(video(), options("cpu", 4, 2));
        EXPECT_STREQ(costly.decoder(), "cpu");
        EXPECT_TRUE(ring.made.empty());  // nothing taken on the device
        ASSERT_EQ(notices.size(), 1u);
        EXPECT_EQ(notices[0], "video '" + video() + "': frames decoded on the CPU: it would lower the plan");
        ASSERT_EQ(asked.size(), 1u);
        EXPECT_EQ(asked[0].sampled, 45);
        EXPECT_EQ(asked[0].path, video());
        EXPECT_EQ(asked[0].ring.lanes, 2);
        EXPECT_EQ(asked[0].ring.batch, 4);
        EXPECT_EQ(asked[0].ring.device_bytes(), size_t(asked[0].ring.slots) * 4 * 64 * 96 * 3);
        EXPECT_EQ(expect_same_batches(cpu, costly), 12);
    }
    answer.clear();  // costs nothing: the ring asked about is the one taken
    {
        FrameStream free_of_cost(video(), o);
        ASSERT_EQ(ring.made.size(), 1u);
        EXPECT_EQ(asked.size(), 2u);
        EXPECT_EQ(ring.made[0]->shape().device_bytes(), asked[1].ring.device_bytes());
        EXPECT_EQ(notices.size(), 1u);
    }
    answer = "it would lower the plan";
    o.decoder = "nvdec";  // asked for by name: taken, not asked about
    FrameStream named(video(), o);
    EXPECT_EQ(asked.size(), 2u);
    EXPECT_EQ(ring.made.size(), 2u);
}

// The estimate the memory cap counts for each NVDEC lane covers what the sessions took on an
// H100 (bench/RESULTS.md, 2026-12-06), and grows with the pictures' size and depth.
TEST(NvdecSessionBytes, CoverWhatWasMeasuredAndGrowWithThePictures) {
    constexpr size_t MiB = size_t(1) << 20;
    EXPECT_GE(nvdec_session_bytes(1280, 720, AV_PIX_FMT_YUV420P), 50 * MiB);
    EXPECT_GE(nvdec_session_bytes(3840, 2160, AV_PIX_FMT_YUV420P), 214 * MiB);
    const size_t hd = nvdec_session_bytes(1920, 1080, AV_PIX_FMT_YUV420P);
    EXPECT_GT(nvdec_session_bytes(1920, 1080, AV_PIX_FMT_YUV420P10LE), hd);
    EXPECT_GT(hd, nvdec_session_bytes(1280, 720, AV_PIX_FMT_YUV420P));
    EXPECT_EQ(nvdec_session_bytes(1280, 720, AV_PIX_FMT_NONE), nvdec_session_bytes(1280, 720, AV_PIX_FMT_YUV420P));
}

TEST(NvdecRefusal, NamesCodecsAndFormatsNvdecDoesNotTakeExactly) {
    // Decoding that is bit-exact by standard (AV1 without film grain), in 4:2:0 at 8, 10 or 12
    // bits: NVDEC may try.
    for (AVCodecID c : {AV_CODEC_ID_H264, AV_CODEC_ID_HEVC, AV_CODEC_ID_VP9, AV_CODEC_ID_AV1})
        for (AVPixelFormat f : {AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_NONE})
            EXPECT_EQ(nvdec_refusal(c, f, false), "") << avcodec_get_name(c) << " " << f;
    EXPECT_THAT(nvdec_refusal(AV_CODEC_ID_MPEG4, AV_PIX_FMT_YUV420P, false), HasSubstr("mpeg4 pictures may differ"));
    EXPECT_THAT(nvdec_refusal(AV_CODEC_ID_H264, AV_PIX_FMT_YUV422P, false), HasSubstr("its frames are yuv422p"));
    EXPECT_THAT(nvdec_refusal(AV_CODEC_ID_HEVC, AV_PIX_FMT_YUV444P10LE, false), HasSubstr("yuv444p10le"));
    EXPECT_THAT(nvdec_refusal(AV_CODEC_ID_PRORES, AV_PIX_FMT_YUV422P10LE, false),
                HasSubstr("NVDEC does not decode prores"));
    // AV1's default decoder is libdav1d; NVDEC goes through libavcodec's own av1 decoder.
    ASSERT_NE(nvdec_decoder(AV_CODEC_ID_AV1), nullptr);
    EXPECT_STREQ(nvdec_decoder(AV_CODEC_ID_AV1)->name, "av1");
    EXPECT_STREQ(nvdec_decoder(AV_CODEC_ID_H264)->name, "h264");
}

}  // namespace
}  // namespace vidi::media
