// Freeing what a finished request no longer needs on a thread of its own, so that the request
// goes on at once: a video's decoders, above all NVDEC's, whose sessions the driver closes one
// at a time (0.35-0.40 s for 8 lanes on an H100, docs/cuda.md "Video decoding on NVDEC").
// One release at a time: a new one, wait() and the destructor wait for the one before.
#pragma once

#include <future>
#include <memory>
#include <mutex>

namespace vidi::runtime {

class DeferredRelease {
public:
    DeferredRelease() = default;
    ~DeferredRelease() { wait(); }
    DeferredRelease(const DeferredRelease&) = delete;
    DeferredRelease& operator=(const DeferredRelease&) = delete;

    // Drops `resources` (its last owner) on a thread of its own; where no thread can be
    // started, here. Their destructors must not throw.
    void release(std::shared_ptr<void> resources);
    // Returns once everything released so far is gone.
    void wait();

private:
    std::mutex mu_;
    std::future<void> pending_;
};

}  // namespace vidi::runtime
