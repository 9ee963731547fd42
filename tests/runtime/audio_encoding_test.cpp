// AudioEncoding: the audio taken a batch of 30 s pieces at a time while it is still decoded,
// placed once its length is known, gives the tokens and media K/V of the whole audio's log-mel
// through MediaTokenizer::audio_tokens, bit for bit: whether the plan expected as many tokens,
// fewer (the held rows grow) or far more (an audio shorter than its video), with the tokens
// on the device or on the host, in each K/V format.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "core/log_mel.h"
#include "media/media.h"
#include "runtime/audio_encoding.h"
#include "runtime/loaded_tiny.h"
#include "runtime/tiny_decoder.h"
#include "runtime/video_encoding.h"

namespace vidi::test {
namespace {

using runtime::AudioEncoding;

void ffmpeg(const std::string& args) {
    std::string out;
    ASSERT_EQ(0, run_command("ffmpeg -nostdin -v error -y " + args, &out)) << out;
}

class AudioEncodingTest : public testing::TestWithParam<std::string> {};

TEST_P(AudioEncodingTest, PiecesTakenAsTheyAreDecodedGiveTheBitsOfTheWholeAudio) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    Backend& be = m.backend();
    TempDir tmp("audio-encoding");
    const std::string f = tmp.file("130s.m4a");  // two batches of pieces: four whole ones, then 10 s
    ffmpeg("-f lavfi -i sine=f=440:d=130:r=44100 -f lavfi -i anoisesrc=d=130:a=0.1:r=44100 "
           "-filter_complex amix=inputs=2 -c:a aac " + f);
    const media::AudioSamples all = media::load_audio_samples(f);
    ASSERT_TRUE(all.present);
    ASSERT_EQ(mel_pieces(all.pcm.numel()), 5);
    const int bins = m.config().audio.mel_bins;
    const Tensor want = m.media().audio_tokens(be.log_mel(all.pcm, bins), all.mel_frames);
    const int64_t T = want.dim(0);
    ASSERT_EQ(T, m.media().audio_token_count(all.mel_frames));

    for (const QuantFormat kv : {QuantFormat{}, QuantFormat{8, 0}}) {
        const model::MediaKV want_kv = m.decoder().encode_media(want, kv);
        for (const bool on_host : {false, true})
            for (const int64_t expected : {T, int64_t{10}, 4 * T}) {
                SCOPED_TRACE(kv.name() + (on_host ? ", tokens on the host" : ", tokens on the device") +
                             ", expected " + std::to_string(expected) + " of " + std::to_string(T));
                AudioEncoding a(m, f, expected, kv, on_host, nullptr, std::chrono::steady_clock::now());
                a.finish();
                ASSERT_TRUE(a.done());
                EXPECT_EQ(a.tokens().dim(0), T);
                EXPECT_TRUE(same_bytes(be, a.tokens(), want));
                ASSERT_TRUE(a.kv());
                EXPECT_TRUE(same_kv(be, *a.kv(), want_kv));
                EXPECT_EQ(a.tokens().on_host(), on_host || be.device() == Device::cpu);
                EXPECT_GE(a.first_piece_s(), 0.0);
                EXPECT_GE(a.samples_s(), a.first_piece_s());
            }
    }
}

TEST_P(AudioEncodingTest, TheCaptureGetsTheWholeAudiosLogMel) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    const std::string f = golden_path("synth.mp4");
    const media::AudioSamples all = media::load_audio_samples(f);
    runtime::MediaCapture capture;
    AudioEncoding a(m, f, 1, {}, false, &capture, std::chrono::steady_clock::now());
    a.finish();
    const Tensor want = log_mel_pieces(all.pcm.data<float>(), all.pcm.numel(), m.config().audio.mel_bins);
    EXPECT_EQ(capture.mel_frames, all.mel_frames);
    ASSERT_EQ(capture.mel.shape(), want.shape());
    EXPECT_EQ(std::memcmp(capture.mel.raw(), want.raw(), want.nbytes()), 0);
}

TEST_P(AudioEncodingTest, AVideoWithoutAudioGivesNoTokens) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    TempDir tmp("audio-encoding-none");
    const std::string f = tmp.file("silent.mp4");
    ffmpeg("-f lavfi -i testsrc2=s=64x48:r=10:d=3 -c:v libx264 " + f);
    AudioEncoding a(m, f, 30, {}, false, nullptr, std::chrono::steady_clock::now());
    a.finish();
    EXPECT_TRUE(a.done());
    EXPECT_FALSE(a.tokens().defined());
    EXPECT_FALSE(a.kv());
}

TEST_P(AudioEncodingTest, AnAudioTooShortForTwoTokensIsAnError) {
    runtime::LoadedModel& m = loaded_tiny(GetParam());
    TempDir tmp("audio-encoding-short");
    const std::string f = tmp.file("short.wav");  // 0.05 s: 5 mel frames
    ffmpeg("-f lavfi -i sine=f=440:d=0.05 -c:a pcm_s16le " + f);
    AudioEncoding a(m, f, 1, {}, false, nullptr, std::chrono::steady_clock::now());
    EXPECT_THAT(error_of([&] { a.finish(); }),
                testing::HasSubstr(f + ": its audio lasts 0.05 s (5 mel frames), which gives fewer than two audio tokens"));
}

INSTANTIATE_TEST_SUITE_P(Backends, AudioEncodingTest, testing::ValuesIn(backends_present()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace vidi::test
