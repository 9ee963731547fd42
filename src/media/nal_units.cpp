#include "media/nal_units.h"

namespace vidi::media {

int h264_length_size(const uint8_t* extradata, int size) {
    // avcC: configurationVersion 1, profile, compatibility, level, then 6 reserved bits and
    // lengthSizeMinusOne in 2 (ISO/IEC 14496-15, 5.3.3.1).
    if (!extradata || size < 7 || extradata[0] != 1) return 0;
    return (extradata[4] & 3) + 1;
}

bool h264_idr(const uint8_t* data, int size, int length_size) {
    constexpr int kIdrSlice = 5;
    bool slices = false, all_idr = true;
    const bool whole = each_nal(data, size, length_size, [&](const uint8_t* nal, int) {
        const int type = nal[0] & 0x1f;
        if (type < 1 || type > kIdrSlice) return;  // not a slice (VCL types 1-5)
        slices = true;
        all_idr = all_idr && type == kIdrSlice;
    });
    return whole && slices && all_idr;
}

}  // namespace vidi::media
