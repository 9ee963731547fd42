#include "runtime/video_encoding.h"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include "core/env_switch.h"
#include "media/media.h"
#include "runtime/audio_encoding.h"
#include "runtime/media_kv_writer.h"
#include "runtime/media_plan.h"
#include "runtime/seconds_since.h"

namespace vidi::runtime {

namespace {

// User and system time of every thread of the process so far.
double process_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * static_cast<double>(t.tv_usec); };
    return s(u.ru_utime) + s(u.ru_stime);
}

// VIDI_INTERLEAVE_FRAMES=0 keeps the frames in the video's order (to compare; the tokens are
// the same either way).
bool frames_in_any_order() {
    static const bool allowed = !env_is("VIDI_INTERLEAVE_FRAMES", "0");
    return allowed;
}

// VIDI_NVDEC_CPU_HEAD=n: NVDEC's start on n CPU lanes ("auto": the CPU path's lane count; 0, as by
// default: NVDEC decodes from the first frame). To measure; docs/cuda.md. (FrameOptions::cpu_head_lanes)
int nvdec_cpu_head_lanes() {
    static const int lanes = env_is("VIDI_NVDEC_CPU_HEAD", "auto") ? -1
                                                                    : env_count("VIDI_NVDEC_CPU_HEAD", 64).value_or(0);
    return lanes;
}

}  // namespace

MediaTokens media_tokens(LoadedModel& m, const std::string& video_path, MediaCapture* capture) {
    MediaTokens out;
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = process_cpu_seconds();
    media::FrameOptions fo;
    fo.image_size = m.config().vision.image_size;
    fo.max_batch = std::max(1, m.options().frame_batch);
    fo.lanes = std::max(0, m.options().decode_lanes);
    fo.inputs = m.options().media_inputs;
    fo.decoder = m.options().decoder;
    if (m.backend().device() != Device::cpu) {  // the decoded frames go to this backend's memory
        fo.device_frames = [&m](const DeviceFramesShape& s) { return m.backend().device_frames(s); };
        fo.cpu_to_device = true;
    }
    fo.notice = m.options().notice;
    fo.cpu_head_lanes = nvdec_cpu_head_lanes();
    const MediaRequest request{m.options().media_kv, m.options().visual_token_budget, m.options().media_tokens};
    const auto audio_estimate = [&m](const media::VideoInfo& info) {
        return info.has_audio ? m.media().audio_token_count(static_cast<int64_t>(planned_audio_seconds(info) * 100))
                              : int64_t{0};
    };
    // "auto" takes NVDEC only where its memory costs the video nothing: under 19 GiB on an H100,
    // 0.39 GiB of sessions and ring would have sent a 10-minute video's tokens to the host,
    // and that run encoded in 5.0 s against the CPU decoders' 3.7 s (bench/RESULTS.md). The
    // CPU decoders' lanes fill a ring under the same rule, else their frames go up from the host.
    fo.ring_cost = [&](const media::VideoInfo& info, int64_t sampled, const DeviceFramesShape& ring) {
        const std::optional<DeviceMemory> mem = m.backend().device_memory();
        if (!mem) return std::string();
        const size_t bytes = m.backend().device_frames_shape(ring).device_bytes();
        const std::string cost = cost_of_holding(bytes, m.config(), sampled, audio_estimate(info), request, *mem,
                                                 m.options().frame_batch, m.backend().act_dtype());
        return cost.empty() ? cost : "for NVDEC's sessions and frame ring, " + cost;
    };
    m.retired().wait();  // the last video's decoders (NVDEC's sessions) are closed first
    auto stream = std::make_unique<media::FrameStream>(video_path, fo);
    media::FrameStream& frames = *stream;
    const int64_t sampled = frames.total_frames();
    if (sampled < 2)
        fail(video_path, ": ", sampled, " frame(s) sampled at 1 fps; Vidi needs a video of at least two (",
             "duration ", frames.info().duration, " s)");
    out.duration = frames.info().duration;
    // Plans K/V format and token budget (refusing before any decoding when nothing fits).
    const MediaChoice choice = choose_media(m.config(), sampled, audio_estimate(frames.info()), request,
                                            m.backend().device_memory(), m.options().frame_batch, m.backend().act_dtype());
    if (m.backend().device_memory() || choice.step > 1 || choice.budget != m.family().default_visual_budget())
        m.notice(cat("video: ", choice.describe()));
    frames.keep_every(choice.step);
    // Decoding starts before the large allocations below (the media K/V: 21 GiB for ten
    // minutes); so does the audio's, on a thread of its own: it needs nothing from the frames.
    // Each batch of its 30 s pieces goes through log-mel (the backend's: on the GPU, a batch
    // of FFTs) and the audio tower in the next wait for frames (next_batch below), the first
    // ones while the first frames decode, and the positions and the decoder's layers once the
    // audio has ended (runtime/audio_encoding.h).
    // The visual tokens kept on the device take their frames in any order: the first batches
    // then come from every decoding lane at once (FrameStream::start).
    frames.start(!choice.tokens_on_host && frames_in_any_order());
    const double started_s = seconds_since(t0);  // the stream opened, probed and (NVDEC) tried
    AudioEncoding audio(m, video_path, audio_estimate(frames.info()), choice.kv, choice.tokens_on_host, capture, t0);
    const int64_t F = frames.total_frames();
    const int64_t budget = choice.budget;
    out.frames = F;
    out.kv = choice.kv;
    out.grid_h = out.grid_w = m.media().grid_side(F, budget);
    const int64_t per_frame = out.grid_h * out.grid_w;
    // The visual tokens go through the decoder's layers as soon as a chunk of them is ready,
    // so the GPU works on them while later frames are still being decoded.
    MediaKvWriter visual(m, F * per_frame, choice.kv, choice.tokens_on_host, "tokens");
    {  // the positional tables, while the first frames decode (the GPU has nothing else yet)
        const Section s = m.backend().section("image positions ahead");
        m.media().prepare_video(F, budget);
    }

    Tensor rgb;
    std::vector<int64_t> positions;
    int64_t done = 0;
    const int S = m.config().vision.image_size;
    double frames_wait_s = 0, first_batch_s = -1;  // the profile's timeline
    // Before each batch, and while it is still being decoded, the audio's pieces decoded so
    // far go through: the GPU would otherwise wait, above all for the first batch, which takes
    // a stretch of decoding up to its keyframe distance.
    auto next_batch = [&] {
        const auto w0 = std::chrono::steady_clock::now();
        double audio_s = 0;  // of the wait, the time spent queueing the audio's work
        for (;;) {
            const auto a0 = std::chrono::steady_clock::now();
            audio.advance();
            audio_s += seconds_since(a0);
            if (audio.done() || frames.ready()) break;
            audio.wait(std::chrono::milliseconds(1));
        }
        const bool more = frames.next_frames(rgb, positions);
        frames_wait_s += seconds_since(w0) - audio_s;
        if (first_batch_s < 0) first_batch_s = seconds_since(t0);
        return more;
    };
    // The backend resizes and normalises (on the GPU, the decoded frames go up as they are).
    while (next_batch()) {
        if (capture)  // the f32 pixels of the host's resize, before any dtype rounding
            for (size_t i = 0; i < positions.size(); ++i)
                if (capture->frames.count(positions[i])) {
                    const Tensor row = rgb.row(static_cast<int64_t>(i));
                    const Tensor frame = row.on_host() ? row : m.backend().to_host(row);  // NVDEC's: on the GPU
                    Tensor px = Tensor::empty({3, S, S}, DType::f32);
                    frames_to_pixels_f32(frame.data<uint8_t>(), 1, static_cast<int>(rgb.dim(1)),
                                         static_cast<int>(rgb.dim(2)), S, px.data<float>());
                    capture->pixels[positions[i]] = px;
                }
        Tensor pixels;
        {
            const Section s = m.backend().section("pixels");
            pixels = m.backend().frames_to_pixels(rgb, S);
        }
        Tensor tokens = m.media().image_tokens(pixels, positions, F, budget);
        // Whole chunks of rows go on to the K/V as soon as every frame up to their end is there.
        visual.put_frames(tokens, positions, per_frame);
        done += static_cast<int64_t>(positions.size());
        m.progress("frames", done, F);
    }
    VIDI_CHECK(done == F, video_path, ": decoded ", done, " of ", F, " sampled frames");
    if (m.backend().profiling()) {  // what the decoder costs: the stage's time and the CPU the process spent in it
        const double stage_s = seconds_since(t0);
        // How busy the lanes were: where the GPU waits while they idle, what holds them is not
        // the decoding's pace (the budget for pictures waiting, the order of the segments).
        char lanes[256] = "one decoder";
        if (frames.lane_segments() > 0)
            std::snprintf(lanes, sizeof lanes,
                          "%d lanes decoding %.2f s of their %.2f s (%lld segments, %lld decoders opened, %.2f s to "
                          "the segments' first frames)",
                          frames.lanes(), frames.lane_busy_seconds(), frames.lanes() * (stage_s - started_s),
                          static_cast<long long>(frames.lane_segments()),
                          static_cast<long long>(frames.decoders_opened()), frames.lane_first_seconds());
        if (frames.head_lanes() > 0)
            std::snprintf(lanes + std::strlen(lanes), sizeof lanes - std::strlen(lanes),
                          ", %d CPU lanes for the first %lld frames", frames.head_lanes(),
                          static_cast<long long>(frames.head_frames()));
        char line[640];
        std::snprintf(line, sizeof line,
                      "frames: %lld decoded by %s in %.2f s; process CPU time %.2f s; decoding from %.2f s, the "
                      "first batch at %.2f s, waiting for frames %.2f s in all; %s; audio: the first piece at "
                      "%.2f s, through the tower from %.2f s, every sample seen at %.2f s",
                      static_cast<long long>(F), frames.decoder(), stage_s, process_cpu_seconds() - cpu0, started_s,
                      first_batch_s, frames_wait_s, lanes, audio.first_piece_s(), audio.tower_from_s(),
                      audio.samples_s());
        m.notice(line);
    }
    visual.finish();
    out.image = visual.tokens();
    out.visual_kv = visual.kv();
    audio.finish();
    out.audio = audio.tokens();
    out.audio_kv = audio.kv();
    // Closing the decoders took NVDEC's 8 lanes 0.35-0.40 s on an H100 (the last session most
    // of it): the request goes on meanwhile. Closing them synchronises the device, which breaks
    // a CUDA graph's capture, so the decoding steps go unrecorded until they are closed.
    struct Closing {
        std::shared_ptr<void> hold;                  // let go last,
        std::unique_ptr<media::FrameStream> stream;  // once the decoders are closed
    };
    m.retired().release(std::make_shared<Closing>(Closing{m.backend().hold_step_recording(), std::move(stream)}));
    return out;
}

std::shared_ptr<EncodedVideo> encode(LoadedModel& m, MediaTokens tokens) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = std::make_shared<EncodedVideo>();
    const bool has_audio = tokens.audio.defined() && tokens.audio.dim(0) > 0;
    if (!tokens.kv) {
        const int64_t n = tokens.image.dim(0) + (has_audio ? tokens.audio.dim(0) : 0);
        tokens.kv = choose_kv_for_tokens(m.config(), n, m.options().media_kv, m.backend().device_memory(),
                                         m.backend().act_dtype());
    }
    m.progress("media-kv", 0, 2);
    v->visual = tokens.visual_kv ? std::move(*tokens.visual_kv) : m.decoder().encode_media(tokens.image, *tokens.kv);
    tokens.visual_kv.reset();
    m.progress("media-kv", 1, 2);
    if (has_audio)
        v->audio = tokens.audio_kv ? std::move(*tokens.audio_kv) : m.decoder().encode_media(tokens.audio, *tokens.kv);
    tokens.audio_kv.reset();
    m.progress("media-kv", 2, 2);
    // The tokens stay where they are (the memory plan counts them for as long as the video
    // lives); only saving the video brings them to the host. Copying them back here cost the
    // request 0.5 s on the H100 machine (0.8 GiB of f32 host memory, freshly faulted in).
    v->tokens = std::move(tokens);
    m.backend().synchronize();
    v->seconds = seconds_since(t0);
    m.report_profile();
    return v;
}

std::shared_ptr<EncodedVideo> encode_video(LoadedModel& m, const std::string& video_path) {
    auto t0 = std::chrono::steady_clock::now();
    MediaTokens tokens = media_tokens(m, video_path);
    double front = seconds_since(t0);
    auto v = encode(m, std::move(tokens));
    v->seconds += front;
    return v;
}

}  // namespace vidi::runtime
