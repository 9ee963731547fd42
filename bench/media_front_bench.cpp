// Times the media front end on one file: every sampled frame decoded, resized to
// image_size and normalised (FrameStream), and the audio's Whisper log-mel
// (load_audio_features), the two run concurrently as the engine does.
// Usage: media_front_bench VIDEO [--image-size 384] [--sequential] [--mel-piece-only]
//                            [--lanes N] [--rgb] [--consume-ms MS] [--ring [--any-order]]
// --lanes: decoding lanes (0, the default: media::automatic_lanes); --rgb: the batches the GPU path
// takes from the host (RGB24, no resize); --consume-ms: hold each batch that long before asking
// for the next (a stand-in for the towers' work on it, so that the lanes' pace against a
// consumer shows: "wait_s" is the time spent waiting for batches); --ring: the CPU decoders' lanes
// fill a frame ring as on a GPU backend (`--decoder cpu`), here in host memory (core/host_frames.h),
// and --any-order lets the first batches interleave the lanes (FrameStream::start). Prints one
// JSON line; "first_batch_s" is when the first batch came, from the stream's opening.
// bench/media_bench.sh compares it with the ffmpeg CLI.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <exception>
#include <thread>
#include <vector>

#include "core/host_frames.h"
#include "media/media.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
    using namespace vidi;
    using namespace vidi::media;
    if (argc < 2) {
        std::fprintf(stderr,
                     "usage: %s VIDEO [--image-size N] [--sequential] [--mel-piece-only] [--lanes N] [--rgb] "
                     "[--consume-ms MS] [--ring [--any-order]]\n",
                     argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    int image_size = 384;
    int lanes = 0, consume_ms = 0;
    bool sequential = false, mel_only = false, rgb_only = false, ring = false, any_order = false;
    for (int i = 2; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--image-size") && i + 1 < argc) image_size = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--sequential")) sequential = true;
        else if (!std::strcmp(argv[i], "--mel-piece-only")) mel_only = true;
        else if (!std::strcmp(argv[i], "--lanes") && i + 1 < argc) lanes = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--rgb")) rgb_only = true;
        else if (!std::strcmp(argv[i], "--consume-ms") && i + 1 < argc) consume_ms = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--ring")) ring = rgb_only = true;
        else if (!std::strcmp(argv[i], "--any-order")) any_order = true;
    }
    std::thread audio_thread;  // outside the try: joined on every path, also after an error
    try {
        if (mel_only) {  // one 30 s piece of a decoded file, repeated
            std::vector<int16_t> s16 = decode_audio_mono16k(path);
            std::vector<float> piece(kPieceSamples, 0.0f);
            for (size_t i = 0; i < piece.size() && i < s16.size(); ++i) piece[i] = s16[i] / 32768.0f;
            const auto t0 = std::chrono::steady_clock::now();
            for (int r = 0; r < 5; ++r) log_mel_piece(piece.data(), piece.size(), 128);
            std::printf("{\"mel_piece_s\": %.4f}\n", seconds_since(t0) / 5);
            return 0;
        }
        const auto t0 = std::chrono::steady_clock::now();
        AudioFeatures audio;
        double audio_s = 0;
        std::exception_ptr audio_error;  // an exception must not escape the audio thread
        auto run_audio = [&] {
            const auto ta = std::chrono::steady_clock::now();
            try {
                audio = load_audio_features(path, 128);
            } catch (...) {
                audio_error = std::current_exception();
            }
            audio_s = seconds_since(ta);
        };
        if (!sequential) audio_thread = std::thread(run_audio);
        const auto tv = std::chrono::steady_clock::now();
        FrameOptions o;
        o.image_size = image_size;
        o.lanes = lanes;
        o.decoder = "cpu";
        if (ring) {
            o.cpu_to_device = true;
            o.device_frames = [](const DeviceFramesShape& s) { return std::make_unique<HostFrames>(s); };
        }
        FrameStream stream(path, o);
        stream.start(any_order);
        vidi::Tensor batch;
        std::vector<int64_t> pos;
        int64_t frames = 0;
        double checksum = 0, wait_s = 0, first_batch_s = 0;
        for (;;) {
            const auto tw = std::chrono::steady_clock::now();
            if (!(rgb_only ? stream.next_frames(batch, pos) : stream.next(batch, pos))) break;
            wait_s += seconds_since(tw);
            if (frames == 0) first_batch_s = seconds_since(tv);
            frames += batch.dim(0);
            checksum += rgb_only ? batch.data<uint8_t>()[batch.numel() / 2] : batch.data<float>()[batch.numel() / 2];
            if (consume_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(consume_ms));
        }
        const double video_s = seconds_since(tv);
        if (sequential) run_audio();
        else audio_thread.join();
        if (audio_error) std::rethrow_exception(audio_error);
        const double total_s = seconds_since(t0);
        const VideoInfo& info = stream.info();
        std::printf(
            "{\"file\": \"%s\", \"duration_s\": %.3f, \"width\": %d, \"height\": %d, \"frame_count\": %lld, "
            "\"sampled_frames\": %lld, \"decoded_frames\": %lld, \"mel_shape\": [%lld, %lld, %lld], \"mel_frames\": %lld, "
            "\"video_s\": %.3f, \"first_batch_s\": %.3f, \"wait_s\": %.3f, \"lanes\": %d, \"lane_busy_s\": %.3f, "
            "\"audio_s\": %.3f, "
            "\"wall_s\": %.3f, \"checksum\": %.6f}\n",
            path.c_str(), info.duration, info.width, info.height, static_cast<long long>(info.frame_count),
            static_cast<long long>(frames), static_cast<long long>(stream.decoded_frames()),
            static_cast<long long>(audio.present ? audio.mel.dim(0) : 0),
            static_cast<long long>(audio.present ? audio.mel.dim(1) : 0),
            static_cast<long long>(audio.present ? audio.mel.dim(2) : 0), static_cast<long long>(audio.mel_frames),
            video_s, first_batch_s, wait_s, stream.lanes(), stream.lane_busy_seconds(), audio_s, total_s, checksum);
    } catch (const std::exception& e) {
        if (audio_thread.joinable()) audio_thread.join();
        std::fprintf(stderr, "media_front_bench: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
