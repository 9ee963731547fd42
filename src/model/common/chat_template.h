// The checkpoint's own chat template against the family's built-in prompt. The official
// code builds prompts with tokenizer_config.json's chat_template; the engine builds them
// itself (Family::prompt), so a checkpoint whose template says otherwise is warned about.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace vidi::model {

// The chat template of checkpoint `dir`: tokenizer_config.json's "chat_template" (a string,
// or the entry named "default" of a list), else chat_template.jinja; nullopt when it has none.
std::optional<std::string> checkpoint_chat_template(const std::string& dir);

// A warning when the checkpoint's template is none of `known` (compared after Jinja's "\n"
// escapes are read as newlines), naming where it first differs from the closest, or when its
// "chat_template" field holds no template (a number, an object, a list without "default");
// nullopt when it matches one or the checkpoint has no template.
std::optional<std::string> chat_template_warning(const std::string& dir, const std::vector<std::string>& known,
                                                 const std::string& family);

}  // namespace vidi::model
