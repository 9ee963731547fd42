#include "media/av1_film_grain.h"

namespace vidi::media {

namespace {

constexpr int kObuSequenceHeader = 1;

// MSB-first bits of a byte range; reading past its end sets `over` (and reads zeros).
class Bits {
public:
    Bits(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    uint32_t f(int n) {
        uint32_t v = 0;
        for (int i = 0; i < n; ++i, ++pos_) {
            const size_t byte = pos_ / 8;
            if (byte >= size_) {
                over = true;
                return 0;
            }
            v = v << 1 | ((data_[byte] >> (7 - pos_ % 8)) & 1u);
        }
        return v;
    }
    void uvlc() {  // 4.10.3; only skipped here
        int zeros = 0;
        while (!over && f(1) == 0) ++zeros;
        if (zeros < 32) f(zeros);
    }
    bool over = false;

private:
    const uint8_t* data_;
    size_t size_;
    size_t pos_ = 0;
};

// color_config() (5.5.2), read past.
void color_config(Bits& b, uint32_t profile) {
    const bool high = b.f(1);
    const bool twelve = profile == 2 && high && b.f(1);
    const bool mono = profile == 1 ? false : b.f(1);
    uint32_t primaries = 2, transfer = 2, matrix = 2;
    if (b.f(1)) {  // color_description_present_flag
        primaries = b.f(8);
        transfer = b.f(8);
        matrix = b.f(8);
    }
    if (mono) {
        b.f(1);  // color_range
        return;
    }
    if (!(primaries == 1 && transfer == 13 && matrix == 0)) {  // not sRGB
        b.f(1);  // color_range
        bool sx = profile == 0, sy = profile == 0;
        if (profile == 2) {
            sx = twelve ? b.f(1) : true;
            sy = twelve && sx ? b.f(1) : false;
        }
        if (sx && sy) b.f(2);  // chroma_sample_position
    }
    b.f(1);  // separate_uv_delta_q
}

// sequence_header_obu() (5.5.1) up to film_grain_params_present.
std::optional<bool> sequence_header(const uint8_t* data, size_t size) {
    Bits b(data, size);
    const uint32_t profile = b.f(3);
    b.f(1);  // still_picture
    const bool reduced = b.f(1);
    bool decoder_model = false;
    uint32_t delay_bits = 0;
    if (reduced) {
        b.f(5);  // seq_level_idx[0]
    } else {
        if (b.f(1)) {   // timing_info_present_flag
            b.f(32);    // num_units_in_display_tick
            b.f(32);    // time_scale
            if (b.f(1)) b.uvlc();  // equal_picture_interval: num_ticks_per_picture_minus_1
            decoder_model = b.f(1);
            if (decoder_model) {
                delay_bits = b.f(5) + 1;  // buffer_delay_length_minus_1
                b.f(32);                  // num_units_in_decoding_tick
                b.f(5);                   // buffer_removal_time_length_minus_1
                b.f(5);                   // frame_presentation_time_length_minus_1
            }
        }
        const bool initial_delay = b.f(1);
        const uint32_t points = b.f(5) + 1;
        for (uint32_t i = 0; i < points && !b.over; ++i) {
            b.f(12);  // operating_point_idc
            if (b.f(5) > 7) b.f(1);  // seq_level_idx, seq_tier
            if (decoder_model && b.f(1)) {  // decoder_model_present_for_this_op: operating_parameters_info
                b.f(static_cast<int>(delay_bits));
                b.f(static_cast<int>(delay_bits));
                b.f(1);
            }
            if (initial_delay && b.f(1)) b.f(4);
        }
    }
    const int width_bits = static_cast<int>(b.f(4)) + 1, height_bits = static_cast<int>(b.f(4)) + 1;
    b.f(width_bits);
    b.f(height_bits);
    if (!reduced && b.f(1)) b.f(7);  // frame_id_numbers_present_flag: the two id lengths
    b.f(3);  // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if (!reduced) {
        b.f(4);  // enable_interintra_compound, masked_compound, warped_motion, dual_filter
        const bool order_hint = b.f(1);
        if (order_hint) b.f(2);  // enable_jnt_comp, enable_ref_frame_mvs
        const bool screen_tools = b.f(1) ? true : b.f(1) != 0;  // seq_choose_… or seq_force_…
        if (screen_tools && !b.f(1)) b.f(1);  // seq_choose_integer_mv, else seq_force_integer_mv
        if (order_hint) b.f(3);  // order_hint_bits_minus_1
    }
    b.f(3);  // enable_superres, enable_cdef, enable_restoration
    color_config(b, profile);
    const bool grain = b.f(1);
    if (b.over) return std::nullopt;
    return grain;
}

// OBUs with size fields (5.3): the first sequence header's flag.
std::optional<bool> first_sequence_header(const uint8_t* data, size_t size) {
    size_t at = 0;
    while (at < size) {
        const uint8_t header = data[at++];
        const int type = (header >> 3) & 15;
        if (header & 0x80) return std::nullopt;  // obu_forbidden_bit: not OBUs
        if (header & 4) ++at;                    // obu_extension_header
        if (!(header & 2)) return std::nullopt;  // no obu_size: only the last OBU may lack it
        uint64_t length = 0;
        for (int i = 0; i < 8; ++i) {  // leb128
            if (at >= size) return std::nullopt;
            const uint8_t byte = data[at++];
            length |= uint64_t(byte & 0x7f) << (7 * i);
            if (!(byte & 0x80)) break;
        }
        if (length > size - at) return std::nullopt;
        if (type == kObuSequenceHeader) return sequence_header(data + at, static_cast<size_t>(length));
        at += static_cast<size_t>(length);
    }
    return std::nullopt;
}

}  // namespace

std::optional<bool> av1_film_grain(const uint8_t* data, size_t size) {
    if (!data || size == 0) return std::nullopt;
    // av1C (AV1 Codec ISO Media File Format Binding, 2.3.3): marker 1 and version 1, three
    // bytes of profile, level and format, then its configOBUs.
    if (data[0] == 0x81) return size > 4 ? first_sequence_header(data + 4, size - 4) : std::nullopt;
    return first_sequence_header(data, size);
}

}  // namespace vidi::media
