// Sampled frames of the golden videos against the float64 reference (SPEC §2.1-2.3),
// and our RGB24 against the ffmpeg CLI's, byte for byte.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "media/media.h"
#include "media/media_test_util.h"

namespace vidi::media {
namespace {

struct GoldenCase {
    std::string name;          // synth / dummy
    std::vector<int> frames;   // which pixel_values_frame{i} the golden file holds
};

nlohmann::json summary(const std::string& name) {
    std::ifstream f(test::golden_path("summary.json"));
    return nlohmann::json::parse(f).at("tiny-a_" + name);
}

class FramesGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(FramesGolden, SampledFramesMatchReference) {
    const GoldenCase& c = GetParam();
    const std::string video = test::golden_path(c.name + ".mp4");
    const auto golden = io::SafetensorsFile::open(test::golden_path("tiny-a_" + c.name + ".golden.safetensors"));
    const nlohmann::json sum = summary(c.name);

    const VideoInfo info = probe(video);
    EXPECT_NEAR(info.duration, sum.at("duration_s").get<double>(), 1e-6);
    EXPECT_TRUE(info.has_video);
    EXPECT_TRUE(info.has_audio);

    FrameStream stream(video, 384, 5);
    ASSERT_EQ(stream.total_frames(), sum.at("frames").get<int64_t>());
    ASSERT_EQ(static_cast<int64_t>(sampled_frame_indices(info).size()), stream.total_frames());

    Tensor batch;
    std::vector<int64_t> pos;
    int64_t seen = 0;
    while (stream.next(batch, pos)) {
        ASSERT_EQ(batch.dim(0), static_cast<int64_t>(pos.size()));
        ASSERT_LE(batch.dim(0), 5);
        ASSERT_EQ(batch.shape(), (Shape{batch.dim(0), 3, 384, 384}));
        for (size_t j = 0; j < pos.size(); ++j) {
            ASSERT_EQ(pos[j], seen + static_cast<int64_t>(j));
            for (int g : c.frames) {
                if (pos[j] != g) continue;
                const Tensor ref = golden->get("pixel_values_frame" + std::to_string(g));
                const Tensor got = batch.row(static_cast<int64_t>(j));
                const double max_d = test::max_abs_diff(got, ref), mean_d = test::mean_abs_diff(got, ref);
                EXPECT_LE(max_d, 3.0 / 255 * 2 + 1e-6) << c.name << " frame " << g;
                EXPECT_LE(mean_d, 0.005) << c.name << " frame " << g;
                std::printf("[ info ] %s frame %d: max |d| %.3g, mean |d| %.3g\n", c.name.c_str(), g, max_d, mean_d);
            }
        }
        seen += static_cast<int64_t>(pos.size());
    }
    EXPECT_EQ(seen, stream.total_frames());
}

// Our RGB24 frames at the sampled indices equal the ffmpeg CLI's decode of every frame.
TEST_P(FramesGolden, RgbMatchesFfmpegCliExactly) {
    const GoldenCase& c = GetParam();
    const std::string video = test::golden_path(c.name + ".mp4");
    test::TempDir tmp("rgb");
    test::ffmpeg_cli("-i " + video + " -f rawvideo -pix_fmt rgb24 " + tmp.file("all.rgb"));
    const std::vector<uint8_t> all = test::read_bytes(tmp.file("all.rgb"));
    FrameStream stream(video, 384);
    const VideoInfo& info = stream.info();
    const size_t frame_bytes = static_cast<size_t>(info.width) * info.height * 3;
    ASSERT_EQ(all.size(), frame_bytes * info.frame_count);
    const std::vector<int64_t> idx = sampled_frame_indices(info);
    Tensor rgb;
    int64_t p = 0;
    int64_t n = 0;
    while (stream.next_rgb(rgb, p)) {
        ASSERT_EQ(p, n++);
        ASSERT_EQ(rgb.nbytes(), frame_bytes);
        const uint8_t* want = all.data() + frame_bytes * idx[p];
        size_t mismatches = 0;
        for (size_t i = 0; i < frame_bytes; ++i) mismatches += rgb.data<uint8_t>()[i] != want[i];
        EXPECT_EQ(mismatches, 0u) << c.name << " sampled frame " << p << " (index " << idx[p] << ")";
    }
    EXPECT_EQ(n, static_cast<int64_t>(idx.size()));
}

INSTANTIATE_TEST_SUITE_P(Golden, FramesGolden,
                         ::testing::Values(GoldenCase{"synth", {0, 11}}, GoldenCase{"dummy", {0, 12}}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace vidi::media
