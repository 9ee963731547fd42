// DeferredRelease: the caller goes on while a resource's destructor runs; wait(), a second
// release and the destructor each wait for it.
#include "runtime/deferred_release.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace vidi::runtime {
namespace {

using namespace std::chrono_literals;

// Its destructor blocks until `go` is set, then marks `gone`.
struct SlowToFree {
    SlowToFree(std::shared_future<void> g, std::atomic<bool>& flag) : go(std::move(g)), gone(flag) {}
    SlowToFree(const SlowToFree&) = delete;
    ~SlowToFree() {
        go.wait();
        gone = true;
    }
    std::shared_future<void> go;
    std::atomic<bool>& gone;
};

std::shared_ptr<void> slow(std::shared_future<void> go, std::atomic<bool>& gone) {
    return std::make_shared<SlowToFree>(std::move(go), gone);
}

TEST(DeferredRelease, ReturnsWhileTheDestructorStillRunsAndWaitWaitsForIt) {
    DeferredRelease r;
    std::promise<void> go;
    std::atomic<bool> gone{false};
    // Freed in the caller, release() would block until `go` is set: it runs on a thread of the
    // test's own, so that such a failure shows as a failure, not a hang.
    auto released = std::async(std::launch::async, [&] { r.release(slow(go.get_future().share(), gone)); });
    EXPECT_EQ(released.wait_for(5s), std::future_status::ready) << "release() waited for the destructor";
    EXPECT_FALSE(gone);
    go.set_value();
    released.wait();
    r.wait();
    EXPECT_TRUE(gone);
}

TEST(DeferredRelease, ANewReleaseWaitsForTheOneBefore) {
    DeferredRelease r;
    std::promise<void> go1;
    std::atomic<bool> gone1{false}, gone2{false};
    r.release(slow(go1.get_future().share(), gone1));
    std::promise<void> go2;
    go2.set_value();
    std::atomic<bool> second_returned{false};
    std::thread second([&] {
        r.release(slow(go2.get_future().share(), gone2));
        second_returned = true;
    });
    std::this_thread::sleep_for(30ms);
    EXPECT_FALSE(second_returned);  // still waiting for the first to be freed
    go1.set_value();
    second.join();
    EXPECT_TRUE(gone1);
    r.wait();
    EXPECT_TRUE(gone2);
}

TEST(DeferredRelease, TheDestructorWaitsAndAnEmptyOneDoesNot) {
    std::atomic<bool> gone{false};
    {
        DeferredRelease r;
        r.wait();  // nothing released yet
        std::promise<void> go;
        r.release(slow(go.get_future().share(), gone));
        go.set_value();
    }
    EXPECT_TRUE(gone);
}

TEST(DeferredRelease, ReleasingANullPointerIsHarmless) {
    DeferredRelease r;
    r.release(nullptr);
    r.wait();
    r.release(std::shared_ptr<void>());
}

}  // namespace
}  // namespace vidi::runtime
