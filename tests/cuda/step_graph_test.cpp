// run_step: a decoding-like step (ending in f32 logits from the LM head) recorded once as a CUDA
// graph and replayed gives exactly what the same ops give when run directly, in either
// activation dtype, at every position and token id (read on the device),
// with one recording for all of them; a step that fails while recording leaves the backend
// usable; an upload inside a recording is refused; a dropped recording gives its memory back;
// while the recording is held (decoders closing on another thread) steps run directly.
#include <atomic>
#include <thread>

#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaStepGraph : public CudaDtypes {};

constexpr int64_t kCacheRows = 40;

struct Weights {
    QTensor table, wq, wk, wv, head;
};

struct State {
    Tensor id, pos, out, logits;
    Tensor k_cache, v_cache;
    std::unique_ptr<StepRecording> rec;
};

Weights weights() {
    return {QTensor(dev(random_host({50, 64}))), QTensor(dev(random_host({64, 64}))),
            QTensor(dev(random_host({32, 64}))), QTensor(dev(random_host({32, 64}))),
            QTensor(dev(random_host({1000, 64})))};
}

State state(const Tensor& k_cache, const Tensor& v_cache) {
    CudaBackend& be = backend();
    State s;
    s.id = be.empty({1}, DType::i32);
    s.pos = be.empty({1}, DType::i32);
    s.k_cache = be.empty(k_cache.shape(), act());
    s.v_cache = be.empty(v_cache.shape(), act());
    be.copy_(s.k_cache, k_cache);
    be.copy_(s.v_cache, v_cache);
    return s;
}

// Embed the token, project it to two query heads and one key/value head, rotate and store
// at the position, attend over the cache up to it, and the LM head's soft-capped f32 logits.
void queue_step(const Weights& w, State& s) {
    CudaBackend& be = backend();
    Tensor x = be.embed(w.table, s.id);
    Tensor q = be.linear(x, w.wq).reshape({1, 2, 32});
    Tensor k = be.linear(x, w.wk).reshape({1, 1, 32}), v = be.linear(x, w.wv).reshape({1, 1, 32});
    be.rope_and_cache_kv_(q, k, v, s.k_cache, s.v_cache, s.pos, 10000.0);
    AttentionParams p;
    p.scale = 0.2f;
    p.causal = true;
    p.step_pos = s.pos;
    s.out = be.attention(q, QTensor(s.k_cache), QTensor(s.v_cache), p);
    be.add_(s.out, q);
    s.logits = be.logits(s.out.reshape({1, 64}), w.head, 30.0f);
}

void run(const Weights& w, State& s, int32_t id, int32_t pos) {
    backend().run_step(s.rec, {{s.id, id}, {s.pos, pos}}, [&] { queue_step(w, s); });
}

struct GraphsOff {
    GraphsOff() { backend().set_step_graphs(false); }
    ~GraphsOff() { backend().set_step_graphs(true); }
};

// The weights and two states over the same random caches: `s` for run_step, `direct` for the
// ops launched one by one.
struct Twins {
    Weights w = weights();
    Tensor kc = random_host({kCacheRows, 1, 32}), vc = random_host({kCacheRows, 1, 32});
    State s = state(kc, vc), direct = state(kc, vc);
};

// A step through run_step on `s` and the same step on `direct` with the ops launched one by one:
// the same bits in both.
void expect_step_as_direct(const Weights& w, State& s, State& direct, int32_t id, int32_t pos) {
    CudaBackend& be = backend();
    run(w, s, id, pos);
    {
        GraphsOff off;
        run(w, direct, id, pos);
    }
    const std::string what = cat("step id=", id, " pos=", pos);
    expect_equal(s.out, values(be.to_host(direct.out)), what);
    expect_equal(s.k_cache, values(be.to_host(direct.k_cache)), what + " k cache");
    expect_equal(s.v_cache, values(be.to_host(direct.v_cache)), what + " v cache");
    EXPECT_EQ(s.logits.dtype(), DType::f32);
    expect_equal(s.logits, values(be.to_host(direct.logits)), what + " logits");
    EXPECT_EQ(be.top_picks(s.logits)[0].id, be.top_picks(direct.logits)[0].id) << what;
}

TEST_P(CudaStepGraph, OneRecordingReplaysAtEveryPositionAndId) {
    CudaBackend& be = backend();
    Twins t;
    State &recorded = t.s, &direct = t.direct;
    const int before = be.step_recordings();
    const std::pair<int32_t, int32_t> steps[] = {{3, 5}, {7, 6}, {11, 7}, {11, 20}, {49, 39}, {0, 0}};
    for (auto [id, pos] : steps) expect_step_as_direct(t.w, recorded, direct, id, pos);
    EXPECT_EQ(be.step_recordings() - before, 1) << "later steps should replay the recording";
    EXPECT_TRUE(recorded.rec) << "run_step keeps its recording";
    EXPECT_FALSE(direct.rec) << "nothing is recorded with graphs off";
}

TEST_P(CudaStepGraph, ADroppedRecordingGivesItsMemoryBack) {
    CudaBackend& be = backend();
    const Weights w = weights();
    State s = state(random_host({kCacheRows, 1, 32}), random_host({kCacheRows, 1, 32}));
    const size_t before = be.bytes_in_use();
    run(w, s, 1, 2);
    be.synchronize();
    EXPECT_GT(be.bytes_in_use(), before) << "the recording keeps its intermediates";
    s.out = s.logits = Tensor();
    s.rec.reset();
    EXPECT_EQ(be.bytes_in_use(), before);
}

TEST_P(CudaStepGraph, AFailingStepLeavesTheBackendUsable) {
    CudaBackend& be = backend();
    std::unique_ptr<StepRecording> rec;
    EXPECT_THROW(be.run_step(rec, {}, [&] {
        Tensor a = dev(random_host({4})), b = dev(random_host({5}));
        be.add_(a, b);
    }), Error);
    EXPECT_FALSE(rec);
    // An upload would be replayed with the bytes of the recording: refused.
    EXPECT_THROW(be.run_step(rec, {}, [&] { dev(random_host({4})); }), Error);
    EXPECT_FALSE(rec);

    Twins t;
    expect_step_as_direct(t.w, t.s, t.direct, 1, 2);  // after the failed ones
}

// What closing NVDEC's sessions does on a thread of its own (video_encoding.cpp): device memory
// freed and the device synchronised, which breaks a capture under way. While the recording is
// held, steps run directly beside it and equal the direct ones; once let go, the next step is
// recorded and replays.
TEST_P(CudaStepGraph, WhileHeldStepsRunDirectlyAndTheFirstStepAfterIsRecorded) {
    CudaBackend& be = backend();
    Twins t;
    State& held = t.s;
    const int before = be.step_recordings();
    std::shared_ptr<void> hold = be.hold_step_recording();
    std::atomic<bool> stop{false};
    std::atomic<int> rounds{0}, closing_error{cudaSuccess};
    std::thread closing([&] {
        cudaSetDevice(be.ordinal());
        while (!stop && closing_error == cudaSuccess) {
            void* p = nullptr;
            cudaError_t e = cudaMalloc(&p, 1 << 20);
            if (e == cudaSuccess) e = cudaFree(p);
            if (e == cudaSuccess) e = cudaDeviceSynchronize();
            closing_error = e;
            ++rounds;
        }
    });
    auto wait_rounds = [&](int n) {
        while (rounds < n && closing_error == cudaSuccess) std::this_thread::yield();
    };
    const std::pair<int32_t, int32_t> steps[] = {{3, 5}, {7, 6}, {11, 7}, {49, 39}};
    wait_rounds(1);
    for (int i = 0; i < 2; ++i) expect_step_as_direct(t.w, held, t.direct, steps[i].first, steps[i].second);
    wait_rounds(rounds + 2);  // the frees really ran beside the steps
    EXPECT_FALSE(held.rec) << "a step was recorded while held";
    EXPECT_EQ(be.step_recordings(), before);
    stop = true;
    closing.join();
    EXPECT_EQ(closing_error, cudaSuccess) << cudaGetErrorString(static_cast<cudaError_t>(closing_error.load()));
    hold.reset();
    for (int i = 2; i < 4; ++i) expect_step_as_direct(t.w, held, t.direct, steps[i].first, steps[i].second);
    EXPECT_TRUE(held.rec);
    EXPECT_EQ(be.step_recordings() - before, 1) << "the first step after the hold records, the next replays";
}

VIDI_CUDA_DTYPES(CudaStepGraph);

}  // namespace
}  // namespace vidi::cuda::test
