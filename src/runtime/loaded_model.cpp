#include "runtime/loaded_model.h"

#include <algorithm>
#include <chrono>

#include "core/env_switch.h"
#include "core/log_mel.h"
#include "model/checkpoint.h"
#include "model/common/chat_template.h"
#include "model/common/dattn_decoder.h"
#include "model/common/tower_memory.h"
#include "runtime/media_plan.h"
#include "runtime/memory_plan.h"
#include "runtime/seconds_since.h"
#include "runtime/video_encoding.h"

namespace vidi::runtime {

namespace {

// FNV-1a over every tensor's name and 64 bytes at its start, middle and end: weights changed
// in place, or another checkpoint of the same shapes (a fine-tune), give another digest,
// without reading gigabytes.
uint64_t weights_digest(const io::TensorStore& w) {
    uint64_t h = 0xcbf29ce484222325ull;
    const auto mix = [&h](const char* p, size_t n) {
        for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ull;
    };
    for (const std::string& name : w.names()) {
        mix(name.data(), name.size() + 1);
        const Tensor t = w.get(name);
        const char* bytes = static_cast<const char*>(t.raw());
        const size_t n = t.nbytes(), piece = std::min<size_t>(64, n);
        for (const size_t at : {size_t(0), (n - piece) / 2, n - piece}) mix(bytes + at, piece);
    }
    return h;
}

std::string make_fingerprint(const model::ModelConfig& c, const io::TensorStore& w) {
    // Architecture sizes, the checkpoint's byte and tensor counts and a digest of samples of
    // its weights: media tokens made by another model are refused.
    return cat(c.model_type, ":D", c.llm.hidden, ":L", c.llm.layers, ":V", c.llm.vocab, ":vis", c.vision.hidden, "x",
               c.vision.layers, ":aud", c.audio.d_model, "x", c.audio.layers, ":bytes", w.total_bytes(), ":tensors",
               w.names().size(), ":weights", std::hex, weights_digest(w));
}

}  // namespace

LoadedModel::LoadedModel(const EngineOptions& options) : options_(options) {
    VIDI_CHECK(!options.model_dir.empty(), "no model directory given (--model DIR)");
    model::Checkpoint ckpt = model::Checkpoint::open(options.model_dir);
    ckpt.require_usable();
    config_ = ckpt.config();
    weights_ = ckpt.store();
    const model::Family& fam = ckpt.family();
    tokenizer_ = std::make_unique<io::Tokenizer>(ckpt.tokenizer());
    stop_ids_ = fam.stop_ids(*tokenizer_, config_);
    if (!config_.family_warning.empty()) warn(config_.family_warning);
    if (auto w = model::chat_template_warning(options.model_dir, fam.chat_templates(), fam.name())) warn(*w);
    backend_ = make_backend(options.backend, options.threads, parse_compute_dtype(options.dtype));
    sync_progress_ = env_is("VIDI_SYNC_PROGRESS", "1");
    if (options.gpu_memory_limit) backend_->set_memory_limit(options.gpu_memory_limit);
    VIDI_CHECK(options.compute == "16bit" || options.compute == "fp8", "compute \"", options.compute,
               "\": expected 16bit or fp8");
    if (options.compute == "fp8") backend_->set_fp8_encode(true);
    const WeightChoice w =
        choose_weights(ckpt, options.weights, backend_->device_memory(), options.frame_batch, backend_->act_dtype());
    weight_format_ = w.format;
    notice(w.note);
    if (auto mem = backend_->device_memory()) require_fits(cat("the model's weights (", w.format.name(), ")"), w.bytes, *mem);
    model::LoadOptions load;
    load.linear_format = w.format;
    if (backend_->fp8_encode()) {
        std::string how = "int8/int4 weights keep their own GEMMs";
        if (const auto mem = backend_->device_memory(); mem && !w.format.quantized()) {
            const size_t copies = model::media_fp8_copy_bytes(config_.llm) + model::tower_fp8_copy_bytes(config_) +
                                  model::media_fold_bytes(config_.llm, dtype_size(backend_->act_dtype()));
            const Fp8CopyChoice c = choose_fp8_copies(copies, w.bytes, *mem);
            load.fp8_copies = c.keep;
            how = c.note;
        }
        notice(cat("compute: the media tokens' layers and the towers' normed linears in FP8 (E4M3, per-row "
                   "scales); ", how));
    }
    progress("load", 0, 1);
    model::WeightLoader root(weights_, *backend_, load);
    media_ = fam.make_media(config_, root);
    decoder_ = fam.make_decoder(config_, root);
    progress("load", 1, 1);
    // Quantised towers give other media tokens: the format is part of the identity.
    fingerprint_ = make_fingerprint(config_, weights_) + ":w" + weight_format_.name();
    // So do fp16 towers: tokens made in bf16 are not the official float16 ones.
    if (backend_->act_dtype() == DType::f16) fingerprint_ += ":f16";
    // And towers in FP8 (--compute fp8).
    if (backend_->fp8_encode()) fingerprint_ += ":fp8";
    if (options.warm_up && backend_->device() != Device::cpu) warm_up();
}

void LoadedModel::warm_up() {
    // On an H100 the first f32 GEMM (cuBLASLt's first call: the positional MLPs) held the host
    // 117-195 ms and the first audio batch (cuFFT's plan, the towers' first GEMMs) 96 ms, while
    // the GPU idled at the start of the first video (bench/RESULTS.md, 2026-12-07).
    const auto t0 = std::chrono::steady_clock::now();
    try {
        const int64_t frames = 2, budget = family().default_visual_budget();
        media_->prepare_video(frames, budget);
        const Tensor mel = backend_->log_mel(Tensor::zeros({kPieceSamples}, DType::f32), config_.audio.mel_bins);
        media_->audio_tokens(mel, kMelFrames);
        const int S = config_.vision.image_size;
        const Tensor image =
            media_->image_tokens(Tensor::zeros({1, config_.vision.channels, S, S}, DType::f32), {0}, frames, budget);
        const model::MediaKV kv = decoder_->encode_media(image);
        model::TextCache cache = decoder_->new_cache(4);
        decoder_->forward_on_device({1, 2}, cache, {&kv}, false);  // a prompt, then a step
        decoder_->forward_on_device({2}, cache, {&kv}, false);
        backend_->synchronize();
    } catch (const Error& e) {  // (tight memory): the first request pays those costs instead
        notice(cat("warm-up skipped: ", e.what()));
    }
    if (backend_->profiling()) {  // its sections are not the first video's
        backend_->profile_report();
        notice(cat("profile: warm-up at load ", seconds_since(t0), " s"));
    }
}

std::vector<int32_t> LoadedModel::prompt(const std::string& text, bool with_media) const {
    return family().prompt(*tokenizer_, config_, text, with_media);
}

GenerationResult LoadedModel::run(const std::vector<int32_t>& prompt_ids, const EncodedVideo* video, int max_new_tokens,
                               bool keep_prompt_logits) {
    GenerationRequest req;
    req.prompt = prompt_ids;
    if (video) req.media = video->media();
    req.max_new_tokens = max_new_tokens;
    req.stop_ids = stop_ids_;
    req.keep_prompt_logits = keep_prompt_logits;
    req.progress = options_.progress;
    GenerationResult result = generate(*decoder_, req);
    report_profile();
    return result;
}

BatchGeneration LoadedModel::batch(const EncodedVideo* video) const {
    return BatchGeneration(*decoder_, video ? video->media() : std::vector<const model::MediaKV*>{}, stop_ids_,
                           options_.progress);
}

void LoadedModel::progress(const std::string& stage, int64_t done, int64_t total) const {
    if (!options_.progress) return;
    if (sync_progress_) backend_->synchronize();
    options_.progress(stage, done, total);
}

void LoadedModel::report_profile() const {
    if (backend_->profiling())
        for (const std::string& line : backend_->profile_report()) notice(line);
}

void LoadedModel::notice(const std::string& line) const {
    if (options_.notice) options_.notice(line);
}

void LoadedModel::warn(const std::string& line) const {
    if (options_.warning) options_.warning(line);
}

}  // namespace vidi::runtime
