// The value scan of `vidi inspect --values`: NaN and infinity found by their bit patterns in
// every floating dtype, the largest finite values and integer codes left alone.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "io/safetensors.h"
#include "io/value_scan.h"
#include "support/test_support.h"

using namespace vidi;
using namespace vidi::io;

namespace {

template <class Word>
Tensor words(const std::vector<Word>& w, DType dtype) {
    Tensor t = Tensor::empty({static_cast<int64_t>(w.size())}, dtype);
    std::memcpy(t.raw(), w.data(), w.size() * sizeof(Word));
    return t;
}

}  // namespace

TEST(ValueScan, CountsNanAndInfinityInEveryFloatingDtype) {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor f32 = Tensor::from_vector(
        std::vector<float>{1, -0.0f, std::numeric_limits<float>::max(), -inf, nan, inf, -nan, 1e-45f});
    NonFiniteTensor r = count_nonfinite(f32.raw(), f32.numel(), DType::f32);
    EXPECT_EQ(r.nan, 2);
    EXPECT_EQ(r.inf, 2);
    // f16: 65504 (0x7bff) is finite; 0x7c00/0xfc00 infinite; 0x7e00, 0xfc01 NaN.
    const Tensor f16 = words<uint16_t>({0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0xfc01, 0x0001}, DType::f16);
    r = count_nonfinite(f16.raw(), f16.numel(), DType::f16);
    EXPECT_EQ(r.nan, 2);
    EXPECT_EQ(r.inf, 2);
    // bf16: 0x7f7f is the largest finite; 0x7f80/0xff80 infinite; 0x7fc0, 0xff81 NaN.
    const Tensor bf16 = words<uint16_t>({0x3f80, 0x7f7f, 0xff7f, 0x7f80, 0xff80, 0x7fc0, 0xff81}, DType::bf16);
    r = count_nonfinite(bf16.raw(), bf16.numel(), DType::bf16);
    EXPECT_EQ(r.nan, 2);
    EXPECT_EQ(r.inf, 2);
    // Integer codes (int8 weights): 0xff bytes are numbers.
    const Tensor codes = words<uint8_t>({0xff, 0x7f, 0x80}, DType::i8);
    r = count_nonfinite(codes.raw(), codes.numel(), DType::i8);
    EXPECT_EQ(r.nan + r.inf, 0);
}

TEST(ValueScan, NamesEachTensorThatHoldsThemAndCountsAllItRead) {
    test::TempDir dir("scan");
    std::vector<float> big(3 << 20, 0.25f);  // past the size where the count runs in parallel
    big[12345] = std::numeric_limits<float>::quiet_NaN();
    big[3 << 19] = -std::numeric_limits<float>::infinity();
    big.back() = std::numeric_limits<float>::infinity();
    const Tensor clean = Tensor::from_vector(std::vector<float>{1, 2, 3});
    const Tensor ints = Tensor::from_vector(std::vector<int64_t>{-1, -1});
    io::save_safetensors(dir.file("m.safetensors"),
                         {{"b.big", Tensor::from_vector(big)}, {"a.clean", clean}, {"c.ints", ints}}, {});
    const TensorStore store = TensorStore::open(dir.file("m.safetensors"));
    uint64_t last = 0, calls = 0;
    const ValueScan scan = scan_values(store, [&](uint64_t done, uint64_t total) {
        EXPECT_GE(done, last);
        EXPECT_EQ(total, store.total_bytes());
        last = done;
        ++calls;
    });
    EXPECT_EQ(calls, 3u);
    EXPECT_EQ(last, store.total_bytes());
    EXPECT_EQ(scan.tensors, 2);
    EXPECT_EQ(scan.bytes, big.size() * 4 + 12);
    ASSERT_EQ(scan.nonfinite.size(), 1u);
    EXPECT_EQ(scan.nonfinite[0].name, "b.big");
    EXPECT_EQ(scan.nonfinite[0].nan, 1);
    EXPECT_EQ(scan.nonfinite[0].inf, 2);
}
