// RecordingGate: no capture starts while the gate is held, a hold waits for a capture under way,
// holds overlap, and a token may be dropped on another thread or after the gate is gone.
#include "core/recording_gate.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

namespace vidi {
namespace {

using namespace std::chrono_literals;

TEST(RecordingGate, NoCaptureStartsWhileHeldAndOneDoesOnceLetGo) {
    RecordingGate g;
    EXPECT_FALSE(g.held());
    std::shared_ptr<void> first = g.hold(), second = g.hold();
    EXPECT_TRUE(g.held());
    EXPECT_FALSE(g.begin_capture());
    first.reset();
    EXPECT_FALSE(g.begin_capture()) << "the second hold still counts";
    second.reset();
    EXPECT_FALSE(g.held());
    ASSERT_TRUE(g.begin_capture());
    g.end_capture();
}

TEST(RecordingGate, AHoldWaitsForTheCaptureUnderWay) {
    RecordingGate g;
    ASSERT_TRUE(g.begin_capture());
    // On a thread of the test's own, so that a hold that does not wait shows as a failure.
    auto held = std::async(std::launch::async, [&] { return g.hold(); });
    EXPECT_EQ(held.wait_for(50ms), std::future_status::timeout) << "hold() came during a capture";
    EXPECT_FALSE(g.held());
    g.end_capture();
    ASSERT_EQ(held.wait_for(5s), std::future_status::ready);
    std::shared_ptr<void> token = held.get();
    EXPECT_TRUE(g.held());
    EXPECT_FALSE(g.begin_capture());
}

TEST(RecordingGate, ASecondCaptureWaitsForTheFirst) {
    RecordingGate g;
    ASSERT_TRUE(g.begin_capture());
    auto second = std::async(std::launch::async, [&] { return g.begin_capture(); });
    EXPECT_EQ(second.wait_for(50ms), std::future_status::timeout);
    g.end_capture();
    ASSERT_EQ(second.wait_for(5s), std::future_status::ready);
    EXPECT_TRUE(second.get());
    g.end_capture();
}

TEST(RecordingGate, ATokenIsLetGoOnAnotherThreadAndMayOutliveTheGate) {
    RecordingGate g;
    std::shared_ptr<void> token = g.hold();
    std::thread([t = std::move(token)]() mutable { t.reset(); }).join();
    EXPECT_FALSE(g.held());
    EXPECT_TRUE(g.begin_capture());
    g.end_capture();
    std::shared_ptr<void> late;
    {
        RecordingGate gone;
        late = gone.hold();
    }
    late.reset();  // the gate is gone: letting go must not touch freed memory
}

}  // namespace
}  // namespace vidi
