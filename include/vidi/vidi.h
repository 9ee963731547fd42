// The public API of vidi.cpp: open a checkpoint once, encode a video once, then ask
// as many questions about it as you like (the media state is reused).
//
//   auto engine = vidi::Engine::open({.model_dir = "Vidi1.5-9B"});
//   auto video = engine->encode_video("cooking.mp4");
//   vidi::Answer a = engine->retrieve(*video, "slicing onion");
//   for (auto& r : a.ranges) printf("%s\n", vidi::format_range(r).c_str());
//
// Many questions about one video are cheapest together: answer() takes a list, and batch()
// lets rows join and leave while the others are decoding (what `vidi serve` does).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vidi/error.h"

namespace vidi {

// Progress of long work: stage ("frames", "vision", "audio", "media-kv", "prefill",
// "generate"), units done and total (total 0 when unknown).
using ProgressFn = std::function<void(const std::string& stage, int64_t done, int64_t total)>;

// Which media files the engine (and clip export) lets FFmpeg open.
enum class MediaInputs {
    Any,         // every input format and protocol FFmpeg was built with (the command line)
    VideoFiles,  // regular local files (`file` protocol only) in the containers a video service
                 // needs: MP4/MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV, Ogg, WAV, ASF (vidi serve)
};

struct EngineOptions {
    std::string model_dir;
    std::string backend = "auto";  // "cpu", "cuda", "cuda:N" or "auto"
    int threads = 0;               // CPU threads; 0: all cores
    int frame_batch = 16;          // frames per vision-tower batch
    // Video decoders working on separate stretches of the file at once (0: three of every four
    // cores, the rest left to the threads feeding the GPU; with NVDEC one per 2 cores, at most
    // 4). The frames do not depend on it.
    int decode_lanes = 0;
    // Video decoding: "auto" (the default: NVDEC on the CUDA backend where it can take the file
    // and its memory costs the video nothing, else the CPU, with a notice saying why), "cpu"
    // (FFmpeg's software decoders) or "nvdec" (an error naming why when it cannot). The frames
    // do not depend on it (identical pixels, measured). On H100 and H200 hosts with 16 idle
    // cores (bench/RESULTS.md, 2026-12-06) NVDEC encoded a 10-minute 720p H.264 video in
    // 2.24-2.33 s against the CPU decoders' 2.10-2.35 s with a quarter of their CPU time (3.4
    // against 14.6 CPU-s), and a 1080p HEVC one in 2.43-2.48 s against 3.7-4.2 s: it leaves the
    // cores to the host's other work ("cpu" is faster for H.264 where they are idle). Its
    // sessions and frame ring hold device memory (counted, estimated: docs/memory.md); where
    // that would change a video's plan under --gpu-memory (a lower K/V precision, the media
    // tokens sent to the host), "auto" decodes that video on the CPU.
    std::string decoder = "auto";
    size_t gpu_memory_limit = 0;   // bytes the GPU backend may hold (0: what the device has)
    // The GPU's compute dtype: "fp16" with the official float16 inference's casts (the
    // default: 4.8x closer to PyTorch float32 than bf16 at full size, same speed; bench/RESULTS.md)
    // or "bf16" (docs/cuda.md). The CPU computes in f32 either way; logits are f32 everywhere.
    std::string dtype = "fp16";
    // The matrix products of an encode (with 16-bit weights): "16bit" in `dtype` (the default),
    // or "fp8": E4M3 inputs with per-row scales on the tensor cores of compute capability 8.9
    // and newer (an error elsewhere) for the media tokens' layers and the towers' linears that
    // read a LayerNorm (q, k, v, fc1): 7-10% faster encodes on the H200 for ~28x the fp16
    // logits error (bench/RESULTS.md). Prompts and decoding stay in `dtype` either way
    // (docs/cuda.md, "FP8").
    std::string compute = "16bit";
    // How linear weights are held: "auto" (GPU: the most faithful of bf16, int8, int4 that
    // leaves room for a 10-minute video; CPU: as stored), "bf16", "int8", "int4", "int4/g128".
    std::string weights = "auto";
    // Media K/V of each video: "auto" (bf16; when that does not fit int8, then int4, before any
    // frame is dropped), "bf16", "int8", "int4" (docs/memory.md).
    std::string media_kv = "auto";
    // Where a video's media tokens are kept once their K/V are written (they are needed again
    // only to save the video): "auto" (the GPU, unless that is what makes the video not fit:
    // then the host, before any K/V is quantised further or any frame dropped), "device", "host".
    std::string media_tokens = "auto";
    // Visual tokens per video: 0 = the model family's default (Vidi1.5: SPEC's 60000), lowered
    // automatically only when memory is short.
    int64_t visual_token_budget = 0;
    MediaInputs media_inputs = MediaInputs::Any;  // `vidi serve` narrows it (docs/security.md)
    // On a GPU, a throwaway request at load (0.30 s on an H100), so that the first video does
    // not pay a process's one-time costs (cuBLASLt's and cuFFT's first calls, the kernels'
    // loading; there its image positions took 135 -> 4 ms and its first 20 tokens 0.03 s less:
    // docs/cuda.md). The one-shot commands (`vidi retrieve`, `ask`, `dump`) turn it off.
    bool warm_up = true;
    ProgressFn progress;           // null: silent
    // The planner's decisions, one line each (weights format, per-video K/V and budget).
    std::function<void(const std::string&)> notice;
    // Problems that do not stop the engine, one line each (e.g. a checkpoint whose
    // chat_template the built-in prompt format does not follow).
    std::function<void(const std::string&)> warning;
};

struct GenerateOptions {
    int max_new_tokens = 1024;  // the official default
};

struct TimeRange {
    double start = 0;  // seconds
    double end = 0;
};

struct Timings {
    // The video's encoding (decode, towers, media K/V; or the K/V from a saved video) when this
    // is the first answer about it; 0 for later answers and without a video.
    double media_s = 0;
    double prefill_s = 0;   // prompt through the decoder (in a batch: the prefill it shared)
    int prompt_tokens = 0;  // the prompt's length
    int prefill_rows = 1;   // prompts prefilled together with this one (itself included)
    double generate_s = 0;  // token-by-token decoding
    int generated_tokens = 0;
};

// What a question asks for: when something happens (the answer is parsed into ranges) or
// anything else (free-form, the model's text).
enum class Task { retrieval, question };

struct Question {
    std::string text;  // retrieval: what to look for ("slicing onion"); else the question itself
    Task task = Task::retrieval;
    GenerateOptions options;
};

struct Answer {
    std::string text;               // the decoded model output
    std::vector<TimeRange> ranges;  // retrieval: parsed ranges in seconds (empty for Q&A)
    double duration = 0;            // video duration in seconds (0 without video)
    std::vector<int32_t> token_ids; // generated ids, stop token excluded
    Timings timings;
};

// What one step of a Batch did to one of its rows.
struct BatchEvent {
    int row = 0;             // the id add() gave it
    int32_t token = -1;      // the token this step appended (-1: none, the row stopped)
    std::string text;        // the row's answer so far, decoded
    bool finished = false;   // the row left the batch; `answer` is its answer
    Answer answer;
};

// Questions about one video decoded together: each step computes one token of every row,
// reading the weights and the video's media K/V once for all of them. Rows join at any
// step (add) and leave when they stop (their stop token or max_new_tokens) or are cancelled.
// Each row's answer is the one retrieve() / ask() give for its question alone (the same
// token ids). The video must outlive the batch; one thread drives it.
class Batch {
public:
    virtual ~Batch() = default;
    // Prefills the question's prompt and adds it as a row; returns the row's id.
    virtual int add(const Question& question) = 0;
    // The row leaves without an answer (a client that stopped waiting); unknown ids are ignored.
    virtual void cancel(int row) = 0;
    // One token for every row: an event for each row that was in the batch, in add() order.
    virtual std::vector<BatchEvent> step() = 0;
    virtual int rows() const = 0;  // rows that have not finished
};

// An encoded video: its media tokens and per-layer media K/V, ready for questions.
class Video {
public:
    virtual ~Video() = default;
    virtual double duration() const = 0;
    virtual int64_t frames() const = 0;
    virtual int64_t visual_tokens() const = 0;
    virtual int64_t audio_tokens() const = 0;
    virtual double encode_seconds() const = 0;
};

// "HH:MM:SS" (decimals 0, truncating as the official script does) or "HH:MM:SS.ss".
std::string format_timestamp(double seconds, int decimals = 0);
std::string format_range(const TimeRange& r, int decimals = 0);  // "00:00:12-00:00:19"

class Engine {
public:
    static std::unique_ptr<Engine> open(const EngineOptions& options);
    virtual ~Engine() = default;

    virtual std::string model_name() const = 0;    // the checkpoint directory's name
    virtual std::string backend_name() const = 0;  // e.g. "cpu", "cuda:0 (…), weights int4/g64"
    virtual std::string family_name() const { return {}; }  // the checkpoint's model family, e.g. "vidi1.5"
    // A retrieved range as the model family prints it (Vidi1.5: "00:00:12-00:00:19").
    virtual std::string format_range(const TimeRange& r) const { return vidi::format_range(r); }
    // Bytes an encoded video holds per media token at most (f32 token and K/V): cache sizing.
    virtual int64_t media_token_bytes() const { return 0; }

    // Throws vidi::Error when `question` cannot be asked whatever the video (an empty query, a
    // prompt past the model's context): callers check before an encode that would be wasted.
    virtual void check_question(const Question& /*question*/, bool /*with_video*/) const {}
    // Decodes, samples and encodes the video (towers, glue, per-layer media K/V).
    virtual std::shared_ptr<const Video> encode_video(const std::string& path) = 0;
    // When does `query` happen: the family's retrieval question (Vidi1.5: "During which time
    // segments in the video can we see {query}?"), its answer parsed into ranges.
    virtual Answer retrieve(const Video& video, const std::string& query, const GenerateOptions& opt = {}) = 0;
    // Free-form question about the video, or a text-only turn when video is null.
    virtual Answer ask(const Video* video, const std::string& question, const GenerateOptions& opt = {}) = 0;

    // Questions about `video` (null: text-only turns) decoded as one batch (see Batch).
    virtual std::unique_ptr<Batch> batch(const Video* video) = 0;
    // Several questions at once, through one batch; the answers in the questions' order.
    std::vector<Answer> answer(const Video* video, const std::vector<Question>& questions);

    // The GPU memory the engine holds and may hold (both 0 on the CPU). Call it on the thread
    // that runs the engine.
    struct MemoryUse {
        size_t in_use = 0;  // held by the engine's tensors and kept for reuse
        size_t limit = 0;   // --gpu-memory, else the device's size
    };
    virtual MemoryUse memory_use() const { return {}; }

    // The media tokens of an encoded video, for a disk cache: load_video() skips decoding
    // and the towers, and rebuilds only the media K/V. The file records the model it
    // belongs to; loading it into another model is an error.
    virtual void save_video(const Video& video, const std::string& path) = 0;
    virtual std::shared_ptr<const Video> load_video(const std::string& path) = 0;
};

// "19GiB", "20G", "512MiB", "20000000000" -> bytes (--gpu-memory); anything else is a vidi::Error.
size_t parse_bytes(const std::string& text);

}  // namespace vidi
