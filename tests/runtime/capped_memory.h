// The memory planner's tests' device: 80 GiB with 79 free, of which `gib` GiB are left to vidi
// under a cap (--gpu-memory).
#pragma once

#include <cstddef>

#include "backend/backend.h"

namespace vidi::test {

inline DeviceMemory capped(double gib) {
    DeviceMemory m;
    m.total = size_t(80) << 30;
    m.free = size_t(79) << 30;
    m.limit = static_cast<size_t>(gib * double(1ull << 30));
    return m;
}

}  // namespace vidi::test
