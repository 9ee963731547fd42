#include "backend/cuda/early_launch.h"

#include <array>
#include <atomic>

#include "core/env_switch.h"

namespace vidi::cuda {

bool early_launch_enabled() {
    static const bool allowed = !env_is("VIDI_EARLY_LAUNCH", "0");
    if (!allowed) return false;
    // Per device: 0 unknown, 1 no, 2 yes (a process may drive GPUs of different generations).
    static std::array<std::atomic<int>, 64> known{};
    int device = 0;
    VIDI_CUDA_CHECK(cudaGetDevice(&device));
    if (device < 0 || device >= static_cast<int>(known.size())) return false;
    int state = known[static_cast<size_t>(device)].load(std::memory_order_relaxed);
    if (state == 0) {
        int major = 0;
        VIDI_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
        state = major >= 9 ? 2 : 1;
        known[static_cast<size_t>(device)].store(state, std::memory_order_relaxed);
    }
    return state == 2;
}

}  // namespace vidi::cuda
