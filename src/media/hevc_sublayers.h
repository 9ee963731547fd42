// Which HEVC packets AVDISCARD_NONREF may skip without changing any other picture.
//
// FFmpeg's HEVC decoder skips every sub-layer non-reference picture (TRAIL_N, TSA_N, RASL_N,
// ...) under AVDISCARD_NONREF. Such a picture is no reference of later pictures of its own
// sub-layer, but may be one of pictures of higher sub-layers (H.265, 3.160): in a stream of
// several temporal sub-layers, skipping one below the highest would change the pictures that
// refer to it. So a packet is skippable only where every slice in it lies in the highest
// sub-layer the stream's sequence parameter sets declare (all of them, in a stream of one).
#pragma once

#include <cstdint>

namespace vidi::media {

class HevcSublayers {
public:
    // The stream's extradata: an hvcC record (MP4, Matroska) or Annex B parameter sets (MPEG-TS),
    // or nothing (the parameter sets come in-band).
    HevcSublayers(const uint8_t* extradata, int size);

    // Reads the packet's NAL units (a sequence parameter set among them updates the count of
    // sub-layers) and says whether every slice in it lies in the highest sub-layer. False while
    // no sequence parameter set has been seen, and for a packet whose NAL lengths do not add up.
    bool skippable(const uint8_t* data, int size);

    // The highest TemporalId the sequence parameter sets seen allow; -1 before the first.
    int highest() const { return highest_; }

private:
    void read_sps(const uint8_t* nal, int size);

    int length_size_ = 0;  // the NAL units' length fields (hvcC's packets); 0: Annex B start codes
    int highest_ = -1;
};

}  // namespace vidi::media
