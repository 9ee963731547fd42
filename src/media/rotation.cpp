// Which way a stream's frames must turn to stand upright, by decord's rule (video_reader.cc
// GetRotation plus the transpose filters its decoder puts before the scale).
extern "C" {
#include <libavutil/display.h>
}

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "media/video_index.h"

namespace vidi::media {

int decord_rotation(const char* rotate_tag, const int32_t* display_matrix) {
    double theta = 0;
    if (rotate_tag && *rotate_tag && std::strcmp(rotate_tag, "0") != 0) theta = std::atof(rotate_tag);
    if (display_matrix && theta == 0) {
        // The matrix's counter-clockwise angle, negated: the clockwise turn that shows the
        // picture upright. FFmpeg 4.1's MP4 demuxer passes it on as the `rotate` tag, printed
        // with "%g" (six significant digits) after adding 360 below 0: 89.9999999 reads as 90.
        double cw = -av_display_rotation_get(display_matrix);
        if (std::isnan(cw)) return 0;
        if (cw < 0) cw += 360;
        char text[64];
        std::snprintf(text, sizeof(text), "%g", cw);
        theta = std::atof(text);
    }
    theta = std::fmod(theta, 360);
    if (std::isnan(theta)) return 0;
    if (theta < 0) theta += 360;
    // decord switches on the integer part: 90, 180 and 270 turn; any other angle does nothing.
    const int t = static_cast<int>(theta);
    return t == 90 || t == 180 || t == 270 ? t : 0;
}

int stream_rotation(const AVStream* st) {
    // av_dict_get matches keys case-insensitively, as decord's lookup does ("ROTATE" in Matroska).
    const AVDictionaryEntry* tag = av_dict_get(st->metadata, "rotate", nullptr, 0);
    const int32_t* matrix = nullptr;
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
    const AVPacketSideData* sd = av_packet_side_data_get(st->codecpar->coded_side_data,
                                                         st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
    if (sd && sd->size >= 9 * sizeof(int32_t)) matrix = reinterpret_cast<const int32_t*>(sd->data);
#else
    size_t size = 0;
    const uint8_t* sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (sd && size >= 9 * sizeof(int32_t)) matrix = reinterpret_cast<const int32_t*>(sd);
#endif
    return decord_rotation(tag ? tag->value : nullptr, matrix);
}

}  // namespace vidi::media
