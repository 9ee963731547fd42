// Media tokens on disk (the serve cache, Engine::save_video/load_video): safetensors with
// the model's fingerprint, so that another model's tokens are refused.
#pragma once

#include <string>

#include "runtime/loaded_model.h"
#include "runtime/video_encoding.h"

namespace vidi::runtime {

void save_tokens(LoadedModel& model, const MediaTokens& tokens, const std::string& path);
MediaTokens load_tokens(LoadedModel& model, const std::string& path);

}  // namespace vidi::runtime
