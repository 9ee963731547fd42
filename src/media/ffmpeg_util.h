// Small RAII helpers around the FFmpeg C API, shared by the video and audio readers.
// Internal to the media layer.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
}

#include <functional>
#include <memory>
#include <string>

#include "vidi/vidi.h"

namespace vidi::media::ff {

struct FormatCloser { void operator()(AVFormatContext* c) const { avformat_close_input(&c); } };
struct CodecCloser { void operator()(AVCodecContext* c) const { avcodec_free_context(&c); } };
struct PacketFree { void operator()(AVPacket* p) const { av_packet_free(&p); } };
struct FrameFree { void operator()(AVFrame* f) const { av_frame_free(&f); } };
struct BufferUnref { void operator()(AVBufferRef* b) const { av_buffer_unref(&b); } };

using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecCloser>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;
using BufferPtr = std::unique_ptr<AVBufferRef, BufferUnref>;

std::string error_string(int averror);

// Opens a media file (a regular file, not empty) and reads its stream info; errors name the
// file. With MediaInputs::VideoFiles FFmpeg may use the `file`
// protocol only (no playlists, concat, network, data: URLs) and the demuxer it probes must
// be one of kVideoFileFormats (format_whitelist/protocol_whitelist of the AVFormatContext,
// which nested opens inherit): text, image-sequence and playlist demuxers are refused.
FormatPtr open_input(const std::string& path, MediaInputs inputs = MediaInputs::Any);

// The demuxers MediaInputs::VideoFiles allows, as FFmpeg's format_whitelist (a demuxer
// matches when one of its comma-separated names is listed).
inline constexpr const char* kVideoFileFormats = "mov,mp4,matroska,webm,avi,mpegts,mpeg,flv,ogg,wav,asf";

// The video stream decord would use (av_find_best_stream's, as decord calls it), or -1; where
// that is cover art (an attached picture) the first real video stream instead.
int find_video_stream(AVFormatContext* fmt);
// The audio stream the ffmpeg CLI would pick (most channels, default first), or -1.
int find_audio_stream(AVFormatContext* fmt);

// A decoder for stream `index` with the given thread types and `threads` threads (0: one per
// core); `codec` (when given) instead of the codec's default decoder, and `setup` adjusts the
// context before it opens (hardware decoding).
CodecPtr open_decoder(AVFormatContext* fmt, int index, const std::string& path, int thread_type, int threads = 0,
                      const AVCodec* codec = nullptr, const std::function<void(AVCodecContext*)>& setup = {});

PacketPtr make_packet();
FramePtr make_frame();

}  // namespace vidi::media::ff
