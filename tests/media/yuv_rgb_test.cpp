// core/yuv_rgb.h against swscale itself: the reference conversion (which the NVDEC kernel
// repeats on the GPU) gives the CPU path's RGB24 bytes, for random planes of every depth,
// matrix, range and quarter turn, and for the frames of real H.264, HEVC 10-bit and VP9 files.
#include <gtest/gtest.h>

extern "C" {
#include <libavutil/cpu.h>
#include <libavutil/pixdesc.h>
}

#include <random>

#include "core/yuv_rgb.h"
#include "media/ffmpeg_util.h"
#include "media/media_test_util.h"
#include "media/rgb_picture.h"

using namespace vidi;
using namespace vidi::media;

namespace {

struct Case {
    int width, height, bits;
};

AVPixelFormat planar_format(int bits) {
    return bits == 8 ? AV_PIX_FMT_YUV420P : bits == 10 ? AV_PIX_FMT_YUV420P10LE : AV_PIX_FMT_YUV420P12LE;
}

ff::FramePtr random_frame(const Case& c, uint32_t seed) {
    ff::FramePtr f = ff::make_frame();
    f->format = planar_format(c.bits);
    f->width = c.width;
    f->height = c.height;
    if (av_frame_get_buffer(f.get(), 0) < 0) throw std::runtime_error("av_frame_get_buffer");
    std::mt19937 rng(seed);
    const int top = (1 << c.bits) - 1;
    for (int p = 0; p < 3; ++p) {
        const int w = p ? (c.width + 1) / 2 : c.width, h = p ? (c.height + 1) / 2 : c.height;
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                const int v = static_cast<int>(rng() % (top + 1));
                if (c.bits == 8)
                    f->data[p][y * f->linesize[p] + x] = static_cast<uint8_t>(v);
                else
                    reinterpret_cast<uint16_t*>(f->data[p] + y * f->linesize[p])[x] = static_cast<uint16_t>(v);
            }
    }
    return f;
}

// The stream facts RgbConverter reads: the frame's size, turned by `rotation`.
VideoIndex stream_of(int width, int height, int rotation) {
    VideoIndex vx;
    vx.coded_width = width;
    vx.coded_height = height;
    vx.info.rotation = rotation;
    const bool swap = rotation == 90 || rotation == 270;
    vx.info.width = swap ? height : width;
    vx.info.height = swap ? width : height;
    return vx;
}

YuvPlanes planar_view(const AVFrame* f, int bits) {
    YuvPlanes p;
    p.y = f->data[0];
    p.u = f->data[1];
    p.v = f->data[2];
    p.y_pitch = f->linesize[0];
    p.uv_pitch = f->linesize[1];
    p.width = f->width;
    p.height = f->height;
    p.sample_bytes = bits == 8 ? 1 : 2;
    return p;
}

// The same samples as NVDEC lays them out: chroma interleaved, deep samples at the top of
// 16-bit words (NV12, P010, P016).
struct Interleaved {
    std::vector<uint8_t> y, uv;
    YuvPlanes view;
};
Interleaved interleave(const AVFrame* f, int bits) {
    Interleaved out;
    const int b = bits == 8 ? 1 : 2, shift = bits == 8 ? 0 : 16 - bits;
    const int cw = (f->width + 1) / 2, ch = (f->height + 1) / 2;
    const int64_t yp = int64_t(f->width) * b + 7, uvp = int64_t(cw) * 2 * b + 5;  // odd pitches on purpose
    out.y.resize(size_t(yp) * f->height);
    out.uv.resize(size_t(uvp) * ch);
    auto put = [&](uint8_t* row, int i, int v) {
        if (b == 1) {
            row[i] = static_cast<uint8_t>(v);
        } else {
            const int w = v << shift;
            row[2 * i] = static_cast<uint8_t>(w & 255);
            row[2 * i + 1] = static_cast<uint8_t>(w >> 8);
        }
    };
    auto get = [&](int p, int x, int y) {
        const uint8_t* row = f->data[p] + y * f->linesize[p];
        return b == 1 ? row[x] : reinterpret_cast<const uint16_t*>(row)[x];
    };
    for (int y = 0; y < f->height; ++y)
        for (int x = 0; x < f->width; ++x) put(out.y.data() + y * yp, x, get(0, x, y));
    for (int y = 0; y < ch; ++y)
        for (int x = 0; x < cw; ++x) {
            put(out.uv.data() + y * uvp, 2 * x, get(1, x, y));
            put(out.uv.data() + y * uvp, 2 * x + 1, get(2, x, y));
        }
    out.view.y = out.y.data();
    out.view.u = out.uv.data();
    out.view.y_pitch = yp;
    out.view.uv_pitch = uvp;
    out.view.width = f->width;
    out.view.height = f->height;
    out.view.sample_bytes = b;
    out.view.shift = shift;
    return out;
}

// Bytes where the reference differs from swscale's picture (the CPU path's RgbConverter).
size_t differing(const Picture& want, const YuvToRgb& plan, const YuvPlanes& planes, int rotation) {
    std::vector<uint8_t> got(size_t(want.width) * want.height * 3);
    yuv_to_rgb24(plan, planes, rotation, got.data(), want.width * 3);
    size_t n = 0;
    for (int y = 0; y < want.height; ++y)
        for (int x = 0; x < want.width * 3; ++x)
            n += got[size_t(y) * want.width * 3 + x] != want.rgb[size_t(y) * want.stride + x];
    return n;
}

// Whether swscale would take a path the model leaves to swscale: an odd width anywhere but
// on the x86 unscaled converter.
bool unmodelled(int bits, int upright_w, int upright_h) {
    return upright_w % 2 && !(bits == 8 && upright_h % 2 == 0 && swscale_x86_simd());
}

// Checks one frame every way: planar and interleaved, as the frame says its colour is.
void expect_reference_matches(const AVFrame* f, int bits, int rotation, const std::string& what) {
    const VideoIndex vx = stream_of(f->width, f->height, rotation);
    RgbConverter sws;
    const Picture want = sws.convert(f, vx, what);
    const auto plan = plan_yuv_to_rgb(frame_color(f, static_cast<AVPixelFormat>(f->format)), bits, vx.info.width,
                                      vx.info.height, swscale_x86_simd());
    if (unmodelled(bits, vx.info.width, vx.info.height)) {
        EXPECT_FALSE(plan) << what;
        return;
    }
    ASSERT_TRUE(plan) << what;
    EXPECT_EQ(differing(want, *plan, planar_view(f, bits), rotation), 0u) << what << " (planar)";
    const Interleaved nv = interleave(f, bits);
    EXPECT_EQ(differing(want, *plan, nv.view, rotation), 0u) << what << " (interleaved)";
}

}  // namespace

TEST(YuvRgb, ReferenceMatchesSwscaleOnRandomPlanes) {
    // Even heights at 8 bits take swscale's unscaled (SIMD) converter; odd heights and deeper
    // samples its scaler. Widths like 1298 once lost their last columns to the SIMD
    // converter's 8-pixel steps (blank_picture's stride); 2x2 and 2x3 are the smallest.
    const std::vector<Case> cases = {{64, 32, 8},   {66, 34, 8},   {1298, 12, 8}, {62, 31, 8},  {2, 2, 8},
                                     {2, 3, 8},     {33, 18, 8},   {64, 32, 10},  {62, 33, 10}, {36, 20, 12},
                                     {2, 3, 10},    {35, 21, 10},  {32, 7, 8},    {4, 5, 12}};
    const std::vector<AVColorSpace> spaces = {AVCOL_SPC_UNSPECIFIED, AVCOL_SPC_BT709,     AVCOL_SPC_BT470BG,
                                              AVCOL_SPC_SMPTE240M,   AVCOL_SPC_BT2020_NCL, AVCOL_SPC_FCC};
    const std::vector<AVColorRange> ranges = {AVCOL_RANGE_UNSPECIFIED, AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG};
    uint32_t seed = 1;
    for (const Case& c : cases)
        for (int rotation : {0, 90, 180, 270})
            for (size_t k = 0; k < spaces.size(); ++k) {
                ff::FramePtr f = random_frame(c, seed++);
                f->colorspace = spaces[k];
                f->color_range = ranges[(k + static_cast<size_t>(rotation) / 90) % ranges.size()];
                expect_reference_matches(f.get(), c.bits, rotation,
                                         cat(c.width, "x", c.height, " ", c.bits, "-bit, turned ", rotation, ", ",
                                             av_color_space_name(spaces[k]), ", ",
                                             av_color_range_name(f->color_range)));
            }
}

TEST(YuvRgb, ReferenceMatchesSwscalesCCodeToo) {
    // Off x86 (or with FFmpeg's SIMD off) swscale's unscaled converter is its C code: lookup
    // tables, one chroma row for two picture rows. The plan follows what swscale runs.
    av_force_cpu_flags(0);
    EXPECT_FALSE(swscale_x86_simd());
    uint32_t seed = 100;
    for (const Case& c : std::vector<Case>{{64, 32, 8}, {66, 18, 8}, {62, 31, 8}, {34, 20, 10}})
        for (int rotation : {0, 270}) {
            ff::FramePtr f = random_frame(c, seed++);
            f->colorspace = rotation ? AVCOL_SPC_BT709 : AVCOL_SPC_UNSPECIFIED;
            f->color_range = rotation ? AVCOL_RANGE_JPEG : AVCOL_RANGE_MPEG;
            expect_reference_matches(f.get(), c.bits, rotation,
                                     cat("C code, ", c.width, "x", c.height, " ", c.bits, "-bit, turned ", rotation));
        }
    av_force_cpu_flags(-1);  // the CPU's own flags again
}

TEST(YuvRgb, FullRangeFormatsDefaultToFullRange) {
    // yuvj420p without a stated range converts as full range (swscale's default for it).
    ff::FramePtr f = random_frame({16, 8, 8}, 7);
    EXPECT_FALSE(frame_color(f.get(), AV_PIX_FMT_YUV420P).full_range);
    EXPECT_TRUE(frame_color(f.get(), AV_PIX_FMT_YUVJ420P).full_range);
    f->color_range = AVCOL_RANGE_MPEG;
    EXPECT_FALSE(frame_color(f.get(), AV_PIX_FMT_YUVJ420P).full_range);
}

TEST(YuvRgb, ReferenceMatchesTheCpuPathOnDecodedVideos) {
    test::TempDir dir("yuvrgb");
    struct Video {
        std::string name, args;
        int bits;
    };
    // Colours tagged as encoders do: HEVC 10-bit BT.709 limited, VP9 BT.601 full range with an
    // odd height (swscale's scaler at 8 bits), H.264 at a width the SIMD converter's steps
    // do not divide.
    const std::vector<Video> videos = {
        {"h264.mp4", "-c:v libx264 -pix_fmt yuv420p -s 1298x96", 8},
        {"hevc10.mp4",
         "-c:v libx265 -x265-params log-level=error -pix_fmt yuv420p10le -colorspace bt709 -color_range tv -s 320x180",
         10},
        {"vp9.webm", "-c:v libvpx-vp9 -pix_fmt yuv420p -colorspace bt470bg -color_range pc -s 322x181", 8},
    };
    for (const Video& v : videos) {
        const std::string file = dir.file(v.name);
        test::ffmpeg_cli("-f lavfi -i testsrc2=s=640x360:r=10:d=1 -frames:v 6 " + v.args + " " + file);
        ff::FormatPtr fmt = ff::open_input(file);
        const int stream = ff::find_video_stream(fmt.get());
        ff::CodecPtr dec = ff::open_decoder(fmt.get(), stream, file, 0, 1);
        ff::PacketPtr pkt = ff::make_packet();
        ff::FramePtr frame = ff::make_frame();
        int frames = 0;
        auto drain = [&] {
            while (avcodec_receive_frame(dec.get(), frame.get()) == 0) {
                ASSERT_EQ(av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format))->comp[0].depth, v.bits);
                for (int rotation : {0, 90})
                    expect_reference_matches(frame.get(), v.bits, rotation, cat(v.name, " frame ", frames));
                ++frames;
            }
        };
        while (av_read_frame(fmt.get(), pkt.get()) >= 0) {
            if (pkt->stream_index == stream) avcodec_send_packet(dec.get(), pkt.get());
            av_packet_unref(pkt.get());
            drain();
        }
        avcodec_send_packet(dec.get(), nullptr);
        drain();
        EXPECT_EQ(frames, 6) << v.name;
    }
}
