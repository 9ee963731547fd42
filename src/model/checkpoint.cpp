#include "model/checkpoint.h"

#include <filesystem>

#include "io/json_file.h"
#include "io/tokenizer.h"
#include "model/family.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::model {

Checkpoint Checkpoint::open(const std::string& dir) {
    ModelConfig config = load_config(dir);
    Checkpoint ck;
    static_cast<io::Checkpoint&>(ck) = io::Checkpoint::open(
        dir, [&](const io::TensorStore& store) { return config.family->expected_tensors(config, &store); });
    ck.config_ = std::move(config);
    return ck;
}

io::Tokenizer load_tokenizer(const std::string& path, const Family& family, const LlmConfig& llm) {
    io::Tokenizer tok = io::Tokenizer::load(path, family.markup_pieces());
    const std::string foreign = " (is it another model's tokenizer?)";
    if (tok.vocab_size() > llm.vocab)
        fail(path, ": the tokenizer has ", tok.vocab_size(), " pieces but the model's vocabulary is ", llm.vocab);
    for (const std::string& piece : family.prompt_pieces())
        if (tok.piece_to_id(piece) < 0)
            fail(path, ": no piece ", piece, ", which ", family.name(), "'s prompts are made of", foreign);
    if (tok.bos_id() >= 0 && tok.bos_id() != llm.bos_id)
        fail(path, ": <bos> is id ", tok.bos_id(), " but config.json's bos_token_id is ", llm.bos_id, foreign);
    return tok;
}

io::Tokenizer Checkpoint::tokenizer() const {
    return load_tokenizer((fs::path(dir()) / "tokenizer.model").string(), family(), config_.llm);
}

void copy_tower_configs(const json& config, const std::string& config_dir, const std::string& out_dir) {
    for (const char* key : {"mm_vision_tower", "mm_audio_tower"}) {
        if (!config.contains(key) || !config[key].is_string()) continue;
        fs::path tower(config[key].get<std::string>());
        if (tower.is_absolute()) continue;  // stays valid as it is
        fs::path src = fs::path(config_dir) / tower / "config.json";
        if (!fs::exists(src)) continue;  // a hub id: built-in config
        fs::create_directories(fs::path(out_dir) / tower);
        const fs::path dst = fs::path(out_dir) / tower / "config.json";
        fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
        fs::permissions(dst, fs::perms::owner_write, fs::perm_options::add);  // sources may be read-only
    }
}

io::RandomCheckpointSummary write_random_checkpoint(const json& config, const std::string& config_dir,
                                                    const io::RandomCheckpointOptions& opt) {
    VIDI_CHECK(opt.shard_bytes > 0, "make-checkpoint: shard size must be positive");
    const ModelConfig cfg = config_from_json(config, config_dir);  // validates and resolves towers
    // A tokenizer given is checked before gigabytes of weights are written beside it.
    if (!opt.tokenizer_model.empty()) {
        if (!fs::is_regular_file(opt.tokenizer_model)) fail(opt.tokenizer_model, ": tokenizer model not found");
        load_tokenizer(opt.tokenizer_model, *cfg.family, cfg.llm);
    }
    io::StagedDir staged(opt.out_dir);  // OUT appears whole or not at all
    io::RandomCheckpointOptions into = opt;
    into.out_dir = staged.path();
    const io::RandomCheckpointSummary summary =
        io::write_random_tensors(cfg.family->random_checkpoint_tensors(cfg), into);
    const fs::path out(staged.path());
    io::write_json_file((out / "config.json").string(), config);
    copy_tower_configs(config, config_dir, out.string());
    const fs::path tok = out / "tokenizer.model";
    if (!opt.tokenizer_model.empty()) {
        fs::copy_file(opt.tokenizer_model, tok);
        fs::permissions(tok, fs::perms::owner_write, fs::perm_options::add);
    } else {
        io::write_sentencepiece_model(tok.string(), cfg.llm.vocab, cfg.family->tokenizer_layout());
    }
    staged.commit();
    return summary;
}

}  // namespace vidi::model
