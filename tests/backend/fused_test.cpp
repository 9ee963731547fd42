// The residual updates give exactly what the ops they replace give: add_rms_norm_ (one pass
// on a GPU), add_rms_norm_then_norm_ (with the next input's norm) and add_then_norm_ (Mistral's
// update without a norm on the sub-layer's output), also on the decoder's f32 residual stream,
// which takes what is added as the backend holds it and is not rounded again.
#include <cmath>

#include "backend/backend_test.h"

using namespace vidi;
using namespace vidi::test;

namespace {

class Fused : public BackendTest {};

TEST_P(Fused, AddRmsNormEqualsAddOfNorm) {
    for (int64_t D : {3584, 100}) {  // 16-byte vectors, and the scalar path
        const Tensor y = dev(random_host({3, D}, -4.0f, 4.0f)), w = dev(random_host({D}));
        Tensor fused = dev(random_host({3, D}));
        Tensor apart = be().act(fused.shape());
        be().copy_(apart, fused);
        be().add_rms_norm_(fused, y, w, 1e-6f, NormWeight::one_plus);
        be().add_(apart, be().rms_norm(y, w, 1e-6f, NormWeight::one_plus));
        expect_equal(fused, held(apart), cat("add_rms_norm_ D=", D));
    }
    Tensor x = dev(random_host({2, 8}));
    EXPECT_THROW(be().add_rms_norm_(x, dev(random_host({2, 16})), dev(random_host({16})), 1e-6f, NormWeight::one_plus),
                 Error);
}

TEST_P(Fused, AddRmsNormThenNormEqualsTheTwoOps) {
    for (int64_t D : {3584, 100}) {
        const Tensor y = dev(random_host({3, D}, -4.0f, 4.0f)), w = dev(random_host({D})), w2 = dev(random_host({D}));
        Tensor fused = dev(random_host({3, D}));
        Tensor apart = be().act(fused.shape());
        be().copy_(apart, fused);
        const Tensor next = be().add_rms_norm_then_norm_(fused, y, w, w2, 1e-6f, NormWeight::one_plus);
        be().add_rms_norm_(apart, y, w, 1e-6f, NormWeight::one_plus);
        expect_equal(fused, held(apart), cat("add_rms_norm_then_norm_ residual D=", D));
        expect_equal(next, held(be().rms_norm(apart, w2, 1e-6f, NormWeight::one_plus)),
                     cat("add_rms_norm_then_norm_ next input D=", D));
    }
}

TEST_P(Fused, F32ResidualStreamTakesTheNormAsStoredUnrounded) {
    // The decoder's residual stream in f32: x += the norm of y in the activation dtype, summed
    // in f32 and not rounded again; the next input is the norm of that f32 row.
    for (int64_t D : {3584, 100}) {
        const Tensor xh = random_host({3, D}, -8.0f, 8.0f), y = dev(random_host({3, D}, -4.0f, 4.0f)),
                     w = dev(random_host({D})), w2 = dev(random_host({D}));
        Tensor fused = be().empty({3, D}, DType::f32), apart = be().empty({3, D}, DType::f32);
        be().copy_(fused, dev(xh));
        be().copy_(apart, dev(xh));
        const Tensor next = be().add_rms_norm_then_norm_(fused, y, w, w2, 1e-6f, NormWeight::one_plus);
        be().add_rms_norm_(apart, y, w, 1e-6f, NormWeight::one_plus);
        const Tensor n = host(be().rms_norm(y, w, 1e-6f, NormWeight::one_plus));
        std::vector<double> want(static_cast<size_t>(3 * D));
        for (size_t i = 0; i < want.size(); ++i) want[i] = xh.data<float>()[i] + n.data<float>()[i];  // f32 sums
        expect_equal(fused, want, cat("f32 residual, fused, D=", D));
        expect_equal(apart, want, cat("f32 residual, add_rms_norm_, D=", D));
        const Tensor alone = be().rms_norm(fused, w2, 1e-6f, NormWeight::one_plus);
        EXPECT_EQ(alone.dtype(), be().act_dtype());
        expect_equal(next, held(alone), cat("f32 residual, next input, D=", D));
        // rms_norm of the f32 row against a double reference.
        expect_close(alone, rms_norm_ref(held(fused), held(w2), D, 1e-6, NormWeight::one_plus), tol(1e-6),
                     cat("rms_norm of an f32 row, D=", D));
    }
}

TEST_P(Fused, AddThenNormEqualsAddThenRmsNorm) {
    for (int64_t D : {4096, 100}) {  // 16-byte vectors, and the scalar path
        for (NormWeight mode : {NormWeight::plain, NormWeight::none}) {
            const Tensor y = dev(random_host({3, D}, -4.0f, 4.0f)), w = dev(random_host({D}));
            Tensor fused = dev(random_host({3, D}));
            Tensor apart = be().act(fused.shape());
            be().copy_(apart, fused);
            const Tensor next = be().add_then_norm_(fused, y, w, 1e-5f, mode);
            be().add_(apart, y);
            expect_equal(fused, held(apart), cat("add_then_norm_ residual D=", D));
            expect_equal(next, held(be().rms_norm(apart, w, 1e-5f, mode)), cat("add_then_norm_ next input D=", D));
        }
    }
    Tensor x = dev(random_host({2, 8}));
    EXPECT_THROW(be().add_then_norm_(x, dev(random_host({2, 16})), dev(random_host({8})), 1e-5f, NormWeight::plain),
                 Error);
}

TEST_P(Fused, AddThenNormOnAnF32ResidualStream) {
    // x (f32) += y as held, summed in f32; the next input is w ⊙ rmsnorm of that f32 row.
    for (int64_t D : {4096, 100}) {
        const Tensor xh = random_host({3, D}, -8.0f, 8.0f), y = dev(random_host({3, D}, -4.0f, 4.0f)),
                     w = dev(random_host({D}));
        Tensor x = be().empty({3, D}, DType::f32);
        be().copy_(x, dev(xh));
        const Tensor next = be().add_then_norm_(x, y, w, 1e-5f, NormWeight::plain);
        const std::vector<double> yv = held(y);
        std::vector<double> want(static_cast<size_t>(3 * D));
        for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<float>(xh.data<float>()[i] + static_cast<float>(yv[i]));
        expect_equal(x, want, cat("f32 residual D=", D));
        EXPECT_EQ(next.dtype(), be().act_dtype());
        expect_equal(next, held(be().rms_norm(x, w, 1e-5f, NormWeight::plain)), cat("next input D=", D));
        expect_close(next, rms_norm_ref(want, held(w), D, 1e-5, NormWeight::plain), tol(1e-6),
                     cat("next input vs double, D=", D));
    }
}

}  // namespace

VIDI_BACKEND_SUITE(Fused);
