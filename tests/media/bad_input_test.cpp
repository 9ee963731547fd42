// Bad and unusual inputs: each is a clear vidi::Error naming the file, or a defined
// result; never a crash. Test files are made with the ffmpeg CLI in a TempDir.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <filesystem>

#include "media/media.h"
#include "media/media_test_util.h"

namespace vidi::media {
namespace {

using test::error_of;

using ::testing::AllOf;
using ::testing::HasSubstr;


// Reads every batch; checks shapes and that all values are in [-1, 1]. Returns frames.
int64_t drain_frames(FrameStream& s) {
    Tensor batch;
    std::vector<int64_t> pos;
    int64_t n = 0;
    while (s.next(batch, pos)) {
        const float* v = batch.data<float>();
        for (int64_t i = 0; i < batch.numel(); ++i) {
            if (!(v[i] >= -1.0f && v[i] <= 1.0f)) throw std::runtime_error("pixel value out of range");
        }
        n += batch.dim(0);
    }
    return n;
}

std::string synth() { return test::golden_path("synth.mp4"); }

TEST(BadInput, MissingFile) {
    const std::string f = "/nonexistent/dir/clip.mp4";
    EXPECT_THAT(error_of([&] { probe(f); }), AllOf(HasSubstr(f), HasSubstr("does not exist")));
    EXPECT_THAT(error_of([&] { FrameStream s(f, 384); }), HasSubstr("does not exist"));
    EXPECT_THAT(error_of([&] { load_audio_features(f); }), HasSubstr("does not exist"));
}

TEST(BadInput, TextFileIsNotAVideo) {
    test::TempDir tmp("text");
    for (const char* name : {"notes.mp4", "notes.txt"}) {
        const std::string f = tmp.file(name);
        test::write_bytes(f, std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', ' ', 'v', 'i', 'd', 'i', '\n'});
        const std::string msg = error_of([&] { probe(f); });
        EXPECT_THAT(msg, HasSubstr(f)) << name;
        EXPECT_THAT(error_of([&] { FrameStream s(f, 384); }), HasSubstr(f)) << name;
    }
}

TEST(BadInput, DirectoryAndEmptyFile) {
    test::TempDir tmp("empty");
    EXPECT_THAT(error_of([&] { probe(tmp.path()); }), HasSubstr("directory"));
    const std::string f = tmp.file("empty.mp4");
    test::write_bytes(f, {});
    EXPECT_THAT(error_of([&] { probe(f); }), AllOf(HasSubstr(f), HasSubstr("empty")));
    EXPECT_THAT(error_of([&] { load_audio_features(f); }), HasSubstr("empty"));
}

TEST(BadInput, ContainerWithoutFrames) {
    test::TempDir tmp("zero");
    const std::string f = tmp.file("zero.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x120:r=30:d=1 -frames:v 0 -c:v libx264 " + f);
    const std::string msg = error_of([&] { probe(f); });
    EXPECT_THAT(msg, HasSubstr(f));
    EXPECT_TRUE(msg.find("no video stream") != std::string::npos || msg.find("no frames") != std::string::npos)
        << msg;
}

TEST(BadInput, TruncatedFileYieldsTheFramesThatExist) {
    // synth.mp4 keeps its index at the front: half the file still opens, with fewer
    // frames than the header claims.
    test::TempDir tmp("trunc");
    std::vector<uint8_t> bytes = test::read_bytes(synth());
    bytes.resize(bytes.size() / 2);
    const std::string f = tmp.file("half.mp4");
    test::write_bytes(f, bytes);
    const VideoInfo info = probe(f);
    EXPECT_GT(info.frame_count, 0);
    EXPECT_LT(info.frame_count, 360);
    FrameStream s(f, 64);
    EXPECT_EQ(s.total_frames(), static_cast<int64_t>(sampled_frame_indices(s.info()).size()));
    EXPECT_EQ(drain_frames(s), s.total_frames());
    // The audio of a truncated file decodes to what is there (or reports an error).
    const std::string audio_err = error_of([&] { load_audio_features(f); });
    EXPECT_TRUE(audio_err.empty() || audio_err.find(f) != std::string::npos) << audio_err;
}

TEST(BadInput, TruncatedIndexIsAnError) {
    test::TempDir tmp("head");
    std::vector<uint8_t> bytes = test::read_bytes(synth());
    bytes.resize(200);  // inside the moov box
    const std::string f = tmp.file("head.mp4");
    test::write_bytes(f, bytes);
    EXPECT_THAT(error_of([&] { FrameStream s(f, 64); }), HasSubstr(f));
}

TEST(BadInput, GarbledStreamStillGivesEverySampledFrame) {
    test::TempDir tmp("garble");
    std::vector<uint8_t> bytes = test::read_bytes(synth());
    uint32_t h = 12345;
    for (size_t i = bytes.size() / 3; i < bytes.size() * 2 / 3; i += 7) {  // damage the middle third
        h = h * 1664525u + 1013904223u;
        bytes[i] = static_cast<uint8_t>(h >> 24);
    }
    const std::string f = tmp.file("garbled.mp4");
    test::write_bytes(f, bytes);
    try {
        FrameStream s(f, 64, 4);
        EXPECT_EQ(s.total_frames(), 12);
        EXPECT_EQ(drain_frames(s), 12);
    } catch (const Error& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr(f));
    }
    const std::string audio_err = error_of([&] { load_audio_features(f); });
    EXPECT_TRUE(audio_err.empty() || audio_err.find(f) != std::string::npos) << audio_err;
}

TEST(BadInput, OneFrameVideoWithoutAudio) {
    test::TempDir tmp("one");
    const std::string f = tmp.file("one.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=96x64:r=25 -frames:v 1 -c:v libx264 -pix_fmt yuv420p " + f);
    const VideoInfo info = probe(f);
    EXPECT_EQ(info.frame_count, 1);
    EXPECT_FALSE(info.has_audio);
    FrameStream s(f, 48);
    EXPECT_EQ(s.total_frames(), 1);
    EXPECT_EQ(drain_frames(s), 1);
    const AudioFeatures af = load_audio_features(f);
    EXPECT_FALSE(af.present);
    EXPECT_EQ(af.samples, 0);
    EXPECT_EQ(af.mel_frames, 0);
    EXPECT_FALSE(af.mel.defined());
}

TEST(BadInput, AudioOnlyFile) {
    test::TempDir tmp("aonly");
    const std::string f = tmp.file("tone.m4a");
    test::ffmpeg_cli("-f lavfi -i sine=f=440:d=3 -c:a aac " + f);
    EXPECT_THAT(error_of([&] { probe(f); }), AllOf(HasSubstr(f), HasSubstr("no video stream")));
    EXPECT_THAT(error_of([&] { FrameStream s(f, 384); }), HasSubstr("no video stream"));
    const AudioFeatures af = load_audio_features(f);  // the audio itself is fine
    EXPECT_TRUE(af.present);
    EXPECT_NEAR(static_cast<double>(af.samples), 3.0 * kSampleRate, 0.05 * kSampleRate);
}

TEST(BadInput, AbsurdDimensionsAreRefused) {
    test::TempDir tmp("huge");
    const std::string f = tmp.file("wide.nut");
    test::ffmpeg_cli("-f lavfi -i color=c=red:s=20000x8:r=1:d=1 -c:v rawvideo -pix_fmt gray " + f);
    EXPECT_THAT(error_of([&] { probe(f); }), AllOf(HasSubstr(f), HasSubstr("absurd frame size 20000x8")));
    // Each side allowed, the area not: a 1.5 MB file whose header claimed 16000x16000 decoded
    // for 50 s in 7 GB.
    const std::string area = tmp.file("area.mkv");
    test::ffmpeg_cli("-f lavfi -i color=c=red:s=9000x8000:r=1:d=1 -c:v ffv1 " + area);
    EXPECT_THAT(error_of([&] { probe(area); }), AllOf(HasSubstr(area), HasSubstr("absurd frame size 9000x8000")));
}

// A FIFO (or a device) named as the video: refused at once, as not a regular file (it was
// called "empty (0 bytes)").
TEST(BadInput, AFifoIsNotAVideoFile) {
    test::TempDir tmp("fifo");
    const std::string f = tmp.file("pipe.mp4");
    ASSERT_EQ(mkfifo(f.c_str(), 0600), 0);
    EXPECT_THAT(error_of([&] { probe(f); }), AllOf(HasSubstr(f), HasSubstr("not a regular file")));
    EXPECT_THAT(error_of([&] { load_audio_features("/dev/null"); }), HasSubstr("not a regular file"));
}

// A raw H.264 stream has no container duration (ffprobe says N/A): its frames at its rate, so
// that answers (fractions of the duration) are not all 00:00:00.
TEST(BadInput, ARawStreamLastsItsFramesAtItsRate) {
    test::TempDir tmp("raw");
    const std::string f = tmp.file("raw.h264");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x120:r=30:d=6 -c:v libx264 -f h264 " + f);
    const VideoInfo info = probe(f);
    EXPECT_EQ(info.frame_count, 180);
    EXPECT_DOUBLE_EQ(info.avg_fps, 30.0);
    EXPECT_DOUBLE_EQ(info.duration, 6.0);
}

TEST(BadInput, TinyFramesAreUpscaled) {
    test::TempDir tmp("tiny");
    const std::string f = tmp.file("tiny.mkv");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=2x2:r=2:d=2 -c:v ffv1 -pix_fmt yuv420p " + f);
    FrameStream s(f, 384);
    EXPECT_EQ(s.total_frames(), 2);  // 4 frames at stride 2
    EXPECT_EQ(drain_frames(s), 2);
}

TEST(BadInput, BadArguments) {
    EXPECT_THAT(error_of([&] { FrameStream s(synth(), 0); }), HasSubstr("image size"));
    EXPECT_THAT(error_of([&] { FrameStream s(synth(), 384, 0); }), HasSubstr("batch size"));
}

}  // namespace
}  // namespace vidi::media
