// Audio front end: samples identical to the ffmpeg CLI, the FFT against a direct DFT,
// log-mel against the float64 golden data (SPEC §2.4-2.6).
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstring>
#include <numbers>
#include <random>

#include "io/safetensors.h"
#include "core/fft.h"
#include "media/media.h"
#include "media/media_test_util.h"

namespace vidi::media {
namespace {

class AudioGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(AudioGolden, SamplesMatchFfmpegCliExactly) {
    const std::string video = test::golden_path(GetParam() + ".mp4");
    test::TempDir tmp("audio");
    test::ffmpeg_cli("-i " + video + " -ac 1 -ar 16000 -f s16le " + tmp.file("a.s16"));
    const std::vector<uint8_t> cli = test::read_bytes(tmp.file("a.s16"));
    const std::vector<int16_t> ours = decode_audio_mono16k(video);
    ASSERT_EQ(ours.size() * 2, cli.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
        const auto want = static_cast<int16_t>(cli[2 * i] | (cli[2 * i + 1] << 8));
        mismatches += ours[i] != want;
    }
    EXPECT_EQ(mismatches, 0u);
}

TEST_P(AudioGolden, MelMatchesReference) {
    const std::string name = GetParam();
    const auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_" + name + ".golden.safetensors"));
    const AudioFeatures af = load_audio_features(test::golden_path(name + ".mp4"));
    ASSERT_TRUE(af.present);
    const Tensor ref = golden->get("mel");
    ASSERT_EQ(af.mel.shape(), ref.shape());
    EXPECT_EQ(af.mel_frames, golden->get("mel_frames").data<int64_t>()[0]);
    const double max_d = test::max_abs_diff(af.mel, ref);
    std::printf("[ info ] %s mel max |d| %.3g\n", name.c_str(), max_d);
    EXPECT_LE(max_d, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Golden, AudioGolden, ::testing::Values("synth", "dummy"));

// The track the ffmpeg CLI takes: a default-flagged track without a single packet must not
// hide the one that has the audio (it gave 0 audio tokens, without a word).
TEST(AudioTrack, ATrackWithPacketsBeatsAnEmptyDefaultOneAsInTheCli) {
    test::TempDir tmp("audio-tracks");
    const std::string f = tmp.file("empty-default.mkv");
    test::ffmpeg_cli("-f lavfi -i testsrc2=s=160x120:r=30:d=4 -f lavfi -i sine=f=440:d=4 -f lavfi -i sine=f=1000:d=4 "
                     "-map 0 -map 1 -map 2 -c:v libx264 -c:a aac -frames:a:0 0 " + f);
    test::ffmpeg_cli("-i " + f + " -ac 1 -ar 16000 -f s16le " + tmp.file("a.s16"));
    const std::vector<uint8_t> cli = test::read_bytes(tmp.file("a.s16"));
    ASSERT_GT(cli.size(), 2u * 3 * kSampleRate);
    const std::vector<int16_t> ours = decode_audio_mono16k(f);
    ASSERT_EQ(ours.size() * 2, cli.size());
    EXPECT_EQ(std::memcmp(ours.data(), cli.data(), cli.size()), 0);
}

TEST(Fft, MatchesDirectDft) {
    std::mt19937 rng(5);
    std::normal_distribution<double> g;
    for (int n : {1, 2, 3, 5, 8, 20, 400}) {
        std::vector<std::complex<double>> in(n), out(n);
        for (auto& v : in) v = {g(rng), g(rng)};
        Fft(n).forward(in.data(), out.data());
        for (int k = 0; k < n; ++k) {
            std::complex<long double> acc = 0;
            for (int j = 0; j < n; ++j) {
                const long double a = -2.0L * std::numbers::pi_v<long double> * ((static_cast<long>(j) * k) % n) / n;
                acc += std::complex<long double>(in[j].real(), in[j].imag()) *
                       std::complex<long double>(std::cos(a), std::sin(a));
            }
            EXPECT_NEAR(out[k].real(), static_cast<double>(acc.real()), 1e-12 * n) << n << " " << k;
            EXPECT_NEAR(out[k].imag(), static_cast<double>(acc.imag()), 1e-12 * n) << n << " " << k;
        }
    }
    EXPECT_THROW(Fft(7), Error);
}

TEST(MelFilters, SlaneyTrianglesWithAreaNorm) {
    const int bins = kNfft / 2 + 1;
    const std::vector<double> fb = mel_filter_bank(128);
    ASSERT_EQ(fb.size(), 128u * bins);
    for (int m = 0; m < 128; ++m) {
        int peaks = 0, nonzero = 0;
        for (int k = 0; k < bins; ++k) {
            const double v = fb[m * bins + k];
            EXPECT_GE(v, 0.0);
            nonzero += v > 0;
            // Unimodal: at most one local maximum along frequency.
            if (k > 0 && k + 1 < bins && v > 0 && v >= fb[m * bins + k - 1] && v > fb[m * bins + k + 1]) ++peaks;
        }
        EXPECT_LE(peaks, 1) << m;
        // Slaney area norm: wide (high) filters have small heights; the top filter
        // spans ~ 2 * 200 Hz+ so its height is below 2/200.
        if (m == 127) {
            EXPECT_LT(*std::max_element(fb.begin() + m * bins, fb.begin() + (m + 1) * bins), 0.01);
        }
        if (m > 10) {
            EXPECT_GT(nonzero, 0) << m;
        }
    }
}

TEST(LogMel, SineConcentratesInItsBandAndClampsAtMaxMinusEight) {
    // A 1 kHz tone for 2 s: the loudest mel bin is the one whose band holds 1 kHz, and
    // the zero-padded frames sit exactly at the floor, 8 decades (2.0 after /4) below the peak.
    const int n = 2 * kSampleRate;
    std::vector<float> x(n);
    for (int i = 0; i < n; ++i) x[i] = static_cast<float>(0.5 * std::sin(2 * std::numbers::pi * 1000.0 * i / kSampleRate));
    const Tensor mel = log_mel_piece(x.data(), x.size(), 128);
    ASSERT_EQ(mel.shape(), (Shape{128, 3000}));
    const float* m = mel.data<float>();
    const float peak = *std::max_element(m, m + mel.numel());
    const float floor = *std::min_element(m, m + mel.numel());
    EXPECT_NEAR(peak - floor, 2.0f, 1e-5);  // 8 decades / 4
    // Frame 100 (1 s): the best mel bin is near 1 kHz (Slaney mel of 1 kHz = 15,
    // i.e. bin ~ 15/mel_max*129 ~ 42).
    int best = 0;
    for (int b = 0; b < 128; ++b)
        if (m[b * 3000 + 100] > m[best * 3000 + 100]) best = b;
    EXPECT_NEAR(best, 42, 2);
    // After 2 s of tone (frame 220 onwards) only the zero padding remains: the floor.
    for (int b = 0; b < 128; ++b) EXPECT_FLOAT_EQ(m[b * 3000 + 2500], floor);
    EXPECT_THROW(log_mel_piece(x.data(), kPieceSamples + 1, 128), Error);
}

TEST(AudioFeatures, PiecesAndMelFramesForLongAudio) {
    // 65 s of noise at 44.1 kHz stereo: three pieces (30 + 30 + 5 s).
    test::TempDir tmp("long");
    const std::string f = tmp.file("long.mkv");
    test::ffmpeg_cli("-f lavfi -i anoisesrc=d=65:c=pink:r=44100:a=0.3 -ac 2 -c:a flac " + f);
    const AudioFeatures af = load_audio_features(f, 80);
    ASSERT_TRUE(af.present);
    EXPECT_EQ(af.samples, 65 * kSampleRate);
    EXPECT_EQ(af.mel.shape(), (Shape{3, 80, 3000}));
    EXPECT_EQ(af.mel_frames, 3000 + 3000 + 5 * kSampleRate / kHop);
}

}  // namespace
}  // namespace vidi::media
