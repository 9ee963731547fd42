// The Vidi1.5 family (Vidi1.5-9B): its entry in the registry (model/registry.cpp).
#pragma once

#include "model/family.h"

namespace vidi::model::vidi15 {

const Family& family();

}  // namespace vidi::model::vidi15
