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
    // The same for tensors that live as long as the model (weights): small ones are packed
    // into shared 32 MiB slabs instead of each taking a whole size class (cudaMalloc hands out
    // 2 MiB pages: the 9B model's ~1500 int4 codes and scales of odd MiB sizes wasted 0.55 GiB
    // that way). A slab goes back to the pool when its last tensor dies.
    std::shared_ptr<void> allocate_packed(size_t bytes, const std::string& what);
    // Counts `bytes` that something else holds on the device for this process (NVDEC's decoder
    // sessions, which FFmpeg allocates) as in use until the token is dropped, on any thread:
    // the cap and the memory plans then leave room for them. Fails like allocate() where the
    // cap has no room. Allocates nothing.
    std::shared_ptr<void> reserve(size_t bytes, const std::string& what);
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
    // Under the cap, `bytes` more fit once the cached blocks go back to the driver; else fails.
    void make_room(size_t bytes, const std::string& what);
    void give_back(void* p, size_t cls);

    struct Slab {
        std::shared_ptr<void> block;
        size_t used = 0;
    };

    int ordinal_;
    std::weak_ptr<Slab> slab_;  // the slab packed tensors are carved from now
    std::mutex slab_mu_;        // guards slab_ (allocate() takes mu_ itself)
    mutable std::mutex mu_;
    std::unordered_map<size_t, std::vector<void*>> free_;  // size class -> cached blocks
    size_t in_use_ = 0, cached_ = 0, limit_ = 0;
};

}  // namespace vidi::cuda
