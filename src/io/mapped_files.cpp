#include "io/mapped_files.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

#include "vidi/tools.h"

namespace vidi::io {
namespace {

// A fixed table the signal handler can read without locks or allocation: a slot is claimed
// (kWriting), filled, then published (kReady); the handler reads published slots only.
enum : int { kFree = 0, kWriting = 1, kReady = 2 };

struct Slot {
    std::atomic<int> state{kFree};
    uintptr_t begin = 0, end = 0;
    char path[1024] = {};
};

Slot g_slots[256];  // shards of every checkpoint a process opens; more go unnamed

void write_text(const char* s) {
    for (size_t n = std::strlen(s); n > 0;) {
        const ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w, n -= static_cast<size_t>(w);
    }
}

// 0: nobody has reported yet; 1: a thread is writing the message; 2: it is written.
std::atomic<int> g_report{0};

void on_sigbus(int sig, siginfo_t* info, void*) {
    int none = 0;
    if (g_report.compare_exchange_strong(none, 1)) {
        // si_addr means something only for a fault (si_code > 0), not for a sent signal.
        const char* path = info->si_code > 0 ? mapped_file_at(info->si_addr) : nullptr;
        if (path) {
            write_text("vidi: fatal: ");
            write_text(path);
            write_text(" was truncated or rewritten while this process read it; restart once the checkpoint is "
                       "whole (replace a checkpoint by writing a new directory, not its files in place)\n");
        }
        g_report.store(2);
    } else {
        while (g_report.load() != 2) {  // another thread faulted too: its message goes out first
        }
    }
    // The default action then ends the process: a fault recurs on return, a sent signal is raised.
    signal(sig, SIG_DFL);
    if (info->si_code <= 0) raise(sig);
}

}  // namespace

void note_mapping(const void* begin, size_t bytes, const std::string& path) {
    for (Slot& s : g_slots) {
        int free = kFree;
        if (!s.state.compare_exchange_strong(free, kWriting, std::memory_order_acquire)) continue;
        s.begin = reinterpret_cast<uintptr_t>(begin);
        s.end = s.begin + bytes;
        const size_t n = std::min(path.size(), sizeof s.path - 1);
        std::memcpy(s.path, path.data(), n);
        s.path[n] = '\0';
        s.state.store(kReady, std::memory_order_release);
        return;
    }
}

void forget_mapping(const void* begin) {
    for (Slot& s : g_slots)
        if (s.state.load(std::memory_order_acquire) == kReady && s.begin == reinterpret_cast<uintptr_t>(begin)) {
            s.state.store(kFree, std::memory_order_release);
            return;
        }
}

const char* mapped_file_at(const void* addr) {
    const auto a = reinterpret_cast<uintptr_t>(addr);
    for (const Slot& s : g_slots)
        if (s.state.load(std::memory_order_acquire) == kReady && a >= s.begin && a < s.end) return s.path;
    return nullptr;
}

void name_truncated_mappings_on_sigbus() {
    struct sigaction sa = {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, nullptr);
}

}  // namespace vidi::io

void vidi::name_truncated_checkpoints_on_sigbus() { io::name_truncated_mappings_on_sigbus(); }
