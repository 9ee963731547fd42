// Device memory, uploads, downloads and dtype conversions of the CUDA backend.
#include <cmath>
#include <cstring>

#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(CudaMemory, NameAndDtypes) {
    EXPECT_EQ(backend().name().rfind("cuda:0 (", 0), 0u) << backend().name();
    EXPECT_EQ(backend().act_dtype(), DType::bf16);
    EXPECT_EQ(backend().device(), Device::cuda);
    EXPECT_GT(backend().sm_count(), 0);
}

TEST(CudaMemory, NewTensorsArePoisonedInTests) {
    const Tensor t = backend().empty({3, 5}, DType::bf16);
    const Tensor h = backend().to_host(t);
    for (float v : h.to_f32_vector()) EXPECT_TRUE(std::isnan(v));
}

TEST(CudaMemory, UploadRoundsF32ToBf16) {
    Tensor host = Tensor::empty({1001}, DType::f32);
    std::uniform_real_distribution<float> dist(-1000.0f, 1000.0f);
    for (int i = 0; i < 1001; ++i) host.data<float>()[i] = dist(rng());
    const Tensor d = backend().upload(host);
    EXPECT_EQ(d.dtype(), DType::bf16);
    EXPECT_EQ(d.device(), Device::cuda);
    const Tensor back = backend().to_host(d);
    EXPECT_EQ(back.dtype(), DType::f32);
    EXPECT_EQ(back.shape(), host.shape());
    for (int i = 0; i < 1001; ++i)
        ASSERT_EQ(back.data<float>()[i], bf16_to_f32(f32_to_bf16(host.data<float>()[i]))) << i;
}

TEST(CudaMemory, ToHostConvertsLargeTensorsInSlicesWithinTheirOwnSize) {
    // Past one 32 MiB f32 slice (8M elements) and not a multiple of it; the device holds the
    // bf16 tensor and one slice, not an f32 copy of the whole.
    const Tensor h = random_host({int64_t(8) << 20 | 5});
    const Tensor d = dev(h);
    const size_t before = backend().bytes_in_use();
    const Tensor back = backend().to_host(d);
    EXPECT_EQ(backend().bytes_in_use(), before);
    ASSERT_EQ(back.dtype(), DType::f32);
    ASSERT_EQ(back.numel(), h.numel());
    EXPECT_EQ(std::memcmp(back.raw(), h.raw(), h.nbytes()), 0);
}

TEST(CudaMemory, WeightConvertsF16AndKeepsBf16) {
    const Tensor src = random_host({37, 11}, -3.0f, 3.0f);
    Tensor f16 = Tensor::empty(src.shape(), DType::f16);
    convert_from_f32(src.data<float>(), DType::f16, f16.raw(), static_cast<size_t>(src.numel()));
    const Tensor w = backend().weight(f16);
    EXPECT_EQ(w.dtype(), DType::bf16);
    const std::vector<float> f16_values = f16.to_f32_vector();
    std::vector<double> want;
    for (float v : f16_values) want.push_back(bf16_to_f32(f32_to_bf16(v)));
    expect_equal(w, want, "weight(f16)");

    Tensor bf = Tensor::empty(src.shape(), DType::bf16);
    convert_from_f32(src.data<float>(), DType::bf16, bf.raw(), static_cast<size_t>(src.numel()));
    expect_equal(backend().weight(bf), values(src), "weight(bf16)");
}

TEST(CudaMemory, IntegersKeepTheirDtype) {
    const std::vector<int64_t> v64 = {0, -1, 1LL << 40, 7};
    const Tensor d64 = backend().upload(Tensor::from_vector(v64));
    EXPECT_EQ(d64.dtype(), DType::i64);
    const Tensor h64 = backend().to_host(d64);
    for (size_t i = 0; i < v64.size(); ++i) EXPECT_EQ(h64.data<int64_t>()[i], v64[i]);
    const std::vector<int32_t> v32 = {5, -9, 1 << 30};
    const Tensor h32 = backend().to_host(backend().upload(Tensor::from_vector(v32)));
    for (size_t i = 0; i < v32.size(); ++i) EXPECT_EQ(h32.data<int32_t>()[i], v32[i]);
}

TEST(CudaMemory, CopyConvertsAndWritesIntoViews) {
    const Tensor src = random_host({4, 6});
    const Tensor d_bf16 = dev(src);
    // bf16 -> f32 on the device.
    Tensor d_f32 = backend().empty({4, 6}, DType::f32);
    backend().copy_(d_f32, d_bf16);
    expect_equal(d_f32, values(src), "copy_ bf16->f32");
    // Into rows 2..5 of a larger tensor: the other rows keep their values.
    const Tensor big_host = random_host({8, 6});
    Tensor big = dev(big_host);
    Tensor view = big.rows(2, 6);
    backend().copy_(view, d_f32);
    std::vector<double> want = values(big_host);
    const std::vector<double> s = values(src);
    std::copy(s.begin(), s.end(), want.begin() + 12);
    expect_equal(big, want, "copy_ into a view");
    // Host f32 -> device bf16 and device bf16 -> host f16.
    Tensor d2 = backend().empty({24}, DType::bf16);
    backend().copy_(d2, src);
    expect_equal(d2, s, "copy_ host->device");
    Tensor h16 = Tensor::empty({24}, DType::f16);
    backend().copy_(h16, d2);
    const std::vector<float> got = h16.to_f32_vector();
    for (size_t i = 0; i < s.size(); ++i) EXPECT_NEAR(got[i], s[i], 1e-3 * std::abs(s[i]) + 1e-6);
}

TEST(CudaMemory, CopyRejectsMismatches) {
    Tensor a = backend().empty({4}, DType::bf16);
    const Tensor b = backend().empty({5}, DType::bf16);
    EXPECT_THROW(backend().copy_(a, b), Error);
    const Tensor i = backend().upload(Tensor::from_vector(std::vector<int32_t>{1, 2, 3, 4}));
    EXPECT_THROW(backend().copy_(a, i), Error);
}

TEST(CudaMemory, OutOfMemoryNamesBytesRequestedAndFree) {
    try {
        backend().empty({int64_t(1) << 50}, DType::u8);  // 1 PiB
        FAIL() << "allocating 1 PiB succeeded";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_TRUE(contains(msg, "out of GPU memory")) << msg;
        EXPECT_TRUE(contains(msg, "1125899906842624 bytes")) << msg;
        EXPECT_TRUE(contains(msg, "free of")) << msg;
        EXPECT_TRUE(contains(msg, "u8[1125899906842624]")) << msg;
    }
    // The backend still works afterwards.
    const Tensor x = random_host({16});
    expect_equal(dev(x), values(x), "upload after OOM");
}

TEST(CudaMemory, PoolReusesFreedBlocks) {
    backend().synchronize();
    const size_t before = backend().bytes_in_use();
    {
        const Tensor t = backend().empty({1 << 20}, DType::bf16);
        EXPECT_GE(backend().bytes_in_use(), before + (size_t(2) << 20));
    }
    EXPECT_EQ(backend().bytes_in_use(), before);
    const size_t cached = backend().bytes_cached();
    EXPECT_GE(cached, size_t(2) << 20);
    const Tensor again = backend().empty({1 << 20}, DType::bf16);
    EXPECT_EQ(backend().bytes_cached(), cached - (size_t(2) << 20));  // the same block came back
}

// A ring for NVDEC counts its decoders' own memory (allocated by FFmpeg, outside the pool)
// as in use while it lives, under --gpu-memory too: a cap without room for it refuses the ring
// with an error naming it, and nothing stays counted afterwards.
TEST(CudaMemory, AFrameRingCountsItsDecodersOwnMemory) {
    CudaBackend& be = backend();
    be.synchronize();
    const size_t before = be.bytes_in_use();
    DeviceFramesShape shape;
    shape.slots = 3;
    shape.batch = 2;
    shape.width = 64;
    shape.height = 32;
    shape.lanes = 3;
    shape.lane_outside_bytes = size_t(40) << 20;
    {
        auto frames = be.device_frames(shape);
        EXPECT_GE(be.bytes_in_use(), before + 3 * shape.lane_outside_bytes);
        EXPECT_LT(be.bytes_in_use(), before + 3 * shape.lane_outside_bytes + (size_t(4) << 20));  // the ring is small
    }
    EXPECT_EQ(be.bytes_in_use(), before);
    be.release_cached();
    be.set_memory_limit(size_t(1) << 40);  // any cap, to learn what the backend counts outside its pool
    const size_t outside = be.device_memory()->outside;
    be.set_memory_limit(be.bytes_in_use() + outside + (size_t(100) << 20));  // 100 MiB for the pool: too little
    try {
        auto frames = be.device_frames(shape);
        ADD_FAILURE() << "a ring whose decoders need 120 MiB fit a pool of 100 MiB";
    } catch (const Error& e) {
        EXPECT_TRUE(contains(e.what(), "the 3 video decoders' own memory")) << e.what();
        EXPECT_TRUE(contains(e.what(), "--gpu-memory")) << e.what();
    }
    be.set_memory_limit(0);
    EXPECT_EQ(be.bytes_in_use(), before);
}

TEST(CudaMemory, WeightsArePackedIntoSharedSlabs) {
    // 40 int4-like weights of 1.5 MiB + a little each: alone, each would take a 2 MiB class
    // (80 MiB); packed into 32 MiB slabs they take 64 MiB. Freed, the slabs go back.
    backend().synchronize();
    const size_t before = backend().bytes_in_use();
    {
        std::vector<Tensor> weights;
        for (int i = 0; i < 40; ++i)
            weights.push_back(backend().weight(Tensor::empty({(int64_t(3) << 19) + 100}, DType::u8)));
        EXPECT_LE(backend().bytes_in_use() - before, size_t(64) << 20);
        // Each in place, none overlapping the next.
        for (int i = 0; i + 1 < 40; ++i) {
            const auto a = reinterpret_cast<uintptr_t>(weights[i].raw());
            const auto b = reinterpret_cast<uintptr_t>(weights[i + 1].raw());
            EXPECT_TRUE(b >= a + weights[i].nbytes() || a >= b + weights[i + 1].nbytes());
        }
    }
    EXPECT_EQ(backend().bytes_in_use(), before);
}

TEST(CudaMemory, OpsRejectHostTensorsAndWrongDtypes) {
    const Tensor host = random_host({2, 8});
    const Tensor w = dev(random_host({4, 8}));
    try {
        backend().linear(host, w);
        FAIL() << "linear accepted a host tensor";
    } catch (const Error& e) {
        EXPECT_TRUE(contains(e.what(), "host memory")) << e.what();
    }
    Tensor f32 = backend().empty({2, 8}, DType::f32);
    EXPECT_THROW(backend().linear(f32, w), Error);
}

}  // namespace
}  // namespace vidi::cuda::test
