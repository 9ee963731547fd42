#include "media/ffmpeg_util.h"

#include <sys/stat.h>

#include <vector>

#include "media/media.h"
#include "vidi/error.h"

namespace vidi::media::ff {

std::string error_string(int averror) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(averror, buf, sizeof buf);
    return buf;
}

FormatPtr open_input(const std::string& path, MediaInputs inputs) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) fail("media file '", path, "' does not exist");
    if (S_ISDIR(st.st_mode)) fail("media file '", path, "' is a directory");
    if (!S_ISREG(st.st_mode)) fail("media file '", path, "' is not a regular file");  // a FIFO, a device
    const bool video_files = inputs == MediaInputs::VideoFiles;
    if (st.st_size == 0) fail("media file '", path, "' is empty (0 bytes)");
    av_log_set_level(AV_LOG_FATAL);  // problems surface as vidi::Error, not as log noise
    AVDictionary* opts = nullptr;
    if (video_files) {
        av_dict_set(&opts, "format_whitelist", kVideoFileFormats, 0);
        av_dict_set(&opts, "protocol_whitelist", "file", 0);
    }
    AVFormatContext* raw = nullptr;
    int rc = avformat_open_input(&raw, path.c_str(), nullptr, &opts);
    av_dict_free(&opts);
    if (rc < 0 && video_files)
        fail("cannot open '", path, "' as a video file (accepted containers: ", kVideoFileFormats,
             "; local files only): ", error_string(rc));
    if (rc < 0)
        fail("cannot open '", path, "' as a media file: ", error_string(rc));
    FormatPtr fmt(raw);
    // A header claiming a huge picture is refused before anything is decoded (an AVI claiming
    // 16000x16000 took 7 GB); cover art is not the video.
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
        const AVStream* s = fmt->streams[i];
        const AVCodecParameters* p = s->codecpar;
        if (p->codec_type == AVMEDIA_TYPE_VIDEO && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC) &&
            (p->width > 0 || p->height > 0))
            require_plausible_frame_size(p->width, p->height, path);
    }
    // Probing decodes a frame of each stream: a picture only its bitstream sizes (a raw
    // stream) is refused by the decoder (max_pixels) instead of allocated.
    std::vector<AVDictionary*> probe_options(fmt->nb_streams, nullptr);
    for (AVDictionary*& d : probe_options) av_dict_set_int(&d, "max_pixels", kMaxFramePixels, 0);
    rc = avformat_find_stream_info(fmt.get(), probe_options.data());
    for (AVDictionary*& d : probe_options) av_dict_free(&d);
    if (rc < 0) fail("cannot read the streams of '", path, "': ", error_string(rc));
    return fmt;
}

int find_video_stream(AVFormatContext* fmt) {
    // decord's call: with a decoder asked for, streams FFmpeg cannot decode are passed over;
    // among the rest the default disposition wins, then >= 5 probed frames, then the bit rate.
    const AVCodec* decoder = nullptr;
    int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
    if (best >= 0 && !(fmt->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) return best;
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
        const AVStream* s = fmt->streams[i];
        if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !(s->disposition & AV_DISPOSITION_ATTACHED_PIC))
            return static_cast<int>(i);
    }
    return -1;
}

int find_audio_stream(AVFormatContext* fmt) {
    // ffmpeg 5.1 CLI automatic selection (the official script's `ffmpeg -i`): score = channels
    // + 5e6 * default disposition + 1e8 when probing read packets of it (a default track
    // without any would hide the real one); the first stream wins ties.
    int best = -1;
    int64_t best_score = -1;
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
        const AVStream* s = fmt->streams[i];
        if (s->codecpar->codec_type != AVMEDIA_TYPE_AUDIO) continue;
        const int64_t score = s->codecpar->ch_layout.nb_channels +
                              100000000LL * !!(s->event_flags & AVSTREAM_EVENT_FLAG_NEW_PACKETS) +
                              5000000LL * !!(s->disposition & AV_DISPOSITION_DEFAULT);
        if (score > best_score) {
            best_score = score;
            best = static_cast<int>(i);
        }
    }
    return best;
}

CodecPtr open_decoder(AVFormatContext* fmt, int index, const std::string& path, int thread_type, int threads,
                      const AVCodec* codec, const std::function<void(AVCodecContext*)>& setup) {
    const AVCodecParameters* par = fmt->streams[index]->codecpar;
    if (!codec) codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        fail("'", path, "': no decoder for codec '", avcodec_get_name(par->codec_id), "' (stream ", index, ")");
    CodecPtr ctx(avcodec_alloc_context3(codec));
    if (!ctx) fail("out of memory creating a decoder for '", path, "'");
    int rc = avcodec_parameters_to_context(ctx.get(), par);
    if (rc < 0) fail("'", path, "': bad codec parameters: ", error_string(rc));
    ctx->pkt_timebase = fmt->streams[index]->time_base;
    ctx->thread_count = threads;  // 0: one per core
    ctx->thread_type = thread_type;
    ctx->max_pixels = kMaxFramePixels;  // as probing: no picture past media.h's bound is allocated
    if (setup) setup(ctx.get());
    rc = avcodec_open2(ctx.get(), codec, nullptr);
    if (rc < 0) fail("'", path, "': cannot open the ", codec->name, " decoder: ", error_string(rc));
    return ctx;
}

PacketPtr make_packet() {
    PacketPtr p(av_packet_alloc());
    if (!p) fail("out of memory allocating a packet");
    return p;
}

FramePtr make_frame() {
    FramePtr f(av_frame_alloc());
    if (!f) fail("out of memory allocating a frame");
    return f;
}

}  // namespace vidi::media::ff
