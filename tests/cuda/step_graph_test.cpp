// run_step: a decoding-like sequence of ops recorded as a CUDA graph gives exactly what the
// same ops give when run directly, also when its arguments change from step to step (the
// graph is then updated, not instantiated again), and a step that fails while recording
// leaves the backend usable.
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

struct StepInputs {
    QTensor table;
    QTensor w;
    Tensor k, v;
};

// Embed one token, project it to two query heads, rotate at `pos`, attend over keys 0..pos.
Tensor step(const StepInputs& in, int32_t id, int64_t pos) {
    CudaBackend& be = backend();
    Tensor x = be.embed(in.table, {id});
    Tensor q = be.linear(x, in.w).reshape({1, 2, 32});
    be.rope_(q, pos, 10000.0);
    AttentionParams p;
    p.scale = 0.2f;
    p.causal = true;
    p.q_pos0 = pos;
    Tensor o = be.attention(q, QTensor(in.k.rows(0, pos + 1)), QTensor(in.v.rows(0, pos + 1)), p);
    be.add_(o, q);
    return o;
}

StepInputs inputs() {
    return {QTensor(dev(random_host({50, 64}))), QTensor(dev(random_host({64, 64}))), dev(random_host({40, 1, 32})),
            dev(random_host({40, 1, 32}))};
}

// Graphs stay on for this file's tests (they are off by default).
struct GraphsOn {
    GraphsOn() { backend().set_step_graphs(true); }
    ~GraphsOn() { backend().set_step_graphs(false); }
};

TEST(CudaStepGraph, RecordedStepsMatchDirectRuns) {
    CudaBackend& be = backend();
    GraphsOn on;
    const StepInputs in = inputs();
    const int before = be.step_graph_instantiations();
    const std::pair<int32_t, int64_t> steps[] = {{3, 5}, {7, 6}, {11, 20}, {49, 39}};
    for (auto [id, pos] : steps) {
        const Tensor direct = step(in, id, pos);
        Tensor recorded;
        be.run_step([&] { recorded = step(in, id, pos); });
        expect_equal(recorded, as_doubles(be.to_host(direct)), cat("step id=", id, " pos=", pos));
    }
    EXPECT_EQ(be.step_graph_instantiations() - before, 1) << "later steps should update the recorded graph";
}

TEST(CudaStepGraph, AFailingStepLeavesTheBackendUsable) {
    CudaBackend& be = backend();
    GraphsOn on;
    EXPECT_THROW(be.run_step([&] {
        Tensor a = dev(random_host({4})), b = dev(random_host({5}));
        be.add_(a, b);
    }), Error);
    const StepInputs in = inputs();
    const Tensor direct = step(in, 1, 2);
    Tensor recorded;
    be.run_step([&] { recorded = step(in, 1, 2); });
    expect_equal(recorded, as_doubles(be.to_host(direct)), "step after a failed one");
}

}  // namespace
}  // namespace vidi::cuda::test
