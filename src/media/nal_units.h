// The NAL units of an H.264 or HEVC packet, as MP4 and Matroska store them (each after a
// length field of 1-4 bytes, whose size the avcC / hvcC record gives) or as MPEG-TS and raw
// streams do (Annex B: each after a 00 00 01 start code). Internal to the media layer.
#pragma once

#include <cstdint>
#include <cstring>

namespace vidi::media {

// Calls visit(nal, size) for each NAL unit of Annex B bytes (those of 2 bytes or more). A unit
// ends where the next start code (or a 00 00 00 before it) begins. Zero bytes are found with
// memchr: every packet of an MPEG-TS stream is read, keyframes of megabytes included.
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

// Calls visit(nal, size) for each NAL unit of a packet whose units follow length fields of
// `length_size` bytes (0: Annex B). False where the lengths do not add up to the packet (damaged:
// the units before the fault were visited).
template <class Visit>
bool each_nal(const uint8_t* data, int size, int length_size, Visit&& visit) {
    if (length_size == 0) {
        each_annex_b_nal(data, size, visit);
        return true;
    }
    int at = 0;
    while (at + length_size <= size) {
        int64_t len = 0;
        for (int b = 0; b < length_size; ++b) len = len << 8 | data[at + b];
        at += length_size;
        if (len > size - at) return false;
        if (len >= 2) visit(data + at, static_cast<int>(len));
        at += static_cast<int>(len);
    }
    return at == size;
}

// The length fields of an H.264 stream's packets: avcC's size (1, 2 or 4 bytes) where the
// extradata is an avcC record (MP4, Matroska), else 0 (Annex B: MPEG-TS, raw streams).
int h264_length_size(const uint8_t* extradata, int size);

// Whether an H.264 packet holds an IDR picture: it reads to its end and every slice in it is
// an IDR slice (NAL type 5). Decoding from it never needs anything before it, and nothing after
// it refers back past it.
bool h264_idr(const uint8_t* data, int size, int length_size);

}  // namespace vidi::media
