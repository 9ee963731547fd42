// AudioPieces: the audio decoded on its own thread and handed out in whole 30 s pieces holds
// the samples of one load_audio_samples(), piece for piece; a file without audio has none, an
// unreadable one says so when asked, and dropping it mid-way stops the decoding.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "core/log_mel.h"
#include "media/audio_pieces.h"
#include "media/media_test_util.h"

namespace vidi::media {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

void wait_for_end(const AudioPieces& a) {
    while (!a.finished()) a.wait_beyond(a.ready(), milliseconds(100));
}

bool same_samples(const Tensor& got, const Tensor& want, int64_t from) {
    return got.numel() <= want.numel() - from &&
           std::memcmp(got.data<float>(), want.data<float>() + from, got.numel() * sizeof(float)) == 0;
}

TEST(AudioPieces, EveryPieceHoldsTheSamplesOfTheWholeDecode) {
    test::TempDir tmp("audio-pieces");
    const std::string f = tmp.file("95s.m4a");  // 3 whole pieces and one of 5 s
    test::ffmpeg_cli("-f lavfi -i sine=f=440:d=95:r=44100 -c:a aac " + f);
    const AudioSamples want = load_audio_samples(f);
    ASSERT_TRUE(want.present);
    ASSERT_EQ(mel_pieces(want.pcm.numel()), 4);

    AudioPieces a(f, MediaInputs::Any, 2);
    int64_t seen = 0;
    while (!a.finished()) {  // while decoding: whole pieces only, never fewer than before
        const int64_t ready = a.ready();
        EXPECT_GE(ready, seen);
        EXPECT_LE(ready * kPieceSamples, want.pcm.numel());
        if (ready > 0) {
            EXPECT_TRUE(same_samples(a.pieces(ready - 1, 1), want.pcm, (ready - 1) * kPieceSamples));
        }
        seen = ready;
        a.wait_beyond(ready, milliseconds(100));
    }
    ASSERT_TRUE(a.present());
    EXPECT_EQ(a.ready(), 4);
    EXPECT_EQ(a.samples(), want.pcm.numel());
    const Tensor first = a.pieces(0, 2), last = a.pieces(2, 2);
    EXPECT_EQ(first.numel(), 2 * kPieceSamples);
    EXPECT_EQ(last.numel(), want.pcm.numel() - 2 * kPieceSamples);  // the short last piece as it is
    EXPECT_TRUE(same_samples(first, want.pcm, 0));
    EXPECT_TRUE(same_samples(last, want.pcm, 2 * kPieceSamples));
    const AudioSamples all = a.all();
    EXPECT_EQ(all.mel_frames, want.mel_frames);
    EXPECT_TRUE(same_samples(all.pcm, want.pcm, 0));
    // A range across two blocks, or past the pieces there are, is refused.
    EXPECT_THAT(test::error_of([&] { a.pieces(1, 2); }), testing::HasSubstr("not ready pieces of one block"));
    EXPECT_THAT(test::error_of([&] { a.pieces(4, 1); }), testing::HasSubstr("not ready pieces of one block"));
}

TEST(AudioPieces, AVideoWithoutAudioHasNone) {
    test::TempDir tmp("audio-pieces-none");
    const std::string f = tmp.file("silent.mp4");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=64x48:r=10:d=2 -c:v libx264 " + f);
    AudioPieces a(f, MediaInputs::Any, 4);
    wait_for_end(a);
    EXPECT_FALSE(a.present());
    EXPECT_EQ(a.ready(), 0);
}

TEST(AudioPieces, AnUnreadableFileIsAnErrorNamingItWhenAsked) {
    test::TempDir tmp("audio-pieces-bad");
    const std::string f = tmp.file("not-a-video.mp4");
    test::write_bytes(f, std::vector<uint8_t>(1000, 0x5a));
    AudioPieces a(f, MediaInputs::Any, 4);
    wait_for_end(a);
    EXPECT_THAT(test::error_of([&] { a.present(); }), testing::HasSubstr("not-a-video.mp4"));
    // Asked before its end, it says so rather than guessing.
    AudioPieces b(f, MediaInputs::Any, 4);
    if (!b.finished()) {
        EXPECT_THAT(test::error_of([&] { b.samples(); }), testing::HasSubstr("before the decoding"));
    }
}

TEST(AudioPieces, DroppedMidwayItStopsDecoding) {
    test::TempDir tmp("audio-pieces-long");
    const std::string f = tmp.file("long.wav");  // 40 minutes: decoding it whole takes a while
    test::ffmpeg_cli("-f lavfi -i sine=f=440:d=2400:r=48000 -ac 2 -c:a pcm_s16le " + f);
    const auto w0 = steady_clock::now();
    ASSERT_TRUE(load_audio_samples(f).present);
    const auto whole = steady_clock::now() - w0;

    auto a = std::make_unique<AudioPieces>(f, MediaInputs::Any, 4);
    while (a->ready() == 0 && !a->finished()) a->wait_beyond(0, milliseconds(100));
    ASSERT_FALSE(a->finished());
    const auto d0 = steady_clock::now();
    a.reset();
    const auto dropped = steady_clock::now() - d0;
    const auto ms = [](auto d) { return std::chrono::duration_cast<milliseconds>(d).count(); };
    EXPECT_LT(dropped * 4, whole) << "dropping took " << ms(dropped) << " ms, a whole decode " << ms(whole) << " ms";
}

}  // namespace
}  // namespace vidi::media
