// Packets built byte by byte for the NAL unit readers' tests (nal_units.h, hevc_sublayers.h).
#pragma once

#include <cstdint>
#include <vector>

namespace vidi::test {

using Bytes = std::vector<uint8_t>;

// NAL units after 4-byte length fields (MP4, Matroska).
inline Bytes length_prefixed(const std::vector<Bytes>& nals) {
    Bytes p;
    for (const Bytes& n : nals) {
        p.insert(p.end(), {0, 0, 0, static_cast<uint8_t>(n.size())});
        p.insert(p.end(), n.begin(), n.end());
    }
    return p;
}
// NAL units after 00 00 00 01 start codes (MPEG-TS, raw streams).
inline Bytes annex_b(const std::vector<Bytes>& nals) {
    Bytes p;
    for (const Bytes& n : nals) {
        p.insert(p.end(), {0, 0, 0, 1});
        p.insert(p.end(), n.begin(), n.end());
    }
    return p;
}

}  // namespace vidi::test
