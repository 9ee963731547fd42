// `vidi inspect DIR [--json]`: architecture, parameter counts, memory needs and the
// validation verdict of a checkpoint. Exit status 0 only when the checkpoint is usable.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/commands.h"
#include "io/checkpoint.h"
#include "io/json_file.h"
#include "vidi/error.h"

namespace vidi::app {

namespace {

using nlohmann::json;

// 9.242B, 1.604M, 105.4K: parameter counts at a glance.
std::string billions(int64_t n) {
    char b[32];
    if (n >= 100'000'000) std::snprintf(b, sizeof b, "%.3fB", double(n) / 1e9);
    else if (n >= 100'000) std::snprintf(b, sizeof b, "%.3fM", double(n) / 1e6);
    else std::snprintf(b, sizeof b, "%.1fK", double(n) / 1e3);
    return b;
}

std::string gigabytes(int64_t n) {
    char b[32];
    if (n >= 100'000'000) std::snprintf(b, sizeof b, "%.2f GB", double(n) / 1e9);
    else std::snprintf(b, sizeof b, "%.2f MB", double(n) / 1e6);
    return b;
}

// Weights stored quantised by `vidi quantize` (codes + NAME_scale).
int64_t quantized_tensors(const io::Checkpoint& ck) {
    int64_t n = 0;
    for (const std::string& name : ck.store().names()) n += ck.has(name + io::kQuantScaleSuffix);
    return n;
}

// config.json's "vidi_quantization" entry ({} when absent).
json quantization_entry(const io::Checkpoint& ck) {
    json c = io::read_json_file((std::filesystem::path(ck.dir()) / "config.json").string());
    return c.value("vidi_quantization", json::object());
}

json report_json(const io::Checkpoint& ck, double open_s) {
    const io::ParamCounts p = ck.params();
    const io::WeightBytes all = io::weight_bytes(p.total()), used = io::weight_bytes(p.used);
    const io::ValidationReport& r = ck.report();
    json j = io::config_to_json(ck.config());
    j["dir"] = ck.dir();
    j["shards"] = ck.store().files().size();
    j["tensor_bytes"] = ck.store().total_bytes();
    j["open_seconds"] = open_s;
    j["vision_prefix"] = ck.vision_prefix();
    j["media"]["image_projector_in"] = ck.config().vision.hidden * ck.config().mm.image_pool * ck.config().mm.image_pool;
    j["params"] = {{"llm", p.llm}, {"vision", p.vision}, {"audio", p.audio}, {"glue", p.glue},
                   {"total", p.total()}, {"used", p.used}};
    j["bytes"] = {{"bf16", all.bf16}, {"int8", all.int8}, {"q4", all.q4},
                  {"used_bf16", used.bf16}, {"used_int8", used.int8}, {"used_q4", used.q4}};
    j["validation"] = {{"usable", r.usable()}, {"checked", r.checked}, {"errors", r.errors},
                       {"missing", r.missing}, {"unexpected", r.unexpected}, {"unused", r.unused}};
    j["usable"] = r.usable();
    j["quantized_tensors"] = quantized_tensors(ck);
    j["quantization"] = quantization_entry(ck);
    return j;
}

void print_text(const io::Checkpoint& ck, double open_s) {
    const io::ModelConfig& c = ck.config();
    const io::LlmConfig& l = c.llm;
    const io::ParamCounts p = ck.params();
    const io::WeightBytes all = io::weight_bytes(p.total()), used = io::weight_bytes(p.used);
    std::ostringstream os;
    os << "checkpoint " << ck.dir() << ": " << ck.store().files().size() << " shard(s), "
       << gigabytes(int64_t(ck.store().total_bytes())) << " of tensors, opened in " << open_s * 1e3 << " ms\n";
    os << "LLM     " << c.model_type << ": " << l.layers << " layers, D " << l.hidden << ", " << l.heads << " heads / "
       << l.kv_heads << " KV heads, head dim " << l.head_dim << ", MLP " << l.intermediate << ", vocab " << l.vocab
       << ", sliding window " << l.sliding_window << ", softcaps " << l.attn_softcap << "/" << l.final_softcap
       << (ck.has("lm_head.weight") && !l.tie_embeddings ? ", own lm_head" : ", tied lm_head") << "\n";
    os << "vision  SigLIP (" << c.vision.source << "): " << c.vision.layers << " layers (" << c.vision_layers_used()
       << " used), width " << c.vision.hidden << ", " << c.vision.heads << " heads, MLP " << c.vision.intermediate
       << ", " << c.vision.image_size << " px / patch " << c.vision.patch_size << " (" << c.vision.grid() << "x"
       << c.vision.grid() << ")\n";
    os << "audio   Whisper encoder (" << c.audio.source << "): " << c.audio.layers << " layers, width "
       << c.audio.d_model << ", " << c.audio.heads << " heads, FFN " << c.audio.ffn << ", " << c.audio.mel_bins
       << " mel bins, " << c.audio.max_positions << " positions\n";
    os << "media   image pool " << c.mm.image_pool << " (projector in " << c.vision.hidden * c.mm.image_pool * c.mm.image_pool
       << "), audio pool " << c.mm.audio_pool << ", time interval " << c.mm.time_interval << ", select layer "
       << c.mm.select_layer << "\n";
    os << "params  LLM " << billions(p.llm) << ", vision " << billions(p.vision) << ", audio " << billions(p.audio)
       << ", glue " << billions(p.glue) << ", total " << billions(p.total()) << " (" << billions(p.used)
       << " used by inference)\n";
    os << "memory  bf16 " << gigabytes(all.bf16) << ", int8 " << gigabytes(all.int8) << ", 4-bit " << gigabytes(all.q4)
       << " (used only: " << gigabytes(used.bf16) << " / " << gigabytes(used.int8) << " / " << gigabytes(used.q4)
       << ")\n";
    if (const int64_t q = quantized_tensors(ck)) {
        os << "weights " << q << " linear weights stored quantised";
        os << " as " << quantization_entry(ck).value("weights", "?");
        os << " (codes + F32 scales; the rest bf16)\n";
    }
    os << "verdict " << ck.report().to_string() << "\n";
    std::cout << os.str();
}

}  // namespace

Runner add_inspect(CLI::App& app) {
    auto* cmd = app.add_subcommand("inspect", "Show a checkpoint's architecture, sizes and validation verdict");
    auto dir = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    cmd->add_option("DIR", *dir, "checkpoint directory (config.json + safetensors)")->required();
    cmd->add_flag("--json", *as_json, "print the same information as JSON");
    return [dir, as_json]() -> int {
        const auto t0 = std::chrono::steady_clock::now();
        io::Checkpoint ck;
        try {
            ck = io::Checkpoint::open(*dir);
        } catch (const Error& e) {
            if (!*as_json) throw;
            std::cout << json{{"dir", *dir}, {"usable", false}, {"error", e.what()}}.dump(2) << "\n";
            return 1;
        }
        const double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (*as_json)
            std::cout << report_json(ck, open_s).dump(2) << "\n";
        else
            print_text(ck, open_s);
        return ck.usable() ? 0 : 1;
    };
}

}  // namespace vidi::app
