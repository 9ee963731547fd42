// The audio as the official code gets it: `ffmpeg -i FILE -ac 1 -ar 16000 -f s16le -`.
// The CLI converts with one swresample context (default options) from the decoder's
// format/layout/rate straight to s16 mono 16 kHz and flushes it at the end; we do the
// same, so the samples are identical.
extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}

#include "media/ffmpeg_util.h"
#include "media/media.h"

namespace vidi::media {
namespace {

struct SwrFree { void operator()(SwrContext* s) const { swr_free(&s); } };
using SwrPtr = std::unique_ptr<SwrContext, SwrFree>;

class MonoResampler {
public:
    explicit MonoResampler(std::string path) : path_(std::move(path)) {}

    void push(const AVFrame* f, std::vector<int16_t>& out) {
        if (!swr_ || f->sample_rate != rate_ || f->format != format_ ||
            av_channel_layout_compare(&f->ch_layout, &layout_) != 0) {
            flush(out);  // a format change mid-stream: finish the old conversion first
            configure(f);
        }
        convert(const_cast<const uint8_t**>(f->extended_data), f->nb_samples, out);
    }

    void flush(std::vector<int16_t>& out) {
        if (swr_) convert(nullptr, 0, out);
    }

    ~MonoResampler() { av_channel_layout_uninit(&layout_); }

private:
    void configure(const AVFrame* f) {
        av_channel_layout_uninit(&layout_);
        if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels <= 0) {
            if (f->ch_layout.nb_channels <= 0) fail("'", path_, "': audio frame without channels");
            av_channel_layout_default(&layout_, f->ch_layout.nb_channels);  // as the CLI guesses
        } else {
            av_channel_layout_copy(&layout_, &f->ch_layout);
        }
        rate_ = f->sample_rate;
        format_ = f->format;
        if (rate_ <= 0) fail("'", path_, "': audio sample rate ", rate_);
        AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
        SwrContext* raw = nullptr;
        int rc = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_S16, kSampleRate, &layout_,
                                     static_cast<AVSampleFormat>(format_), rate_, 0, nullptr);
        if (rc < 0 || !raw) fail("'", path_, "': cannot set up audio resampling: ", ff::error_string(rc));
        swr_.reset(raw);
        rc = swr_init(swr_.get());
        if (rc < 0) fail("'", path_, "': cannot set up audio resampling: ", ff::error_string(rc));
        // Keep the frame's layout for comparison even where we substituted a default.
        if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
            av_channel_layout_uninit(&layout_);
            av_channel_layout_copy(&layout_, &f->ch_layout);
        }
    }

    void convert(const uint8_t** in, int n, std::vector<int16_t>& out) {
        for (;;) {
            const int room = swr_get_out_samples(swr_.get(), n);
            if (room <= 0) return;
            const size_t at = out.size();
            out.resize(at + room);
            uint8_t* dst = reinterpret_cast<uint8_t*>(out.data() + at);
            const int got = swr_convert(swr_.get(), &dst, room, in, n);
            if (got < 0) fail("'", path_, "': audio resampling failed: ", ff::error_string(got));
            out.resize(at + got);
            if (in || got == 0) return;  // flushing: repeat until nothing is left
        }
    }

    std::string path_;
    SwrPtr swr_;
    AVChannelLayout layout_{};
    int rate_ = 0, format_ = -1;
};

}  // namespace

bool decode_audio_mono16k(const std::string& path, const AudioSink& sink, MediaInputs inputs) {
    ff::FormatPtr fmt = ff::open_input(path, inputs);
    const int stream = ff::find_audio_stream(fmt.get());
    if (stream < 0) return false;
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
        if (static_cast<int>(i) != stream) fmt->streams[i]->discard = AVDISCARD_ALL;
    ff::CodecPtr dec = ff::open_decoder(fmt.get(), stream, path, FF_THREAD_FRAME | FF_THREAD_SLICE);
    ff::PacketPtr pkt = ff::make_packet();
    ff::FramePtr frame = ff::make_frame();
    MonoResampler resampler(path);
    std::vector<int16_t> chunk;  // one decoded frame's worth of output, reused
    auto emit = [&] {
        if (!chunk.empty()) sink(chunk.data(), chunk.size());
        chunk.clear();
    };
    auto drain = [&] {
        while (avcodec_receive_frame(dec.get(), frame.get()) == 0) {
            resampler.push(frame.get(), chunk);
            av_frame_unref(frame.get());
            emit();
        }
    };
    while (av_read_frame(fmt.get(), pkt.get()) >= 0) {
        if (pkt->stream_index == stream) {
            avcodec_send_packet(dec.get(), pkt.get());  // a damaged packet is skipped, as the CLI does
            drain();
        }
        av_packet_unref(pkt.get());
    }
    avcodec_send_packet(dec.get(), nullptr);
    drain();
    resampler.flush(chunk);
    emit();
    return true;
}

std::vector<int16_t> decode_audio_mono16k(const std::string& path) {
    std::vector<int16_t> out;
    decode_audio_mono16k(path, [&](const int16_t* s, size_t n) { out.insert(out.end(), s, s + n); });
    return out;
}

AudioSamples load_audio_samples(const std::string& path, MediaInputs inputs) {
    AudioSamples a;
    auto values = std::make_shared<std::vector<float>>();
    decode_audio_mono16k(path, [&](const int16_t* s, size_t n) {
        for (size_t i = 0; i < n; ++i) values->push_back(sample_value(s[i]));
    }, inputs);
    if (values->empty()) return a;  // no audio stream, or nothing decodable in it
    a.present = true;
    const auto n = static_cast<int64_t>(values->size());
    a.mel_frames = n / kHop;
    a.pcm = Tensor::wrap(values->data(), {n}, DType::f32, Device::cpu, values);
    return a;
}

AudioFeatures load_audio_features(const std::string& path, int n_mels) {
    AudioFeatures af;
    const AudioSamples a = load_audio_samples(path);
    if (!a.present) return af;
    af.present = true;
    af.samples = a.pcm.numel();
    af.mel_frames = a.mel_frames;
    af.mel = log_mel_pieces(a.pcm.data<float>(), af.samples, n_mels);
    return af;
}

}  // namespace vidi::media
