// A checkpoint directory opened as a model: config.json read by its family (the registry
// picks it), every shard mapped and validated against the tensors the family expects
// (SPEC.md §1). Opening never copies weights. Also: random-weight checkpoints of a family.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "io/tokenizer.h"
#include "model/config.h"

namespace vidi::model {

class Family;

class Checkpoint : public io::Checkpoint {
public:
    // Throws vidi::Error when config.json or a shard is unreadable or corrupt, or names no
    // known family; validation problems go to report() (see require_usable).
    static Checkpoint open(const std::string& dir);

    const ModelConfig& config() const { return config_; }
    const Family& family() const { return *config_.family; }
    // DIR/tokenizer.model through load_tokenizer.
    io::Tokenizer tokenizer() const;

private:
    ModelConfig config_;
};

// A tokenizer.model as the engine takes it for `family` and `llm`: no more pieces than the
// vocabulary, the family's prompt pieces each one piece, and <bos> the config's bos_token_id
// (a tokenizer from another model loaded silently and tokenised "<start_of_turn>" as text).
io::Tokenizer load_tokenizer(const std::string& path, const Family& family, const LlmConfig& llm);

// `config` is a config.json object; tower directories it names (relative paths) are
// resolved against `config_dir` and their config.json copied beside the new checkpoint.
// The tensors are the family's official layout; tokenizer.model is options.tokenizer_model
// or one the family lays out (Family::tokenizer_layout) with the config's vocab_size.
io::RandomCheckpointSummary write_random_checkpoint(const nlohmann::json& config, const std::string& config_dir,
                                                    const io::RandomCheckpointOptions& options);

// Copies config_dir/<tower>/config.json to out_dir for towers named by a relative directory.
void copy_tower_configs(const nlohmann::json& config, const std::string& config_dir, const std::string& out_dir);

}  // namespace vidi::model
