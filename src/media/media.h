// The media front end (SPEC.md §2): a video file becomes exactly the model's inputs.
// Frames: decord-style 1 fps sampling, RGB24 as the ffmpeg CLI converts it, PIL-exact
// bicubic resize, SigLIP normalisation, streamed in bounded batches. Audio: first audio
// stream as `ffmpeg -ac 1 -ar 16000 -f s16le` gives it, Whisper log-mel per 30 s piece.
// Every problem with the input file is a vidi::Error naming the file and the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device_frames.h"
#include "core/log_mel.h"
#include "core/pil_resize.h"
#include "vidi/tensor.h"
#include "vidi/vidi.h"

namespace vidi::media {

struct VideoInfo {
    std::string path;
    double duration = 0;  // container duration, s (what ffprobe prints as format=duration)
    int width = 0, height = 0;  // of the upright picture (the frames FrameStream hands out)
    int rotation = 0;           // clockwise degrees applied to make frames upright (0/90/180/270)
    double avg_fps = 0;
    int64_t frame_count = 0;  // decord's len(): every packet of the video stream (see probe)
    bool has_video = false, has_audio = false;
    std::string video_codec, audio_codec;
};

// Largest accepted frame: 16384 a side and 8192x8192 pixels in all (8K UHD is 7680x4320).
// Anything larger is refused as absurd: a 1.5 MB file whose header said 16000x16000 took 7 GB.
constexpr int kMaxFrameSide = 16384;
constexpr int64_t kMaxFramePixels = int64_t{8192} * 8192;
inline bool plausible_frame_size(int w, int h) {
    return w > 0 && h > 0 && w <= kMaxFrameSide && h <= kMaxFrameSide && int64_t{w} * h <= kMaxFramePixels;
}
// Throws "'path': absurd frame size WxH (limit …)" unless plausible_frame_size(w, h).
void require_plausible_frame_size(int w, int h, const std::string& path);

// Opens the container and counts the video packets (demux only, no decoding) as decord
// does: discard-flagged ones included, the header's nb_frames ignored. Throws vidi::Error
// for a missing/unreadable file, a file without a video stream, or absurd dimensions.
VideoInfo probe(const std::string& path, MediaInputs inputs = MediaInputs::Any);

// decord-style 1 fps sampling: stride = round(avg_fps) (at least 1); 0, stride, … < frame_count.
std::vector<int64_t> sampled_frame_indices(const VideoInfo& info);

// How a FrameStream decodes (the `--decoder` flag and its neighbours).
struct FrameOptions {
    int image_size = 384;
    int max_batch = 16;
    int lanes = 0;  // as FrameStream's `lanes`
    MediaInputs inputs = MediaInputs::Any;  // as FrameStream's `inputs`
    // "cpu": FFmpeg's software decoders. "nvdec": FFmpeg's CUDA hardware decoding, the frames
    // converted and batched on the GPU (an error naming why when it cannot take the file).
    // "auto": NVDEC where it can take the file, else the CPU with a notice saying why.
    std::string decoder = "auto";
    // A GPU backend's frame rings (Backend::device_frames); null: no GPU (auto means cpu).
    DeviceFramesMaker device_frames;
    // What a frame ring in device memory (the one `device_frames` would be asked for, NVDEC's
    // decoders' sessions included: the shape's lane_outside_bytes) would cost this video of
    // `sampled` frames, asked before any is taken: a non-empty answer (say, a lower K/V precision
    // under --gpu-memory) sends "auto" from NVDEC to the CPU (the notice's reason) and the CPU
    // decoders' frames to host memory.
    std::function<std::string(const VideoInfo& video, int64_t sampled, const DeviceFramesShape& ring)> ring_cost;
    std::function<void(const std::string&)> notice;
    // With device_frames: where the CPU decodes ("cpu", or "auto" where NVDEC cannot take the
    // file), its lanes copy each sampled frame into the ring as NVDEC's lanes write theirs, so
    // that the upload rides on the lanes' own streams instead of the reader's thread and the
    // GPU's stream (bench/RESULTS.md, 2026-12-07). The frames are the host path's, byte for byte.
    bool cpu_to_device = false;
    // Tests: the frames go to device_frames as with NVDEC, but decoded in software (no GPU).
    bool software_to_device = false;
    // NVDEC's lanes with the frames taken in any order (FrameStream::start(true)): this many CPU
    // decoders' lanes decode the first segments, interleaved, while NVDEC's sessions are set up
    // one at a time (-1: as many as the CPU path's automatic lanes, within its memory budget and
    // four per NVDEC lane; 0: none, NVDEC decodes from the first frame). Off until a GPU run
    // shows what it gains and costs (docs/cuda.md).
    int cpu_head_lanes = 0;
};

// The CPU decoders' lanes for `cores` cores when none are asked for: three of every four cores
// (at least one), the rest left to the threads that feed the GPU and decode the audio.
int automatic_lanes(unsigned cores);

// Streams the sampled frames, as decord gives them (upright per the stream's rotation, every
// frame at the stream's first size), resized with PIL-exact bicubic to image_size x image_size
// and SigLIP-normalised ((x/255 - 0.5)/0.5), as f32 tensors [n, 3, S, S], n <= max_batch.
// Holds at most one batch of output and one decoded frame at a time.
class FrameStream {
public:
    // lanes: decoders working on separate stretches at once (0: automatic_lanes(), with NVDEC
    // one per 2 cores, at most 4; 1: a single sequential decoder); they share the cores out,
    // within memory budgets for the pictures decoded ahead and for the decoders' own reference
    // pictures (fewer lanes for large frames: 4 for 4K), and at most 64. The output does not
    // depend on it.
    // `inputs`: what every open of the file (probe and lanes alike) accepts (ffmpeg_util.h).
    FrameStream(const std::string& path, int image_size, int max_batch = 16, int lanes = 0,
                MediaInputs inputs = MediaInputs::Any);
    // Decoding as options.decoder says; with NVDEC, or the CPU decoders filling a device ring
    // (options.cpu_to_device), the batches of next_frames() are on the GPU.
    FrameStream(const std::string& path, const FrameOptions& options);
    ~FrameStream();
    FrameStream(const FrameStream&) = delete;
    FrameStream& operator=(const FrameStream&) = delete;

    const VideoInfo& info() const;
    int64_t total_frames() const;  // number of sampled frames F
    // Keeps every step-th sampled frame only (a token budget for very long videos: the
    // frames are spread as evenly as before, at 1/step fps). Call before next().
    void keep_every(int64_t step);
    // Starts the decoding lanes now (the first next() or next_frames() would), so that the
    // first frames are on their way while the caller gets ready for them. After keep_every().
    // any_order: the caller takes next_frames()' batches with their frames in any order (the
    // positions say which): where the CPU decoders' lanes fill a device ring, the first batches
    // then take every lane's first frames in turn instead of waiting on one lane's stretch.
    void start(bool any_order = false);
    // Fills the next batch of vision-tower pixels f32 [n, 3, S, S] (core/pil_resize.h);
    // false at the end. sampled_positions are 0..F-1.
    bool next(Tensor& batch, std::vector<int64_t>& sampled_positions);
    // The same batches before resizing: packed RGB24 u8 [n, h, w, 3] (a backend's
    // frames_to_pixels makes the pixels). A batch holds frames of one size. Decoded by NVDEC
    // the batch is in device memory, readable by the backend's stream, until the next call.
    // The positions ascend from batch to batch unless start(true) allowed any order.
    bool next_frames(Tensor& rgb, std::vector<int64_t>& sampled_positions);
    // Whether next_frames() would return now, without waiting for the decoding lanes (true
    // too where it decodes on the caller's thread, and at the end): so that the caller can do
    // other work, the audio, while the next batch is on its way.
    bool ready();
    // Where the frames are decoded: "cpu" or "nvdec".
    const char* decoder() const;

    // Pictures the decoder produced so far (unsampled non-reference frames are skipped).
    int64_t decoded_frames() const;
    // Segments decoded by lanes so far (0: everything came from one sequential decoder).
    int64_t lane_segments() const;
    // Decoders opened so far (with NVDEC each one a hardware session; on the device path a
    // lane's decoder goes on to its next segment where it can).
    int64_t decoders_opened() const;
    // NVDEC's start: the CPU lanes that decode the first segments (one a segment), and how many
    // sampled frames those hold (FrameOptions::cpu_head_lanes; 0 until start(true) plans them).
    int head_lanes() const;
    int64_t head_frames() const;
    // The decoders at work at once (1: one sequential decoder), and the time the lanes spent
    // decoding so far, summed over them (against lanes() x the wall time: how busy they were).
    int lanes() const;
    double lane_busy_seconds() const;
    // Of that time, what the segments spent up to their first frame (opening the file and the
    // decoder, seeking, decoding from the keyframe): where NVDEC's sessions start.
    double lane_first_seconds() const;

    // The same frames before resizing: packed RGB24 [h, w, 3] u8, one per call (tests, tools).
    bool next_rgb(Tensor& rgb, int64_t& sampled_position);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

struct AudioFeatures {
    bool present = false;  // false: no audio stream, or it holds no samples
    Tensor mel;            // f32 [pieces, n_mels, 3000]
    int64_t mel_frames = 0;
    int64_t samples = 0;   // 16 kHz mono samples
};

// SPEC §2.4-2.6 on the file's first (best) audio stream.
AudioFeatures load_audio_features(const std::string& path, int n_mels = 128);

struct AudioSamples {
    bool present = false;  // false: no audio stream, or it holds no samples
    Tensor pcm;            // f32 [samples], 16 kHz mono in [-1, 1)
    int64_t mel_frames = 0;
};
// SPEC §2.4: the samples a backend's log_mel turns into the features above.
AudioSamples load_audio_samples(const std::string& path, MediaInputs inputs = MediaInputs::Any);

// --- building blocks, public for tests and for the CUDA path ---

// The audio as `ffmpeg -i path -ac 1 -ar 16000 -f s16le -` prints it (swresample with
// default options). Empty when the file has no audio stream.
std::vector<int16_t> decode_audio_mono16k(const std::string& path);
// The same samples handed to `sink` in chunks as they are decoded (bounded memory).
// Returns false (sink never called) when the file has no audio stream.
using AudioSink = std::function<void(const int16_t* samples, size_t n)>;
bool decode_audio_mono16k(const std::string& path, const AudioSink& sink, MediaInputs inputs = MediaInputs::Any);
// A sample as the official code reads the CLI's s16 output: s / 32768 (in double), as f32.
inline float sample_value(int16_t s) { return static_cast<float>(s / 32768.0); }

}  // namespace vidi::media
