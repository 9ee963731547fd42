// The Vidi-7B family (Mistral-7B with decomposed attention, SigLIP + Whisper towers, the
// first Vidi report's glue): its entry in the registry (model/registry.cpp).
#pragma once

#include "model/family.h"

namespace vidi::model::vidi7b {

const Family& family();

}  // namespace vidi::model::vidi7b
