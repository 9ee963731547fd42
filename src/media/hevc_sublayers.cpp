#include "media/hevc_sublayers.h"

#include <algorithm>
#include <cstring>

namespace vidi::media {
namespace {

constexpr int kSpsNut = 33;
constexpr int kFirstNonVclNut = 32;  // types 0-31 are slices (VCL)

int nal_type(const uint8_t* nal) { return (nal[0] >> 1) & 0x3f; }
int temporal_id(const uint8_t* nal) { return (nal[1] & 7) - 1; }

// Annex B: each NAL unit follows a 00 00 01 start code and ends where the next one (or a
// 00 00 00 before it) begins. Zero bytes are found with memchr: every packet of an MPEG-TS
// stream is read, keyframes of megabytes included.
template <class Visit>
void each_annex_b_nal(const uint8_t* data, int size, Visit&& visit) {
    const auto next_start_code = [&](int i) {  // at or after i; size where there is none
        while (i + 2 < size) {
            const auto* zero = static_cast<const uint8_t*>(std::memchr(data + i, 0, static_cast<size_t>(size - i - 2)));
            if (!zero) return size;
            i = static_cast<int>(zero - data);
            if (data[i + 1] == 0 && data[i + 2] == 1) return i;
            ++i;
        }
        return size;
    };
    for (int i = next_start_code(0); i < size;) {
        const int begin = i + 3, end = next_start_code(begin);
        int last = end;
        while (last > begin && data[last - 1] == 0) --last;  // trailing zeros belong to the next start code
        if (last - begin >= 2) visit(data + begin, last - begin);
        i = end;
    }
}

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

template <class Visit>
bool HevcSublayers::each_nal(const uint8_t* data, int size, Visit&& visit) const {
    if (length_size_ == 0) {
        each_annex_b_nal(data, size, visit);
        return true;
    }
    int at = 0;
    while (at + length_size_ <= size) {
        int64_t len = 0;
        for (int b = 0; b < length_size_; ++b) len = len << 8 | data[at + b];
        at += length_size_;
        if (len > size - at) return false;  // damaged: what is there is left to the decoder
        if (len >= 2) visit(data + at, static_cast<int>(len));
        at += static_cast<int>(len);
    }
    return at == size;
}

bool HevcSublayers::skippable(const uint8_t* data, int size) {
    bool all_highest = true;
    const bool whole = each_nal(data, size, [&](const uint8_t* nal, int len) {
        const int type = nal_type(nal);
        if (type == kSpsNut) read_sps(nal, len);
        else if (type < kFirstNonVclNut && temporal_id(nal) != highest_) all_highest = false;
    });
    return whole && highest_ >= 0 && all_highest;  // a packet not read to its end is decoded whole
}

}  // namespace vidi::media
