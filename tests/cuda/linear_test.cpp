// linear against a double-precision reference: cuBLASLt, and for up to kFloatGemvMaxRows
// rows with whole 16-byte weight rows the GEMV kernel of quant_gemv.cu.
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

class CudaLinearErrors : public CudaDtypes {};

struct LinearCase {
    Shape x_shape;
    int64_t N;
    bool bias;
};

void PrintTo(const LinearCase& c, std::ostream* os) {
    *os << "x" << shape_str(c.x_shape) << " N=" << c.N << (c.bias ? " +bias" : "");
}

class CudaLinear : public ::testing::TestWithParam<LinearCase> {};

TEST_P(CudaLinear, MatchesDoubleReference) {
    const LinearCase c = GetParam();
    const int64_t K = c.x_shape.back(), M = shape_numel(c.x_shape) / K;
    const Tensor x = random_host(c.x_shape), w = random_host({c.N, K}), b = random_host({c.N});
    for_each_act([&] {
        const Tensor y = backend().linear(dev(x), dev(w), c.bias ? dev(b) : Tensor());
        Shape want_shape = c.x_shape;
        want_shape.back() = c.N;
        EXPECT_EQ(y.shape(), want_shape);
        EXPECT_EQ(y.dtype(), act());
        expect_close(y, linear_reference(x, w, c.bias ? &b : nullptr, M, c.N, K), tol(),
                     cat("linear x", shape_str(c.x_shape), " N=", c.N, c.bias ? " +bias" : ""));
    });
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaLinear,
                         ::testing::Values(LinearCase{{1, 8}, 1, false}, LinearCase{{7, 64}, 33, true},
                                           LinearCase{{128, 512}, 256, false}, LinearCase{{300, 1152}, 520, true},
                                           LinearCase{{5, 67}, 17, false},  // odd K: 2-byte aligned rows
                                           LinearCase{{5, 67}, 17, true}, LinearCase{{2, 3, 96}, 40, true},
                                           LinearCase{{1, 3584}, 1024, false},
                                           LinearCase{{4, 520}, 333, true},  // the GEMV at its most rows
                                           LinearCase{{3, 1, 64}, 5, false},
                                           LinearCase{{2048, 256}, 1024, true}));

TEST_P(CudaLinearErrors, ShapeMismatchIsAnError) {
    const Tensor x = dev(random_host({3, 8})), w = dev(random_host({4, 9}));
    EXPECT_THROW(backend().linear(x, w), Error);
    const Tensor w2 = dev(random_host({4, 8})), bad_bias = dev(random_host({5}));
    EXPECT_THROW(backend().linear(x, w2, bad_bias), Error);
}

VIDI_CUDA_DTYPES(CudaLinearErrors);

}  // namespace
}  // namespace vidi::cuda::test
