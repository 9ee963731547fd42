#include "runtime/deferred_release.h"

#include <system_error>

namespace vidi::runtime {

void DeferredRelease::release(std::shared_ptr<void> resources) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.valid()) pending_.wait();
    try {
        pending_ = std::async(std::launch::async, [r = std::move(resources)]() mutable { r.reset(); });
    } catch (const std::system_error&) {
        // No thread: the task, and with it the resources, went when std::async gave up.
    }
}

void DeferredRelease::wait() {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.valid()) pending_.get();
}

}  // namespace vidi::runtime
