#include "backend/cuda/device_pool.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "backend/cuda/cuda_check.h"

namespace vidi::cuda {
namespace {
std::string gib(size_t bytes) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0) << " GiB";
    return os.str();
}
}  // namespace

DevicePool::~DevicePool() {
    // Errors are ignored here: at process exit the CUDA context may already be gone.
    for (auto& [cls, blocks] : free_)
        for (void* p : blocks) cudaFree(p);
}

size_t DevicePool::size_class(size_t bytes) {
    if (bytes == 0) bytes = 1;
    constexpr size_t kSmall = 512, kLarge = size_t(2) << 20;
    // Small blocks in 512-byte steps, large ones in 2 MiB steps: repeated shapes hit
    // the same class, and a large class wastes at most 2 MiB.
    if (bytes < (size_t(1) << 20)) return (bytes + kSmall - 1) / kSmall * kSmall;
    return (bytes + kLarge - 1) / kLarge * kLarge;
}

void DevicePool::make_room(size_t bytes, const std::string& what) {
    if (!limit_ || bytes_in_use() + bytes_cached() + bytes <= limit_) return;
    release_cached();
    if (bytes_in_use() + bytes > limit_)
        fail("cuda:", ordinal_, ": out of GPU memory under the --gpu-memory limit of ", gib(limit_), ": ", what,
             " needs ", gib(bytes), " more and vidi already holds ", gib(bytes_in_use()));
}

std::shared_ptr<void> DevicePool::allocate(size_t bytes, const std::string& what) {
    const size_t cls = size_class(bytes);
    void* p = nullptr;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = free_.find(cls);
        if (it != free_.end() && !it->second.empty()) {
            p = it->second.back();
            it->second.pop_back();
            cached_ -= cls;
        }
    }
    if (!p) make_room(cls, what);
    if (!p) {
        cudaError_t err = cudaMalloc(&p, cls);
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clear the sticky-free error state of the runtime
            release_cached();
            err = cudaMalloc(&p, cls);
        }
        if (err == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            fail("cuda:", ordinal_, ": out of GPU memory allocating ", cls, " bytes (", gib(cls), ") for ", what,
                 " (cudaMalloc): ", free_b, " bytes (", gib(free_b), ") free of ", gib(total_b), ", ",
                 gib(bytes_in_use()), " held by vidi tensors");
        }
        VIDI_CUDA_CHECK(err);
    }
    {
        std::lock_guard<std::mutex> lock(mu_);
        in_use_ += cls;
    }
    std::shared_ptr<DevicePool> self = shared_from_this();
    return std::shared_ptr<void>(p, [self, cls](void* q) { self->give_back(q, cls); });
}

std::shared_ptr<void> DevicePool::allocate_packed(size_t bytes, const std::string& what) {
    constexpr size_t kSlabBytes = size_t(32) << 20, kAlign = 256;
    bytes = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
    if (bytes > kSlabBytes / 4) return allocate(bytes, what);  // large enough for a class of its own
    std::lock_guard<std::mutex> lock(slab_mu_);
    std::shared_ptr<Slab> slab = slab_.lock();
    if (!slab || slab->used + bytes > kSlabBytes) {
        slab = std::make_shared<Slab>();
        slab->block = allocate(kSlabBytes, cat("a 32 MiB slab of weights (for ", what, ")"));
        slab_ = slab;
    }
    void* p = static_cast<char*>(slab->block.get()) + slab->used;
    slab->used += bytes;
    return std::shared_ptr<void>(p, [slab](void*) {});  // each tensor keeps its slab alive
}

std::shared_ptr<void> DevicePool::reserve(size_t bytes, const std::string& what) {
    make_room(bytes, what);
    {
        std::lock_guard<std::mutex> lock(mu_);
        in_use_ += bytes;
    }
    std::shared_ptr<DevicePool> self = shared_from_this();
    return std::shared_ptr<void>(self.get(), [self, bytes](void*) {
        std::lock_guard<std::mutex> lock(self->mu_);
        self->in_use_ -= bytes;
    });
}

void DevicePool::give_back(void* p, size_t cls) {
    std::lock_guard<std::mutex> lock(mu_);
    in_use_ -= cls;
    cached_ += cls;
    free_[cls].push_back(p);
}

void DevicePool::release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [cls, blocks] : free_) {
        for (void* p : blocks) VIDI_CUDA_CHECK(cudaFree(p));
        blocks.clear();
    }
    cached_ = 0;
}

size_t DevicePool::bytes_in_use() const {
    std::lock_guard<std::mutex> lock(mu_);
    return in_use_;
}

size_t DevicePool::bytes_cached() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
}

}  // namespace vidi::cuda
