#include "core/recording_gate.h"

namespace vidi {

RecordingGate::RecordingGate() : state_(std::make_shared<State>()) {}

std::shared_ptr<void> RecordingGate::hold() {
    std::shared_ptr<State> s = state_;
    {
        std::unique_lock<std::mutex> lock(s->mu);
        s->changed.wait(lock, [&] { return !s->capturing; });
        ++s->holds;
    }
    // The token is the state itself with a deleter that lets go of the hold.
    return std::shared_ptr<void>(s.get(), [s](void*) {
        std::lock_guard<std::mutex> lock(s->mu);
        --s->holds;
        s->changed.notify_all();
    });
}

bool RecordingGate::begin_capture() {
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->changed.wait(lock, [&] { return !state_->capturing; });
    if (state_->holds > 0) return false;
    state_->capturing = true;
    return true;
}

void RecordingGate::end_capture() {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->capturing = false;
    state_->changed.notify_all();
}

bool RecordingGate::held() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->holds > 0;
}

}  // namespace vidi
