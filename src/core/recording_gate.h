// Keeps a CUDA graph's capture apart from work on other threads that would break it. Closing
// NVDEC's sessions or freeing device memory synchronises the device, and a capture under way
// then fails (cudaErrorStreamCaptureInvalidated). Such work holds the gate; a step that finds
// it held runs its ops directly and is recorded at a later step (Backend::run_step).
// Pure host code, so that the CPU tests prove it.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>

namespace vidi {

class RecordingGate {
public:
    RecordingGate();

    // Waits for a capture under way to end, then keeps new ones from starting until the
    // token is dropped, on any thread. Holds may overlap.
    std::shared_ptr<void> hold();
    // Starts a capture unless the gate is held (false: run directly this time). One at a time:
    // a second waits for the first to end.
    bool begin_capture();
    void end_capture();
    bool held() const;

private:
    struct State {
        mutable std::mutex mu;
        std::condition_variable changed;
        int holds = 0;
        bool capturing = false;
    };
    std::shared_ptr<State> state_;  // shared with the tokens, which may outlive the gate
};

}  // namespace vidi
