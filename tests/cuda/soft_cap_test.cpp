// The attention kernels' soft-cap, cap·(1 − 2/(1 + e^(2s/cap))) from one fast exp and one fast
// reciprocal (common.cuh), against cap·tanh(s/cap) in double: the bound docs/conformance.md
// states, its exact zero and its saturation.
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "cuda/cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

TEST(CudaSoftCap, WithinItsBoundOfTanh) {
    backend();  // the device is up
    for (float cap : {3.0f, 30.0f, 50.0f}) {
        std::vector<float> s;
        for (int i = -200000; i <= 200000; ++i) s.push_back(cap * 1e-4f * static_cast<float>(i));  // ±20·cap
        for (float tiny : {1e-30f, 1e-12f, 1e-6f, 1e-3f}) {
            s.push_back(tiny);
            s.push_back(-tiny);
        }
        const std::vector<float> got = soft_cap_on_device(s, cap);
        double worst = 0.0;
        for (size_t i = 0; i < s.size(); ++i) {
            const double want = cap * std::tanh(static_cast<double>(s[i]) / cap);
            ASSERT_TRUE(std::isfinite(got[i])) << "s = " << s[i];
            worst = std::max(worst, std::abs(got[i] - want));
        }
        EXPECT_LE(worst, 4e-7 * cap) << "cap " << cap;
        std::printf("soft-cap %g: largest absolute error %.3g (%.3g of the cap)\n", cap, worst, worst / cap);

        const float huge = std::numeric_limits<float>::max();
        const std::vector<float> ends = soft_cap_on_device({0.0f, 1e30f, -1e30f, huge, -huge}, cap);
        EXPECT_EQ(ends[0], 0.0f);
        EXPECT_EQ(ends[1], cap);
        EXPECT_EQ(ends[2], -cap);
        EXPECT_EQ(ends[3], cap);
        EXPECT_EQ(ends[4], -cap);
    }
}

}  // namespace
}  // namespace vidi::cuda::test
