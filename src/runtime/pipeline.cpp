#include "runtime/pipeline.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>

#include "io/checkpoint.h"
#include "media/media.h"
#include "runtime/media_plan.h"
#include "runtime/memory_plan.h"
#include "runtime/prompt.h"

namespace fs = std::filesystem;

namespace vidi::runtime {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string make_fingerprint(const io::ModelConfig& c, const io::TensorStore& w) {
    // Architecture sizes plus the checkpoint's byte count and tensor count: enough to
    // refuse media tokens made by a different model.
    return cat(c.model_type, ":D", c.llm.hidden, ":L", c.llm.layers, ":V", c.llm.vocab, ":vis", c.vision.hidden, "x",
               c.vision.layers, ":aud", c.audio.d_model, "x", c.audio.layers, ":bytes", w.total_bytes(), ":tensors",
               w.names().size());
}

}  // namespace

Pipeline::Pipeline(const EngineOptions& options) : options_(options) {
    VIDI_CHECK(!options.model_dir.empty(), "no model directory given (--model DIR)");
    io::Checkpoint ckpt = io::Checkpoint::open(options.model_dir);
    ckpt.require_usable();
    config_ = ckpt.config();
    weights_ = ckpt.store();
    std::string tok_path = (fs::path(options.model_dir) / "tokenizer.model").string();
    tokenizer_ = std::make_unique<io::Tokenizer>(io::Tokenizer::load(tok_path));
    if (tokenizer_->vocab_size() > config_.llm.vocab)
        fail(tok_path, ": the tokenizer has ", tokenizer_->vocab_size(), " pieces but the model's vocabulary is ",
             config_.llm.vocab);
    backend_ = make_backend(options.backend, options.threads, parse_compute_dtype(options.dtype));
    const char* sync = std::getenv("VIDI_SYNC_PROGRESS");
    sync_progress_ = sync && std::string(sync) == "1";
    if (options.gpu_memory_limit) backend_->set_memory_limit(options.gpu_memory_limit);
    const std::set<std::string> linear_names = linear_weight_names(ckpt);
    const WeightChoice w = choose_weights(ckpt, linear_names, options.weights, backend_->device_memory(),
                                          options.frame_batch, backend_->act_dtype());
    weight_format_ = w.format;
    notice(w.note);
    if (auto mem = backend_->device_memory()) require_fits(cat("the model's weights (", w.format.name(), ")"), w.bytes, *mem);
    progress("load", 0, 1);
    model::LoadOptions load;
    load.linear_format = w.format;
    model::WeightLoader root(weights_, *backend_, load);
    media_encoder_ = std::make_unique<model::MediaEncoder>(config_, root);
    decoder_ = std::make_unique<model::Gemma2>(config_, root);
    progress("load", 1, 1);
    // Quantised towers give other media tokens: the format is part of the identity.
    fingerprint_ = make_fingerprint(config_, weights_) + ":w" + weight_format_.name();
    // So do fp16 towers: tokens made in bf16 are not the official float16 ones.
    if (backend_->act_dtype() == DType::f16) fingerprint_ += ":f16";
}

MediaTokens Pipeline::media_tokens(const std::string& video_path, MediaCapture* capture) {
    MediaTokens out;
    media::FrameStream frames(video_path, config_.vision.image_size, std::max(1, options_.frame_batch),
                              std::max(0, options_.decode_lanes), options_.media_inputs);
    const int64_t sampled = frames.total_frames();
    if (sampled < 2)
        fail(video_path, ": ", sampled, " frame(s) sampled at 1 fps; Vidi needs a video of at least two (",
             "duration ", frames.info().duration, " s)");
    out.duration = frames.info().duration;
    const int64_t audio_estimate =
        frames.info().has_audio ? media_encoder_->audio_token_count(static_cast<int64_t>(out.duration * 100)) : 0;
    // Plans K/V format and token budget (refusing before any decoding when nothing fits).
    const MediaChoice choice = choose_media(config_, sampled, audio_estimate,
                                            {options_.media_kv, options_.visual_token_budget},
                                            backend_->device_memory(), options_.frame_batch, backend_->act_dtype());
    if (backend_->device_memory() || choice.step > 1 || choice.budget != model::kVisualTokenBudget)
        notice(cat("video: ", choice.describe()));
    frames.keep_every(choice.step);
    // Decoding starts before the large allocations below (the media K/V: 21 GiB for ten
    // minutes); so does the audio's, on a thread of its own: it needs nothing from the frames.
    // Once its samples are there, the audio goes through log-mel (the backend's: on the GPU,
    // a batch of FFTs), Whisper and the decoder's layers between two frame batches: the GPU has
    // time for it while the first frames are decoded, and it no longer waits at the end.
    frames.start();
    std::future<media::AudioSamples> audio_job = std::async(std::launch::async, [this, &video_path] {
        return media::load_audio_samples(video_path, options_.media_inputs);
    });
    const int64_t F = frames.total_frames();
    const int64_t budget = choice.budget;
    out.frames = F;
    out.kv = choice.kv;
    out.grid_h = out.grid_w = media_encoder_->grid_side(F, budget);
    const int64_t per_frame = out.grid_h * out.grid_w;
    out.image = backend_->act({F * per_frame, config_.llm.hidden});
    // The visual tokens go through the decoder's layers as soon as a chunk of them is ready,
    // so the GPU works on them while later frames are still being decoded.
    out.visual_kv = std::make_shared<model::MediaKV>(decoder_->new_media_kv(F * per_frame, choice.kv));
    int64_t kv_rows = 0;
    auto encode_rows = [&](int64_t upto) {
        decoder_->encode_media_rows(*out.visual_kv, kv_rows, out.image.rows(kv_rows, upto));
        kv_rows = upto;
        progress("tokens", kv_rows, F * per_frame);  // visual tokens through the decoder's layers
    };

    bool audio_done = false;
    auto encode_audio = [&] {
        audio_done = true;
        const media::AudioSamples audio = audio_job.get();
        if (!audio.present) return;
        const int bins = config_.audio.mel_bins;
        if (capture) {  // the f32 features of the host's log-mel, before any dtype rounding
            capture->mel = log_mel_pieces(audio.pcm.data<float>(), audio.pcm.numel(), bins);
            capture->mel_frames = audio.mel_frames;
        }
        {  // the log-mel is not needed past the tower: its memory serves the K/V below
            progress("log-mel", 0, 1);
            Tensor mel;
            {
                const Section s = backend_->section("log-mel");
                mel = backend_->log_mel(audio.pcm, bins);
            }
            progress("log-mel", 1, 1);
            out.audio = media_encoder_->audio_tokens(mel, audio.mel_frames, [&](int64_t done, int64_t total) {
                progress("audio", done, total);
            });
        }
        if (out.audio.dim(0) > 0)
            out.audio_kv = std::make_shared<model::MediaKV>(decoder_->encode_media(out.audio, choice.kv));
    };
    Tensor rgb;
    std::vector<int64_t> positions;
    int64_t done = 0;
    const int S = config_.vision.image_size;
    // The backend resizes and normalises (on the GPU, the decoded frames go up as they are).
    while (frames.next_frames(rgb, positions)) {
        if (capture)  // the f32 pixels of the host's resize, before any dtype rounding
            for (size_t i = 0; i < positions.size(); ++i)
                if (capture->frames.count(positions[i])) {
                    Tensor px = Tensor::empty({3, S, S}, DType::f32);
                    frames_to_pixels_f32(rgb.row(static_cast<int64_t>(i)).data<uint8_t>(), 1,
                                         static_cast<int>(rgb.dim(1)), static_cast<int>(rgb.dim(2)), S,
                                         px.data<float>());
                    capture->pixels[positions[i]] = px;
                }
        Tensor pixels;
        {
            const Section s = backend_->section("pixels");
            pixels = backend_->frames_to_pixels(rgb, S);
        }
        Tensor tokens = media_encoder_->image_tokens(pixels, positions, F, budget);
        // Batches arrive in order, so the frame-major rows are contiguous.
        const int64_t ready = (positions.back() + 1) * per_frame;  // token rows written so far
        Tensor dst = out.image.rows(positions.front() * per_frame, ready);
        backend_->copy_(dst, tokens);
        done += static_cast<int64_t>(positions.size());
        if (ready - kv_rows >= model::kMediaKvChunk) encode_rows(ready);
        progress("frames", done, F);
        if (!audio_done && audio_job.wait_for(std::chrono::seconds(0)) == std::future_status::ready) encode_audio();
    }
    VIDI_CHECK(done == F, video_path, ": decoded ", done, " of ", F, " sampled frames");
    if (kv_rows < F * per_frame) encode_rows(F * per_frame);
    if (!audio_done) encode_audio();
    return out;
}

std::shared_ptr<EncodedVideo> Pipeline::encode(MediaTokens tokens) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = std::make_shared<EncodedVideo>();
    const bool has_audio = tokens.audio.defined() && tokens.audio.dim(0) > 0;
    if (!tokens.kv) {
        const int64_t n = tokens.image.dim(0) + (has_audio ? tokens.audio.dim(0) : 0);
        tokens.kv = choose_kv_for_tokens(config_, n, options_.media_kv, backend_->device_memory(),
                                         backend_->act_dtype());
    }
    progress("media-kv", 0, 2);
    v->visual = tokens.visual_kv ? std::move(*tokens.visual_kv) : decoder_->encode_media(tokens.image, *tokens.kv);
    tokens.visual_kv.reset();
    progress("media-kv", 1, 2);
    if (has_audio)
        v->audio = tokens.audio_kv ? std::move(*tokens.audio_kv) : decoder_->encode_media(tokens.audio, *tokens.kv);
    tokens.audio_kv.reset();
    progress("media-kv", 2, 2);
    // The tokens stay where they are (the memory plan counts them for as long as the video
    // lives); only saving the video brings them to the host. Copying them back here cost the
    // request 0.5 s on the H100 machine (0.8 GiB of f32 host memory, freshly faulted in).
    v->tokens = std::move(tokens);
    backend_->synchronize();
    v->seconds = seconds_since(t0);
    report_profile();
    return v;
}

std::shared_ptr<EncodedVideo> Pipeline::encode_video(const std::string& video_path) {
    auto t0 = std::chrono::steady_clock::now();
    MediaTokens tokens = media_tokens(video_path);
    double front = seconds_since(t0);
    auto v = encode(std::move(tokens));
    v->seconds += front;
    return v;
}

void Pipeline::save_tokens(const MediaTokens& t, const std::string& path) {
    // In the tokens' own dtype: bf16 on a GPU, half an f32 file and no conversion on the way
    // down (a 10-minute video's tokens: 0.47 GB). load_tokens() takes either.
    auto download = [&](const Tensor& x) {
        Tensor host = Tensor::empty(x.shape(), x.dtype());
        backend_->copy_(host, x);
        return host;
    };
    std::vector<std::pair<std::string, Tensor>> tensors{{"image_tokens", download(t.image)}};
    if (t.audio.defined()) tensors.emplace_back("audio_tokens", download(t.audio));
    io::save_safetensors(path, tensors,
                         {{"vidi_model", fingerprint_},
                          {"duration", cat(t.duration)},
                          {"frames", cat(t.frames)},
                          {"grid_h", cat(t.grid_h)},
                          {"grid_w", cat(t.grid_w)}});
}

MediaTokens Pipeline::load_tokens(const std::string& path) {
    auto f = io::SafetensorsFile::open(path);
    auto meta = [&](const char* key) -> const std::string& {
        auto it = f->metadata().find(key);
        if (it == f->metadata().end()) fail(path, ": not a vidi media file (no '", key, "' metadata)");
        return it->second;
    };
    if (meta("vidi_model") != fingerprint_)
        fail(path, ": media tokens were made by another model (", meta("vidi_model"), ", this is ", fingerprint_, ")");
    MediaTokens t;
    try {
        t.duration = std::stod(meta("duration"));
        t.frames = std::stoll(meta("frames"));
        t.grid_h = std::stoll(meta("grid_h"));
        t.grid_w = std::stoll(meta("grid_w"));
    } catch (const std::logic_error&) {
        fail(path, ": corrupt media metadata");
    }
    Tensor image = f->get("image_tokens");
    if (image.shape() != Shape{t.frames * t.grid_h * t.grid_w, config_.llm.hidden})
        fail(path, ": image_tokens ", shape_str(image.shape()), " do not match the recorded grid");
    t.image = backend_->upload(image);
    if (f->has("audio_tokens")) t.audio = backend_->upload(f->get("audio_tokens"));
    return t;
}

std::vector<int32_t> Pipeline::prompt(const std::string& text, bool with_media) const {
    return build_prompt(*tokenizer_, text, with_media, config_.llm.bos_id);
}

GenerationResult Pipeline::run(const std::vector<int32_t>& prompt_ids, const EncodedVideo* video, int max_new_tokens,
                               bool keep_prompt_logits) {
    GenerationRequest req;
    req.prompt = prompt_ids;
    if (video) req.media = video->media();
    req.max_new_tokens = max_new_tokens;
    req.stop_id = stop_id();
    req.keep_prompt_logits = keep_prompt_logits;
    req.progress = options_.progress;
    GenerationResult result = generate(*decoder_, req);
    report_profile();
    return result;
}

BatchGeneration Pipeline::batch(const EncodedVideo* video) const {
    return BatchGeneration(*decoder_, video ? video->media() : std::vector<const model::MediaKV*>{}, stop_id(),
                           options_.progress);
}

int Pipeline::stop_id() const {
    const int id = tokenizer_->piece_to_id("<end_of_turn>");
    return id < 0 ? 107 : id;
}

}  // namespace vidi::runtime
