// NVDEC's colour conversion on the GPU: the kernel (backend/cuda/yuv_rgb.cu), through the
// backend's frame rings (Backend::device_frames), gives the bytes of the host reference
// core/yuv_rgb.h, which tests/media/yuv_rgb_test.cpp holds to swscale itself. Random NV12,
// P010 and P016 planes, every path (x86 SIMD, C tables, scaler), quarter turns, odd sizes,
// random and standard matrices, both ranges.
#include <cstring>

#include "core/yuv_rgb.h"
#include "cuda_test_util.h"

namespace vidi::cuda::test {
namespace {

// NVDEC-style planes on the host: luma, then interleaved chroma, pitches padded.
struct HostPlanes {
    std::vector<uint8_t> y, uv;
    int width = 0, height = 0, bits = 8;
    int64_t y_pitch = 0, uv_pitch = 0;
    YuvPlanes view(const uint8_t* py, const uint8_t* puv) const {
        YuvPlanes p;
        p.y = py;
        p.u = puv;
        p.y_pitch = y_pitch;
        p.uv_pitch = uv_pitch;
        p.width = width;
        p.height = height;
        p.sample_bytes = bits == 8 ? 1 : 2;
        p.shift = bits == 8 ? 0 : 16 - bits;
        return p;
    }
};

HostPlanes random_planes(int w, int h, int bits) {
    HostPlanes p;
    p.width = w;
    p.height = h;
    p.bits = bits;
    const int b = bits == 8 ? 1 : 2;
    p.y_pitch = (int64_t(w) * b + 255) / 256 * 256;  // as NVDEC pitches its surfaces
    p.uv_pitch = p.y_pitch;
    p.y.resize(size_t(p.y_pitch) * h);
    p.uv.resize(size_t(p.uv_pitch) * ((h + 1) / 2));
    std::uniform_int_distribution<int> sample(0, (1 << bits) - 1);
    auto fill = [&](std::vector<uint8_t>& plane) {
        for (size_t i = 0; i < plane.size(); i += b) {
            const int v = sample(rng()) << (b == 2 ? 16 - bits : 0);
            plane[i] = static_cast<uint8_t>(v & 255);
            if (b == 2) plane[i + 1] = static_cast<uint8_t>(v >> 8);
        }
    };
    fill(p.y);
    fill(p.uv);
    return p;
}

Tensor bytes_on_device(const std::vector<uint8_t>& host) {
    Tensor t = Tensor::empty({static_cast<int64_t>(host.size())}, DType::u8);
    std::memcpy(t.raw(), host.data(), host.size());
    return backend().upload(t);
}

// BT.601 and BT.709 as swscale's table holds them, and random matrices of the same scale.
YuvColor color_for(int k, bool full) {
    YuvColor c;
    if (k == 0) c.coefficients = {104597, 132201, 25675, 53279};
    else if (k == 1) c.coefficients = {117489, 138438, 13975, 34925};
    else {
        std::uniform_int_distribution<int> big(90000, 150000), small(10000, 60000);
        c.coefficients = {big(rng()), big(rng()), small(rng()), small(rng())};
    }
    c.full_range = full;
    return c;
}

TEST(CudaYuvRgb, KernelThroughDeviceFramesEqualsTheReference) {
    struct Case {
        int w, h, bits;
    } cases[] = {{1280, 720, 8}, {1920, 1080, 10}, {64, 31, 8}, {63, 32, 8}, {62, 33, 10},
                 {36, 20, 12},   {2, 2, 8},        {2, 3, 10},  {321, 180, 8}};
    for (const Case& c : cases) {
        const HostPlanes host = random_planes(c.w, c.h, c.bits);
        const Tensor dy = bytes_on_device(host.y), duv = bytes_on_device(host.uv);
        const YuvPlanes dev_view = host.view(static_cast<const uint8_t*>(dy.raw()), static_cast<const uint8_t*>(duv.raw()));
        const YuvPlanes host_view = host.view(host.y.data(), host.uv.data());
        for (int rotation : {0, 90, 180, 270}) {
            const bool swap = rotation % 180 != 0;
            const int uw = swap ? c.h : c.w, uh = swap ? c.w : c.h;
            DeviceFramesShape shape;
            shape.slots = 4;  // room for every frame below
            shape.batch = 2;
            shape.width = uw;
            shape.height = uh;
            shape.lanes = 2;
            auto frames = backend().device_frames(shape);
            ASSERT_TRUE(frames);
            int index = 0;
            std::vector<std::vector<uint8_t>> want;
            for (int k = 0; k < 3; ++k)
                for (bool x86 : {true, false}) {
                    const auto plan = plan_yuv_to_rgb(color_for(k, (k + rotation / 90) % 2 == 1), c.bits, uw, uh, x86);
                    if (!plan) {  // an odd width off the x86 converter: converted on the host instead
                        EXPECT_TRUE(uw % 2 == 1 && !(c.bits == 8 && uh % 2 == 0 && x86)) << uw << "x" << uh;
                        continue;
                    }
                    std::vector<uint8_t> ref(size_t(uw) * uh * 3);
                    yuv_to_rgb24(*plan, host_view, rotation, ref.data(), uw * 3);
                    const int slot = index / shape.batch, lane = index % 2;
                    frames->begin_slot(lane, slot);
                    frames->convert(lane, dev_view, *plan, rotation, slot, index % shape.batch);
                    frames->end_slot(lane, slot);
                    want.push_back(std::move(ref));
                    ++index;
                }
            // One more frame converted on the host and copied in (the ring's other way in).
            std::vector<uint8_t> padded(size_t(uw * 3 + 5) * uh);
            std::uniform_int_distribution<int> byte(0, 255);
            for (auto& v : padded) v = static_cast<uint8_t>(byte(rng()));
            {
                const int slot = index / shape.batch;
                frames->begin_slot(1, slot);
                frames->put_host(1, padded.data(), uw * 3 + 5, slot, index % shape.batch);
                frames->end_slot(1, slot);
                std::vector<uint8_t> rows;
                for (int y = 0; y < uh; ++y)
                    rows.insert(rows.end(), padded.begin() + int64_t(y) * (uw * 3 + 5),
                                padded.begin() + int64_t(y) * (uw * 3 + 5) + uw * 3);
                want.push_back(std::move(rows));
                ++index;
            }
            for (int f = 0; f < index; f += shape.batch) {
                const int n = std::min(shape.batch, index - f);
                const Tensor got = backend().to_host(frames->take(f / shape.batch, n));
                frames->release(f / shape.batch);
                for (int i = 0; i < n; ++i) {
                    const auto* g = got.data<uint8_t>() + int64_t(i) * uw * uh * 3;
                    ASSERT_EQ(std::memcmp(g, want[size_t(f + i)].data(), want[size_t(f + i)].size()), 0)
                        << c.w << "x" << c.h << " " << c.bits << "-bit turned " << rotation << ", frame " << f + i;
                }
            }
        }
    }
}

TEST(CudaYuvRgb, FramesToPixelsTakesDeviceFrames) {
    // NVDEC's batches reach frames_to_pixels in device memory: the same pixels as from the host.
    Tensor rgb = Tensor::empty({3, 61, 97, 3}, DType::u8);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = static_cast<uint8_t>(byte(rng()));
    const Tensor from_host = backend().to_host(backend().frames_to_pixels(rgb, 64));
    const Tensor from_device = backend().to_host(backend().frames_to_pixels(backend().upload(rgb), 64));
    ASSERT_EQ(from_host.shape(), from_device.shape());
    EXPECT_EQ(std::memcmp(from_host.raw(), from_device.raw(), from_host.nbytes()), 0);
}

}  // namespace
}  // namespace vidi::cuda::test
