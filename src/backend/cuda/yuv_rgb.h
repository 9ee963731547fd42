// Launcher of the YUV -> RGB24 kernel (yuv_rgb.cu) that converts NVDEC's frames as the CPU
// path's swscale does: core/yuv_rgb.h's per-pixel arithmetic, one thread per output pixel.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/yuv_rgb.h"

namespace vidi::cuda {

// dst (device, packed RGB24 rows of dst_pitch bytes) := planes (device memory) turned by
// `rotation` and converted by `math`; chroma_rows: the plan's rows in device memory (scaled
// path), else null.
void yuv_to_rgb24(uint8_t* dst, int64_t dst_pitch, const YuvPlanes& planes, const YuvRgbMath& math,
                  const int32_t* chroma_rows, int rotation, cudaStream_t stream);

}  // namespace vidi::cuda
