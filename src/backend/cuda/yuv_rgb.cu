// NVDEC's frames (NV12, P010, P016 in device memory) to packed RGB24 as swscale converts the
// CPU path's: the same integer arithmetic as the host reference (core/yuv_rgb.h), so the
// bytes are equal; the turn upright is part of the read.
#include "backend/cuda/common.cuh"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/yuv_rgb.h"

namespace vidi::cuda {
namespace {

__global__ void yuv_to_rgb24_kernel(uint8_t* dst, int64_t dst_pitch, YuvPlanes planes, YuvRgbMath math,
                                    const int32_t* chroma_rows, int rotation) {
    const int64_t total = int64_t(math.width) * math.height;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int x = static_cast<int>(i % math.width), y = static_cast<int>(i / math.width);
        uint8_t rgb[3];
        yuv_to_rgb_pixel(math, chroma_rows, planes, rotation, x, y, rgb);
        uint8_t* out = dst + y * dst_pitch + int64_t(3) * x;
        out[0] = rgb[0];
        out[1] = rgb[1];
        out[2] = rgb[2];
    }
}

}  // namespace

void yuv_to_rgb24(uint8_t* dst, int64_t dst_pitch, const YuvPlanes& planes, const YuvRgbMath& math,
                  const int32_t* chroma_rows, int rotation, cudaStream_t stream) {
    constexpr int kThreads = 256;
    yuv_to_rgb24_kernel<<<grid_for(int64_t(math.width) * math.height, kThreads), kThreads, 0, stream>>>(
        dst, dst_pitch, planes, math, chroma_rows, rotation);
    VIDI_CUDA_CHECK_LAUNCH("yuv_to_rgb24");
}

}  // namespace vidi::cuda
