// Whether an AV1 stream may carry film grain: its sequence header's film_grain_params_present
// (AV1 specification 5.5). The grain is synthesised by the decoder after decoding, and that
// step is not held to bit-exact output (conformance is tested on the frames before it), so
// NVDEC's grain need not be dav1d's: such streams stay on the CPU (media/nvdec.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace vidi::media {

// The flag of the first sequence header in `data`: an av1C record (the extradata of MP4 and
// Matroska) or OBUs with size fields (other extradata, a temporal unit). nullopt where `data`
// holds no sequence header that reads to its flag.
std::optional<bool> av1_film_grain(const uint8_t* data, size_t size);

}  // namespace vidi::media
