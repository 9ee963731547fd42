// A caching allocator for device memory. cudaMalloc/cudaFree synchronise the device and
// cost tens of microseconds; inference allocates the same shapes layer after layer, so
// freed blocks are kept per size class and handed out again. All work runs on one stream,
// so a block freed while a queued kernel still reads it is only reused by later work on
// that same stream, after the kernel.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vidi::cuda {

class DevicePool : public std::enable_shared_from_this<DevicePool> {
public:
    explicit DevicePool(int ordinal) : ordinal_(ordinal) {}
    ~DevicePool();
    DevicePool(const DevicePool&) = delete;
    DevicePool& operator=(const DevicePool&) = delete;

    // A block of at least `bytes` (256-byte aligned); the returned owner gives it back to
    // the pool when the last tensor using it dies. `what` names the tensor in errors.
    std::shared_ptr<void> allocate(size_t bytes, const std::string& what);
    // Returns every cached (unused) block to the driver.
    void release_cached();

    size_t bytes_in_use() const;
    size_t bytes_cached() const;
    // Cap on what the pool holds (in use + cached); 0: none. Allocations past it fail with
    // an error naming the cap, before the device itself runs out.
    void set_limit(size_t bytes) { limit_ = bytes; }
    size_t limit() const { return limit_; }

private:
    static size_t size_class(size_t bytes);
    void give_back(void* p, size_t cls);

    int ordinal_;
    mutable std::mutex mu_;
    std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
    size_t in_use_ = 0, cached_ = 0, limit_ = 0;
};

}  // namespace vidi::cuda
