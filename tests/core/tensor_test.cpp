#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "vidi/tensor.h"

using namespace vidi;

TEST(Tensor, Bf16RoundTripIsNearestEven) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
    // 1 + 2^-8 lies exactly between two bf16 values: ties go to the even one (1.0).
    EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
    // 1 + 3·2^-8 rounds up to 1 + 2^-6... i.e. to the even neighbour 0x3f82.
    EXPECT_EQ(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Tensor, F16RoundTripCoversNormalsSubnormalsAndInfinity) {
    for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, -3.0517578125e-05f}) {
        EXPECT_EQ(f16_to_f32(f32_to_f16(v)), v) << v;
    }
    EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
    EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
}

TEST(Tensor, ViewsShareStorageAndCheckBounds) {
    Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {3, 2});
    Tensor r = t.rows(1, 3);
    EXPECT_EQ(r.shape(), (Shape{2, 2}));
    EXPECT_EQ(r.data<float>()[0], 2.0f);
    r.data<float>()[0] = 7;
    EXPECT_EQ(t.data<float>()[2], 7.0f);
    EXPECT_EQ(t.reshape({-1}).shape(), (Shape{6}));
    EXPECT_THROW(t.reshape({4, 2}), Error);
    EXPECT_THROW(t.rows(2, 4), Error);
    EXPECT_THROW(t.data<int64_t>(), Error);
    EXPECT_EQ(t.row(2).shape(), (Shape{2}));
}

TEST(Tensor, DescribeNamesDtypeAndShapeOrSaysUndefined) {
    EXPECT_EQ(Tensor::empty({3, 2}, DType::bf16).describe(), "bf16[3, 2]");
    EXPECT_EQ(Tensor().describe(), "undefined");  // error messages print any argument as it is
}

TEST(Tensor, ToF32ConvertsHalfTypes) {
    Tensor h = Tensor::empty({2}, DType::bf16);
    static_cast<uint16_t*>(h.raw())[0] = f32_to_bf16(1.5f);
    static_cast<uint16_t*>(h.raw())[1] = f32_to_bf16(-3.0f);
    auto v = h.to_f32_vector();
    EXPECT_EQ(v[0], 1.5f);
    EXPECT_EQ(v[1], -3.0f);
}

TEST(Tensor, UninitializedIsAlignedAndSoleOwnershipSeesEverySharer) {
    Tensor t = Tensor::uninitialized({5, 7}, DType::u8);
    EXPECT_EQ(t.shape(), (Shape{5, 7}));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
    EXPECT_TRUE(t.sole_owner());
    {
        const Tensor view = t.row(1);  // a view shares the storage
        EXPECT_FALSE(t.sole_owner());
        EXPECT_FALSE(view.sole_owner());
    }
    EXPECT_TRUE(t.sole_owner());
    Tensor copy = t;  // so does a copy of the handle
    EXPECT_FALSE(t.sole_owner());
    copy = Tensor();
    EXPECT_TRUE(t.sole_owner());
    EXPECT_FALSE(Tensor().sole_owner());
    // Borrowed memory has no owner to ask: never refilled as if it were ours.
    uint8_t bytes[4] = {};
    EXPECT_FALSE(Tensor::wrap(bytes, {4}, DType::u8, Device::cpu, nullptr).sole_owner());
    // empty() still zeroes.
    Tensor z = Tensor::empty({3}, DType::f32);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(z.data<float>()[i], 0.0f);
}
