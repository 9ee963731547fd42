// run_step on a backend that records nothing (the CPU): each call sets the inputs, then runs
// the step's ops again, and the recording stays empty; inputs must be i32 [1].
#include <gtest/gtest.h>

#include "backend/backend_test.h"

using namespace vidi;
using namespace vidi::test;

TEST(RunStep, SetsTheInputsThenRunsTheOpsEachTime) {
    auto be = make_cpu_backend(2);
    Tensor id = be->empty({1}, DType::i32), pos = be->empty({1}, DType::i32);
    std::unique_ptr<StepRecording> rec;
    std::vector<std::pair<int32_t, int32_t>> seen;
    for (auto [i, p] : {std::pair<int32_t, int32_t>{7, 0}, {3, 1}, {3, 9}})
        be->run_step(rec, {{id, i}, {pos, p}}, [&] { seen.emplace_back(id.data<int32_t>()[0], pos.data<int32_t>()[0]); });
    EXPECT_EQ(seen, (std::vector<std::pair<int32_t, int32_t>>{{7, 0}, {3, 1}, {3, 9}}));
    EXPECT_FALSE(rec);
    Tensor wide = be->empty({2}, DType::i32), f = be->empty({1}, DType::f32);
    int runs = 0;
    EXPECT_THROW(be->run_step(rec, {{wide, 1}}, [&] { ++runs; }), Error);
    EXPECT_THROW(be->run_step(rec, {{f, 1}}, [&] { ++runs; }), Error);
    EXPECT_EQ(runs, 0) << "a bad input stops the step before its ops";
}
