#include "media/hevc_sublayers.h"

#include <algorithm>

#include "media/nal_units.h"

namespace vidi::media {
namespace {

constexpr int kSpsNut = 33;
constexpr int kFirstNonVclNut = 32;  // types 0-31 are slices (VCL)

int nal_type(const uint8_t* nal) { return (nal[0] >> 1) & 0x3f; }
int temporal_id(const uint8_t* nal) { return (nal[1] & 7) - 1; }

}  // namespace

HevcSublayers::HevcSublayers(const uint8_t* extradata, int size) {
    if (!extradata || size <= 0) return;
    if (size >= 23 && extradata[0] == 1) {  // hvcC: its arrays of parameter sets from byte 22
        length_size_ = (extradata[21] & 3) + 1;
        int at = 23;
        for (int a = 0; a < extradata[22] && at + 3 <= size; ++a) {
            const int type = extradata[at] & 0x3f, count = extradata[at + 1] << 8 | extradata[at + 2];
            at += 3;
            for (int n = 0; n < count && at + 2 <= size; ++n) {
                const int len = extradata[at] << 8 | extradata[at + 1];
                at += 2;
                if (len > size - at) return;
                if (type == kSpsNut) read_sps(extradata + at, len);
                at += len;
            }
        }
        return;
    }
    each_annex_b_nal(extradata, size, [&](const uint8_t* nal, int len) {
        if (nal_type(nal) == kSpsNut) read_sps(nal, len);
    });
}

void HevcSublayers::read_sps(const uint8_t* nal, int size) {
    // After the two-byte NAL header: sps_video_parameter_set_id u(4), sps_max_sub_layers_minus1
    // u(3). (No emulation-prevention byte can come before it: the header's first byte is not 0.)
    if (size < 3) return;
    highest_ = std::max(highest_, (nal[2] >> 1) & 7);  // the most any of them allows: never skips too much
}

bool HevcSublayers::skippable(const uint8_t* data, int size) {
    bool all_highest = true;
    const bool whole = each_nal(data, size, length_size_, [&](const uint8_t* nal, int len) {
        const int type = nal_type(nal);
        if (type == kSpsNut) read_sps(nal, len);
        else if (type < kFirstNonVclNut && temporal_id(nal) != highest_) all_highest = false;
    });
    return whole && highest_ >= 0 && all_highest;  // a packet not read to its end is decoded whole
}

}  // namespace vidi::media
