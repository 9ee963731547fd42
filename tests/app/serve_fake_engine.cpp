#include "app/serve_fake_engine.h"

#include <fstream>
#include <sstream>
#include <thread>

namespace vidi::test {
namespace {

std::string head_of(const std::string& path, size_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string s(n, '\0');
    in.read(s.data(), static_cast<std::streamsize>(n));
    s.resize(static_cast<size_t>(in.gcount()));
    return s;
}

// Counts overlapping calls, so tests can assert the server never runs two at once.
struct InFlight {
    FakeEngine& e;
    explicit InFlight(FakeEngine& engine) : e(engine) {
        int now = ++e.in_flight;
        int seen = e.max_in_flight.load();
        while (now > seen && !e.max_in_flight.compare_exchange_weak(seen, now)) {
        }
    }
    ~InFlight() { --e.in_flight; }
};

}  // namespace

void FakeEngine::work(std::chrono::milliseconds total) {
    for (auto spent = std::chrono::milliseconds(0); spent < total; spent += std::chrono::milliseconds(10)) {
        if (progress) progress("generate", spent.count(), total.count());
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

std::shared_ptr<const Video> FakeEngine::encode_video(const std::string& path) {
    InFlight guard(*this);
    const std::string head = head_of(path, 64);
    double duration = 0;
    if (head.rfind("FAKEVIDEO ", 0) == 0) duration = std::stod(head.substr(10));
    else if (head.size() >= 8 && head.compare(4, 4, "ftyp") == 0) duration = 12;
    else if (head.rfind("FAKEOOM", 0) == 0)  // the CUDA pool's wording (backend/cuda/device_pool.cpp)
        fail("cuda:0: out of GPU memory allocating 2147483648 bytes (2.00 GiB) for media K/V");
    else fail("cannot decode ", path, ": not a video");
    work(encode_time);
    ++encodes;
    return std::make_shared<FakeVideo>(duration);
}

TimeRange FakeEngine::expected_range(const std::string& query, double duration) {
    double start = static_cast<double>(query.size() % 7);
    return {std::min(start, duration), std::min(start + 1.5, duration)};
}

Answer FakeEngine::retrieve(const Video& video, const std::string& query, const GenerateOptions& opt) {
    InFlight guard(*this);
    last_max_new_tokens = opt.max_new_tokens;
    work(work_time);
    ++answers;
    Answer a;
    a.duration = video.duration();
    a.ranges = {expected_range(query, video.duration())};
    a.text = "fake ranges";
    a.timings.generate_s = work_time.count() / 1000.0;
    a.timings.generated_tokens = 3;
    return a;
}

Answer FakeEngine::ask(const Video* video, const std::string& question, const GenerateOptions& opt) {
    InFlight guard(*this);
    last_max_new_tokens = opt.max_new_tokens;
    work(work_time);
    ++answers;
    Answer a;
    a.duration = video ? video->duration() : 0;
    a.text = "you asked: " + question;
    return a;
}

void FakeEngine::save_video(const Video& video, const std::string& path) {
    std::ofstream out(path);
    out << "FAKETOKENS " << video.duration();
    VIDI_CHECK(out.good(), "cannot write ", path);
    ++saves;
}

std::shared_ptr<const Video> FakeEngine::load_video(const std::string& path) {
    const std::string head = head_of(path, 64);
    VIDI_CHECK(head.rfind("FAKETOKENS ", 0) == 0, path, " is not a fake token file");
    ++loads;
    return std::make_shared<FakeVideo>(std::stod(head.substr(11)));
}

}  // namespace vidi::test
