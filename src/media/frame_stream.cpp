// FrameStream: decodes only what the sampled frames need and hands them out in batches.
//
// Frames are numbered as decord numbers them: every packet of the video stream, in timestamp
// order (VideoIndex), with the picture decord's seek logic gives each index (decord_frames.cpp:
// after an MP4 edit list these can go back in time). A sampled frame is the first decoded
// frame whose timestamp is >= the wanted one (decord's accurate seek), so a damaged frame is
// replaced by its successor rather than shifting every later index.
//
// Nothing before the keyframe decord's decoder restarted at for a picture (decord_pictures)
// is needed for it: a cursor goes on within a GOP and restarts at the next such keyframe,
// passing over the packets in between, so only what lies between those keyframes and the
// sampled frames is decoded; where it would have to go back, a new cursor seeks. The frames
// are those of a decode from the start either way. Only where seeking is exact (an indexed
// container, or MPEG-TS by the keyframes' byte positions; timestamps on every packet);
// elsewhere one cursor decodes from the start.
//
// Decoding in lanes: a segment of sampled frames is decoded by a cursor of its own that
// starts where its first picture is decoded from, so on a machine with many cores several
// segments decode at once (each decoder with a share of the cores) while their order is
// kept. A segment holds a lane's share of a batch or more and ends, where it can, where the
// next picture's decoding restarts at a keyframe (segment_end). A cursor whose seek lands past
// its keyframe reads from the start up to it instead.
// Lanes run ahead of the reader by up to a memory budget of decoded pictures: while the
// reader waits on the GPU, they keep decoding the next segments (at most `lanes` at once,
// started in order), so the decoding and the GPU's work overlap instead of taking turns.
//
// With NVDEC (FrameOptions::decoder) the same lanes decode on the GPU, each on a CUDA stream of
// its own, and write every sampled frame straight into its batch's slot of a ring in device
// memory (device_writer.h): the towers read a batch while the lanes fill the next ones, and
// the ring bounds how far ahead they run. There a lane keeps its cursor for its next segment,
// seeking to that segment's keyframe (NVDEC's sessions are set up one at a time, ~0.2 s each
// on an H100), and NVDEC's one-frame trial becomes lane 0's cursor.
//
// A caller that takes batches in any order (start(true); the positions say which frames a batch
// holds) gets the CPU lanes' first segments interleaved: the first batch holds every lane's first
// frames instead of one lane's stretch of a GOP (plan_interleave). With NVDEC, whose sessions
// start one at a time, CPU lanes of their own (the ring's last lanes) decode that first wave
// while NVDEC's lanes take the segments after it (FrameOptions::cpu_head_lanes).
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "media/decode_cursor.h"
#include "media/device_writer.h"
#include "media/nvdec.h"

namespace vidi::media {

// Single-threaded decoders side by side spend less CPU a frame than FFmpeg's frame threads (on 2
// cores 2 lanes decoded a 10-minute 720p video 1.6x faster than one lane of 2 threads), but with
// every core decoding, the threads that queue the GPU's work and decode the audio wait for one:
// 16 lanes on 16 cores decoded 20-28% faster than 8 lanes of 2 threads and still gave a longer
// encode. A quarter of the cores left to them: on a 16-core H100 host whose cores decode at a
// third of the dev box's speed, 12 lanes encoded a 10-minute 720p video in 2.65-2.80 s against
// 3.41-3.90 s with 8 lanes of 2 threads (bench/RESULTS.md, 2026-12-06).
int automatic_lanes(unsigned cores) { return static_cast<int>(std::max(1u, cores - cores / 4)); }

namespace {
// NVDEC's lanes when none are asked for: one per 2 cores, at most 4. Beside the model's work 4
// lanes encoded a 10-minute video faster than 6 or 8 (H100, 720p H.264 and 1080p HEVC,
// bench/RESULTS.md 2026-12-06); alone, 8 decode faster. Each lane is a decoder session holding
// its surfaces in device memory.
int auto_nvdec_lanes(unsigned cores) { return static_cast<int>(std::clamp(cores / 2u, 1u, 4u)); }
// Lanes are bits of a 64-bit mask (Turns::busy); automatic_lanes() gives a 128-core host 96.
constexpr int kMostLanes = 64;
// Decoded RGB pictures waiting in lanes are kept under this (4K frames are 25 MB each), and so
// are the lanes' decoders with their reference pictures.
constexpr size_t kLaneBytes = size_t(1) << 30;
// Sampled frames launched ahead of the reader: at most this many batches' worth per lane.
constexpr int kBatchesPerLane = 8;
// What a lane's decoder holds besides the pictures it hands out: up to 16 reference pictures
// (H.264's and HEVC's largest decoded picture buffer) and what its frame threads are working on.
constexpr size_t kDecoderPictures = 20;
// Device memory for the batches NVDEC's lanes fill ahead of the reader (at least 3 batches).
constexpr size_t kDeviceFrameBytes = size_t(512) << 20;

// `t` as a fresh host buffer of `shape`, reusing its storage when nothing else holds it (a
// batch of 720p frames is 44 MB: allocated anew, each batch paid its page faults again).
void host_buffer(Tensor& t, const Shape& shape, DType dtype) {
    if (!(t.defined() && t.on_host() && t.dtype() == dtype && t.shape() == shape && t.sole_owner()))
        t = Tensor::uninitialized(shape, dtype);
}

// The picture's rows, without their padding, to dst (w·3 bytes a row).
void copy_rows(const Picture& p, uint8_t* dst) {
    const size_t row = static_cast<size_t>(p.width) * 3;
    for (int y = 0; y < p.height; ++y, dst += row)
        std::copy_n(p.rgb.data() + static_cast<size_t>(y) * p.stride, row, dst);
}
}  // namespace

struct FrameStream::Impl {
    std::string path;
    MediaInputs inputs = MediaInputs::Any;
    int image_size = 0;
    int max_batch = 0;
    int asked_lanes = 1;  // what the caller asked for (or the automatic count)
    bool lanes_left_to_us = false;  // the caller asked for no count
    int lanes = 1;        // what the memory allows
    size_t ahead = 1;     // sampled frames in segments launched and not yet handed out
    VideoIndex vx;
    std::vector<int64_t> indices;     // sampled frame indices
    std::vector<int64_t> wanted_pts;  // the timestamps of their pictures (empty: count output frames)
    std::vector<int64_t> wanted_origin;  // where decord's decoder restarted for each (decord_pictures)
    std::vector<int64_t> wanted_set;  // wanted_pts sorted (which packets the decoders may skip)
    size_t next_pos = 0;              // next to hand out: a sampled position, with the device an ordinal
    // The order in which the device path hands the sampled positions out (plan_interleave):
    // the first order.size() ordinals are a permutation of as many positions, order[ordinal] =
    // position and ordinal_of[position] = ordinal; the rest come in order.
    std::vector<size_t> order, ordinal_of;
    bool interleaved = false;  // segment_end's rule for the first segments (set before `order` is)
    size_t position(size_t ordinal) const { return ordinal < order.size() ? order[ordinal] : ordinal; }
    size_t ordinal(size_t pos) const { return pos < ordinal_of.size() ? ordinal_of[pos] : pos; }
    // A lane's decoding failed: its error, for the reader (device path; the host path's
    // futures carry theirs in order).
    std::atomic<bool> failed{false};
    std::mutex error_mu;
    std::exception_ptr error;
    std::atomic<int64_t> decoded{0};  // frames the decoders produced
    std::atomic<int64_t> lane_busy_ns{0};  // time the lanes spent decoding their segments
    std::atomic<int64_t> lane_first_ns{0};  // of it, until each segment's first frame (opening, seeking)
    std::atomic<int64_t> opened{0};         // cursors opened (each a decoder; with NVDEC a session)
    int64_t decoded_at_open = 0;            // frames NVDEC's trial decoded before any was read
    // NVDEC's start: CPU lanes (the ring's lanes `lanes` .. lanes + head_lanes - 1, decoding in
    // software) take the first wave of segments, interleaved, while NVDEC's sessions are set up.
    // Positions before head_end are theirs (segment_end cuts them as the CPU lanes' first
    // segments); their head_segments segments start at once, ahead of NVDEC's turns.
    int head_lanes = 0;
    size_t head_end = 0, head_segments = 0;
    bool head_lane(int lane) const { return lane >= lanes; }
    PictureBuffers buffers;           // the pictures' memory, reused (outlives the cursors below)

    // The batches go to device memory, written by NVDEC's lanes or the CPU's (null: to the host).
    std::unique_ptr<DeviceWriter> device;
    // The ring is filled by the CPU decoders' lanes (FrameOptions::cpu_to_device): their lane
    // count and segments are the host path's.
    bool cpu_lanes = false;
    // Whether a cursor restarts at a later keyframe rather than decoding on to it. For H.264 on
    // the device path only at IDR pictures, where the cursor keeps its decoder (the cursors'
    // keep_decoder, set wherever `restarts` is not):
    // FFmpeg's H.264 decoder drops its context at a flush, so NVDEC's session would be set up
    // anew, which cost more than the frames passed over (a 3-minute 720p video's frames: 2.4 s
    // restarting, 1.7 s decoding on, on the H200; HEVC keeps its context at a flush). The
    // software stand-in of the tests does the same, covering it.
    bool restarts = true;
    bool restarts_at(int64_t key) const { return restarts || vx.idr_key(key); }
    // The device path: each lane's cursor, kept for its next segment (a new NVDEC session for
    // each segment took ~0.2 s on an H100, and the driver sets them up one at a time), and the
    // last timestamp it was asked for. Declared after `device`: they go first.
    std::vector<std::unique_ptr<DecodeCursor>> lane_cursors;
    std::vector<int64_t> lane_wants;
    size_t written = 0;      // positions the reader's own cursor wrote (one sequential decoder)
    std::optional<size_t> held;  // the batch the reader holds

    std::unique_ptr<DecodeCursor> cursor;  // the sequential cursor (one lane, or next_rgb)
    int64_t cursor_want = 0;               // the last timestamp it was asked for
    struct Segment {
        size_t begin = 0, end = 0;
        std::future<std::vector<Picture>> pictures;
    };
    std::deque<Segment> in_flight;
    size_t next_segment = 0;
    // The order in which launched segments may start decoding, `lanes` at a time. Hundreds of
    // small segments may wait at once, so each waits on its own condition variable and only the
    // one whose turn it is gets woken (one shared by all woke every waiter at every start and end).
    struct Turns {
        std::mutex mu;
        int64_t next = 0;  // the ordinal of the segment whose turn it is
        int running = 0;
        bool cancelled = false;  // the stream is going away: waiting segments give up
        uint64_t busy = 0;       // lanes in use (bit per lane): a segment writes to the device as its lane
        std::map<int64_t, std::condition_variable*> waiting;  // by ordinal
        void wake_next() {  // with mu held
            const auto w = waiting.find(next);
            if (w != waiting.end()) w->second->notify_one();
        }
    } turns;
    int64_t launched = 0;
    int64_t lane_segments = 0;
    std::deque<Picture> pending;  // decoded, not handed out yet (positions next_pos, next_pos+1, ...)
    Tensor host_rgb;              // next()'s RGB batch, refilled in place

    void open();
    void plan_lanes(bool to_device);
    int lanes_by_memory() const;  // CPU decoders' lanes whose reference pictures fit kLaneBytes
    int head_count(const FrameOptions& o) const;
    void open_device(const FrameOptions& o);
    DeviceFramesShape ring_shape() const;
    void open_cpu_ring(const FrameOptions& o);
    void index_wanted();
    // Cursors may start and restart at keyframes: every packet has a timestamp and the
    // container's index (MP4/MOV, Matroska/WebM) or the keyframes' byte positions (MPEG-TS)
    // make keyframes exact.
    bool keyframes_exact() const {
        return (vx.indexed_seek || vx.byte_seek) && !wanted_pts.empty() && !vx.key_pts.empty();
    }
    bool parallel() const { return lanes > 1 && keyframes_exact(); }
    int64_t want(size_t pos) const { return wanted_pts.empty() ? indices[pos] : wanted_pts[pos]; }
    std::unique_ptr<DecodeCursor> open_cursor(int64_t origin, int threads, AVBufferRef* hw);
    // Whether lane cursor `c`, last asked for `last_want`, can go on to sampled position `pos`
    // without decoding a long way: on within its keyframe's stretch, or by a restart at a later one.
    bool can_go_on(const DecodeCursor& c, int64_t last_want, size_t pos) const;
    // Makes `c` hold sampled position pos's picture: it decodes on, restarts at a later
    // keyframe, or is replaced by a cursor that seeks where going on cannot get there.
    // last_want: the timestamp `c` was last asked for (updated).
    // far: the keyframe may lie far ahead of the cursor (a lane's next segment): seek to it.
    void place(std::unique_ptr<DecodeCursor>& c, size_t pos, int64_t& last_want, int threads, AVBufferRef* hw,
               bool far = false);
    DecodeCursor& sequential_cursor(size_t pos);
    Picture sequential_picture(size_t pos) { return sequential_cursor(pos).picture(); }
    std::vector<Picture> decode_segment(size_t begin, size_t end, int threads, int lane);
    size_t segment_end(size_t begin) const;
    size_t plan_interleave(int wave_lanes);  // the wave's segment count
    void launch_segments();
    void reap_segments();  // the device path: segments that ended (a lane's error is thrown here)
    bool fetch();  // appends the next segment's pictures to `pending`; false at the end
    // Whether the launched segments from the front on are decoded up to position `upto`
    // (`have`: the position already at hand).
    bool decoded_up_to(size_t have, size_t upto);
    void fetch_device(size_t upto);  // the device holds positions up to `upto`
    bool next_device(Tensor& rgb, std::vector<int64_t>& positions);
};

void FrameStream::Impl::open() {
    {
        ff::FormatPtr scan = ff::open_input(path, inputs);
        vx = index_video(scan.get(), path);
    }
    indices = sampled_frame_indices(vx.info);
    if (vx.all_pts)
        for (const DecordPicture& p : decord_pictures(vx.packets, indices)) {
            wanted_pts.push_back(p.pts);
            wanted_origin.push_back(p.origin);
        }
    index_wanted();
}

void FrameStream::Impl::plan_lanes(bool to_device) {
    const size_t batch = static_cast<size_t>(max_batch);
    if (to_device && !cpu_lanes) {  // NVDEC: nothing waits on the host, the ring bounds the lanes
        lanes = lanes_left_to_us ? auto_nvdec_lanes(std::thread::hardware_concurrency()) : std::min(asked_lanes, kMostLanes);
        ahead = size_t(kBatchesPerLane) * size_t(lanes) * batch;
        return;
    }
    // Memory bounds the CPU decoders' lanes twice, within kLaneBytes each: the RGB pictures
    // decoded ahead of the reader (`ahead`, in sampled frames; at least a segment at its longest,
    // two batches; a device ring bounds them itself) and each lane's decoder with its reference
    // pictures (kDecoderPictures of 4:2:0): 12 lanes for 1080p, 4 for 4K. Capping the lanes by
    // two batches of pictures each had left 5 lanes of 3 threads for 1080p and one decoder for
    // 4K: on 16 cores those decoded a 1080p HEVC file 1.1-1.4x and a 4K H.264 one 2.8x slower,
    // the latter with twice the CPU time (bench/RESULTS.md, 2026-12-06).
    const size_t frame_bytes = std::max<size_t>(1, size_t(vx.info.width) * vx.info.height * 3);
    lanes = std::max(1, std::min(asked_lanes, lanes_by_memory()));
    const size_t most = size_t(kBatchesPerLane) * size_t(lanes) * batch;
    ahead = to_device ? most : std::clamp(kLaneBytes / frame_bytes, 2 * batch, most);
}

int FrameStream::Impl::lanes_by_memory() const {
    const size_t frame_bytes = std::max<size_t>(1, size_t(vx.info.width) * vx.info.height * 3);
    const size_t decoder_bytes = std::max<size_t>(1, frame_bytes / 2 * kDecoderPictures);
    return static_cast<int>(std::min<size_t>(kLaneBytes / decoder_bytes, kMostLanes));
}

// NVDEC's lanes start one session at a time, ~0.2 s each on an H100, so the first batch came
// 0.25-0.48 s into the encode against 0.11-0.13 s with the CPU's lanes interleaved
// (bench/RESULTS.md, 2026-12-06 and 2026-12-07). The CPU lanes decode the first wave meanwhile.
// Within the CPU lanes' memory budget, the ring's 64 lanes, and four per NVDEC lane.
int FrameStream::Impl::head_count(const FrameOptions& o) const {
    if (!parallel() || o.cpu_head_lanes == 0) return 0;
    const int asked =
        o.cpu_head_lanes > 0 ? o.cpu_head_lanes : automatic_lanes(std::thread::hardware_concurrency());
    return std::max(0, std::min({asked, lanes_by_memory(), kMostLanes - lanes, 4 * lanes}));
}

void FrameStream::Impl::open_device(const FrameOptions& o) {
    const bool nvdec = o.decoder == "nvdec";
    std::unique_ptr<DecodeCursor> trial;
    VIDI_CHECK(nvdec || o.decoder == "auto", "unknown decoder '", o.decoder, "' (expected auto, cpu or nvdec)");
    // Why NVDEC cannot take the file; empty once it has decoded the first frame.
    std::string refusal;
    std::unique_ptr<DeviceWriter> writer;
    DeviceFramesShape shape;
    if (!o.device_frames) {
        refusal = "NVDEC needs the CUDA backend (--backend cuda)";
    } else if (!o.software_to_device) {
        refusal = nvdec_refusal(vx.codec_id, vx.pix_fmt, vx.av1_film_grain);
    }
    if (refusal.empty()) {
        plan_lanes(true);
        shape = ring_shape();
        head_lanes = head_count(o);
        shape.lanes += head_lanes;
        shape.host_lanes = head_lanes;
        if (!o.software_to_device)
            shape.lane_outside_bytes = nvdec_session_bytes(vx.coded_width, vx.coded_height, vx.pix_fmt);
        if (!nvdec && o.ring_cost) refusal = o.ring_cost(vx.info, static_cast<int64_t>(indices.size()), shape);
    }
    if (refusal.empty()) {
        FfmpegLogCapture log;
        // H.264 restarts only where its decoder is kept (`restarts`); set before the trial's cursor opens.
        restarts = vx.codec_id != AV_CODEC_ID_H264;
        try {
            writer = std::make_unique<DeviceWriter>(o.device_frames(shape), vx, path, !o.software_to_device);
            if (!o.software_to_device) {
                // One frame decoded tells whether NVDEC takes the stream (profile, size, the
                // driver's libnvcuvid): FFmpeg falls back to software decoding when it does not.
                // The trial is the first lane's decoder as it would open: it goes on to decode
                // the first segment, so that its NVDEC session is not set up twice.
                trial = open_cursor(AV_NOPTS_VALUE, 1, writer->hw_device(0));
                trial->advance_to(want(0));
                YuvPlanes planes;
                int bits = 0;
                if (!cuda_frame_planes(trial->frame(), trial->software_format(), planes, bits))
                    refusal = trial->frame()->format == AV_PIX_FMT_CUDA
                                  ? cat("NVDEC's frames of this stream are not 4:2:0 at 8, 10 or 12 bits")
                                  : cat("NVDEC cannot decode it", log.text().empty() ? "" : ": ", log.text());
            }
        } catch (const Error& e) {
            refusal = log.text().empty() ? e.what() : cat(e.what(), " (", log.text(), ")");
        }
    }
    if (!refusal.empty()) {
        VIDI_CHECK(!nvdec, "'", path, "': decoder nvdec cannot take it: ", refusal);
        if (o.device_frames && o.notice) o.notice(cat("video '", path, "': frames decoded on the CPU: ", refusal));
        trial.reset();
        restarts = true;
        head_lanes = 0;
        plan_lanes(false);
        return;
    }
    device = std::move(writer);
    lane_cursors.resize(static_cast<size_t>(device->lanes()));
    lane_wants.assign(static_cast<size_t>(device->lanes()), 0);
    if (trial) {  // lane 0 takes the first segment (or decodes everything, in one lane)
        (parallel() ? lane_cursors[0] : cursor) = std::move(trial);
        (parallel() ? lane_wants[0] : cursor_want) = want(0);
    }
    decoded_at_open = decoded.load();
}

// The ring of batches in device memory for the lanes as planned.
DeviceFramesShape FrameStream::Impl::ring_shape() const {
    const size_t frame_bytes = size_t(vx.info.width) * vx.info.height * 3;
    DeviceFramesShape shape;
    shape.batch = max_batch;
    shape.width = vx.info.width;
    shape.height = vx.info.height;
    shape.lanes = parallel() ? lanes : 1;
    shape.slots = static_cast<int>(
        std::clamp<size_t>(kDeviceFrameBytes / (frame_bytes * size_t(max_batch)), 3, size_t(2 * shape.lanes + 2)));
    return shape;
}

// The CPU decoders' lanes into a device ring, where its memory costs the video nothing (else,
// or where the ring cannot be had, the pictures stay on the host as before).
void FrameStream::Impl::open_cpu_ring(const FrameOptions& o) {
    cpu_lanes = true;
    plan_lanes(true);
    const DeviceFramesShape shape = ring_shape();
    if (!o.ring_cost || o.ring_cost(vx.info, static_cast<int64_t>(indices.size()), shape).empty()) {
        try {
            device = std::make_unique<DeviceWriter>(o.device_frames(shape), vx, path, false);
        } catch (const Error&) {  // (say, no device memory for it): the host path decodes alike
        }
    }
    if (!device) {
        cpu_lanes = false;
        plan_lanes(false);
        return;
    }
    // Each lane keeps its cursor for its next segment, which restarts there with a flush, as
    // decord's decoder does (`restarts` stays: unlike NVDEC's, a flush costs the CPU nothing).
    lane_cursors.resize(static_cast<size_t>(device->lanes()));
    lane_wants.assign(static_cast<size_t>(device->lanes()), 0);
}

void FrameStream::Impl::index_wanted() {
    wanted_set = wanted_pts;
    std::sort(wanted_set.begin(), wanted_set.end());
    wanted_set.erase(std::unique(wanted_set.begin(), wanted_set.end()), wanted_set.end());
}

std::unique_ptr<DecodeCursor> FrameStream::Impl::open_cursor(int64_t origin, int threads, AVBufferRef* hw) {
    ++opened;
    return std::make_unique<DecodeCursor>(path, vx, wanted_set, threads, origin, &decoded, inputs, hw, &buffers,
                                          !restarts);
}

bool FrameStream::Impl::can_go_on(const DecodeCursor& c, int64_t last_want, size_t pos) const {
    const int64_t w = want(pos), o = wanted_origin[pos];
    if (restarts && o != AV_NOPTS_VALUE) return true;  // a flush keeps the decoder: back or on to any keyframe
    if (w < last_want) return false;
    return o == c.origin() || (o != AV_NOPTS_VALUE && o > c.origin() && restarts_at(o));
}

void FrameStream::Impl::place(std::unique_ptr<DecodeCursor>& c, size_t pos, int64_t& last_want, int threads,
                              AVBufferRef* hw, bool far) {
    const int64_t w = want(pos);
    const auto open = [&](int64_t origin) { c = open_cursor(origin, threads, hw); };
    if (!keyframes_exact()) {  // one decoder from the start; a new one where decord went back in time
        if (!c || w < last_want) open(AV_NOPTS_VALUE);
    } else {
        // Going on reaches w where it lies ahead of what the cursor returned and not before
        // the keyframe it restarted at. Where decord's decoder restarted at a later keyframe,
        // so does the cursor, also where it read that keyframe's packet already (frame threads
        // and reordering read ahead): decoding on gave the same pictures only on undamaged
        // streams, where a damaged one was concealed from the frames before the keyframe.
        const int64_t o = wanted_origin[pos];
        const bool onward = c && w >= last_want && (c->origin() == AV_NOPTS_VALUE || w >= c->origin());
        // After a seek: whether it reached w from the keyframe (a seek that went past it, or
        // one from which nothing decodes, did not).
        const auto landed = [&] { return c->try_advance_to(w) && (o == AV_NOPTS_VALUE || c->first_key() <= w); };
        const auto seek_to_origin = [&] {
            if (c && restarts && o != AV_NOPTS_VALUE)
                c->restart_at(o, true);  // the decoder, flushed, goes back to it (NVDEC: same session)
            else
                open(o);  // seeks to the keyframe
            if (!landed()) {  // read up to it from the start instead
                open(AV_NOPTS_VALUE);
                c->restart_at(o);
            }
        };
        if (!onward) {
            seek_to_origin();
        } else if (o != AV_NOPTS_VALUE && o > c->origin() && restarts_at(o)) {
            const bool goes_back = !c->can_restart_at(o);
            c->restart_at(o, far);
            if (goes_back && !landed()) seek_to_origin();  // the demuxer's seek went past it
        }
    }
    last_want = w;
    c->advance_to(w);
}

DecodeCursor& FrameStream::Impl::sequential_cursor(size_t pos) {
    place(cursor, pos, cursor_want, 0, device ? device->hw_device(0) : nullptr);
    return *cursor;
}

std::vector<Picture> FrameStream::Impl::decode_segment(size_t begin, size_t end, int threads, int lane) {
    AVBufferRef* hw = device ? device->hw_device(lane) : nullptr;
    std::unique_ptr<DecodeCursor> own;
    int64_t own_want = 0;
    // The lane's cursor from its last segment (not NVDEC's CPU head: its segments are its last).
    const bool kept = device && keyframes_exact() && !head_lane(lane);
    std::unique_ptr<DecodeCursor>& c = kept ? lane_cursors[static_cast<size_t>(lane)] : own;
    int64_t& last_want = kept ? lane_wants[static_cast<size_t>(lane)] : own_want;
    if (c && !can_go_on(*c, last_want, begin)) c.reset();
    std::vector<Picture> out;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t p = begin; p < end; ++p) {
        place(c, p, last_want, threads, hw, p == begin);
        if (p == begin)
            lane_first_ns +=
                std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
        if (device)
            device->write(lane, ordinal(p), *c);
        else
            out.push_back(c->picture());
    }
    return out;
}

size_t FrameStream::Impl::segment_end(size_t begin) const {
    const size_t n = indices.size();
    // Segments of a lane's share of a batch, grown up to where the next picture's decoding
    // restarts at a keyframe (so nothing is decoded twice): the lanes then finish segments in
    // order at their combined pace, and each batch is ready soon after the one before. Segments
    // of whole batches came out at about the same time, after one lane had decoded a batch, while
    // the GPU waited (bench/RESULTS.md, 2026-12-06). A segment of the first batch reaches at
    // most twice its share past its start, or to the batch's end, so that the GPU starts early;
    // splitting a GOP there among lanes would not start it sooner (the GOP's last picture needs
    // all of the GOP's references before it) and decoded the GOP's start again in each lane.
    // Where the first segments are interleaved (plan_interleave) they take whole GOPs too.
    // NVDEC's lanes take whole batches after the first: a lane sets up its session once, and
    // keeps it for its next segments. NVDEC's CPU head is cut as the CPU lanes' would be.
    const size_t batch = static_cast<size_t>(max_batch);
    const bool head = begin < head_end;
    const size_t share = std::max<size_t>(1, batch / static_cast<size_t>(head ? head_lanes : lanes));
    const size_t base = device && !cpu_lanes && !head && begin >= batch ? batch : share;
    const bool first_batch = begin < batch && !interleaved;
    const size_t longest = std::min(n, first_batch ? std::max(batch, begin + 2 * share) : begin + 2 * batch);
    // A segment's cursor only goes forward: it ends where decord's pictures go back in time.
    size_t end = begin + 1;
    while (end < std::min(n, begin + base) && wanted_pts[end] >= wanted_pts[end - 1]) ++end;
    // Grow while the next picture is decoded from a keyframe at or before the last one taken (a
    // keyframe between them that decord's decoder decodes on through counts as none): a new
    // cursor there would decode again what this one did.
    const auto decoded_on = [&](size_t i) {
        return wanted_origin[i] == AV_NOPTS_VALUE || wanted_origin[i] <= wanted_pts[i - 1];
    };
    while (end < longest && wanted_pts[end] >= wanted_pts[end - 1] && decoded_on(end)) ++end;
    return end;
}

// The first batch waits on one lane decoding a GOP's chain up to the batch's last frame (on an
// H200 host, 0.2 s of a 720p H.264 video with 10 s GOPs, with the GPU idle but for the audio).
// Interleaved, the first `lanes` segments, which start together, hand out their first frames,
// then their second ones, and so on: the first batch waits on every lane's first frame or two.
// Later frames come in order. No lane waits on another: the wave's segments all run at once,
// each writes its frames in the order handed out, and segments after them start in order.
size_t FrameStream::Impl::plan_interleave(int wave_lanes) {
    if (indices.empty()) return 0;
    interleaved = true;
    std::vector<std::pair<size_t, size_t>> wave;
    for (size_t b = 0; wave.size() < static_cast<size_t>(wave_lanes) && b < indices.size(); b = wave.back().second)
        wave.emplace_back(b, segment_end(b));
    order.clear();
    for (size_t j = 0; order.size() < wave.back().second; ++j)
        for (const auto& [b, e] : wave)
            if (b + j < e) order.push_back(b + j);
    ordinal_of.assign(order.size(), 0);
    for (size_t o = 0; o < order.size(); ++o) ordinal_of[order[o]] = o;
    return wave.size();
}

void FrameStream::Impl::launch_segments() {
    const int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / lanes);
    size_t frames_ahead = 0;
    for (const Segment& seg : in_flight) frames_ahead += seg.end - seg.begin;
    while (next_segment < indices.size()) {
        Segment s;
        s.begin = next_segment;
        s.end = segment_end(next_segment);
        if (!in_flight.empty() && frames_ahead + (s.end - s.begin) > ahead) break;
        frames_ahead += s.end - s.begin;
        s.pictures = std::async(std::launch::async, [this, b = s.begin, e = s.end, threads, turn = launched++,
                                                     lane = 0]() mutable {
            // NVDEC's CPU head: a lane of its own for each of its segments, all at once.
            const bool head = turn < static_cast<int64_t>(head_segments);
            if (head) {
                lane = lanes + static_cast<int>(turn);
            } else {
                std::condition_variable my_turn;
                std::unique_lock<std::mutex> lock(turns.mu);
                turns.waiting[turn] = &my_turn;
                my_turn.wait(lock, [&] { return turns.cancelled || (turns.next == turn && turns.running < lanes); });
                turns.waiting.erase(turn);
                if (turns.cancelled) return std::vector<Picture>();
                ++turns.next;
                ++turns.running;
                while (turns.busy >> lane & 1) ++lane;
                turns.busy |= uint64_t(1) << lane;
                turns.wake_next();  // it may start too where a lane is free
            }
            struct Done {  // the lane is free again, also when decoding throws
                Turns& t;
                int lane;
                bool took_turn;
                ~Done() {
                    if (!took_turn) return;
                    std::lock_guard<std::mutex> lock(t.mu);
                    --t.running;
                    t.busy &= ~(uint64_t(1) << lane);
                    t.wake_next();
                }
            } done{turns, lane, !head};
            struct Busy {  // the segment's decoding time, also when it throws
                std::atomic<int64_t>& ns;
                std::chrono::steady_clock::time_point t0;
                ~Busy() {
                    ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
                              .count();
                }
            } busy{lane_busy_ns, std::chrono::steady_clock::now()};
            try {
                return decode_segment(b, e, head ? 1 : threads, lane);
            } catch (...) {
                {
                    std::lock_guard<std::mutex> lock(error_mu);
                    if (!error) error = std::current_exception();
                }
                failed = true;
                if (device) device->nudge();  // a reader waiting on the ring looks at `failed`
                throw;
            }
        });
        next_segment = s.end;
        in_flight.push_back(std::move(s));
    }
}

FrameStream::FrameStream(const std::string& path, int image_size, int max_batch, int lanes, MediaInputs inputs)
    : impl_(std::make_unique<Impl>()) {
    VIDI_CHECK(image_size > 0 && image_size <= 4096, "FrameStream: bad image size ", image_size);
    VIDI_CHECK(max_batch > 0, "FrameStream: bad batch size ", max_batch);
    VIDI_CHECK(lanes >= 0, "FrameStream: bad lane count ", lanes);
    impl_->path = path;
    impl_->inputs = inputs;
    impl_->image_size = image_size;
    impl_->max_batch = max_batch;
    impl_->lanes_left_to_us = lanes == 0;
    impl_->asked_lanes = lanes > 0 ? lanes : automatic_lanes(std::thread::hardware_concurrency());
    impl_->open();
    impl_->plan_lanes(false);
}

FrameStream::FrameStream(const std::string& path, const FrameOptions& o)
    : FrameStream(path, o.image_size, o.max_batch, o.lanes, o.inputs) {
    if (o.decoder != "cpu") impl_->open_device(o);
    if (!impl_->device && o.cpu_to_device && o.device_frames) impl_->open_cpu_ring(o);
}

FrameStream::~FrameStream() {
    {
        std::lock_guard<std::mutex> lock(impl_->turns.mu);
        impl_->turns.cancelled = true;  // segments still waiting for their turn return at once
        for (const auto& [turn, cv] : impl_->turns.waiting) cv->notify_one();
    }
    if (impl_->device) impl_->device->cancel();  // and those waiting for room in the ring
    for (auto& s : impl_->in_flight)  // let running decoders finish before the state goes
        if (s.pictures.valid()) s.pictures.wait();
}

const VideoInfo& FrameStream::info() const { return impl_->vx.info; }
const char* FrameStream::decoder() const {
    return impl_->device && !impl_->cpu_lanes ? "nvdec" : "cpu";
}
int64_t FrameStream::decoded_frames() const { return impl_->decoded.load(); }
int64_t FrameStream::lane_segments() const { return impl_->lane_segments; }
int FrameStream::lanes() const { return impl_->parallel() ? impl_->lanes : 1; }
double FrameStream::lane_busy_seconds() const { return static_cast<double>(impl_->lane_busy_ns.load()) * 1e-9; }
int64_t FrameStream::decoders_opened() const { return impl_->opened.load(); }
int FrameStream::head_lanes() const {
    return static_cast<int>(std::min(static_cast<size_t>(impl_->head_lanes), impl_->head_segments));
}
int64_t FrameStream::head_frames() const { return static_cast<int64_t>(impl_->head_end); }
double FrameStream::lane_first_seconds() const { return static_cast<double>(impl_->lane_first_ns.load()) * 1e-9; }
int64_t FrameStream::total_frames() const { return static_cast<int64_t>(impl_->indices.size()); }

void FrameStream::keep_every(int64_t step) {
    VIDI_CHECK(step >= 1, "keep_every: step must be at least 1, got ", step);
    VIDI_CHECK(impl_->next_pos == 0 && impl_->decoded.load() == impl_->decoded_at_open && impl_->in_flight.empty(),
               "keep_every: frames were already read");
    if (step == 1) return;
    auto thin = [step](std::vector<int64_t>& v) {
        size_t kept = 0;
        for (size_t i = 0; i < v.size(); i += static_cast<size_t>(step)) v[kept++] = v[i];
        v.resize(kept);
    };
    thin(impl_->indices);
    thin(impl_->wanted_pts);
    thin(impl_->wanted_origin);
    impl_->index_wanted();
}

void FrameStream::start(bool any_order) {
    Impl& s = *impl_;
    if (!s.parallel() || s.cursor) return;
    // NVDEC's own lanes keep the order: their sessions are set up one at a time (~0.2 s each on
    // an H100), so a first batch from every lane would wait for the last one's. Its CPU head
    // interleaves instead, and NVDEC's turns start after it.
    if (any_order && s.device && s.next_segment == 0) {
        if (s.cpu_lanes) {
            s.plan_interleave(s.lanes);
        } else if (s.head_lanes > 0) {
            s.head_end = s.indices.size();  // every segment of the wave is cut as the head's
            s.head_segments = s.plan_interleave(s.head_lanes);
            s.head_end = s.order.size();
            s.ahead += s.head_end;  // NVDEC's lanes get their own budget beside the wave (the ring bounds both)
            std::lock_guard<std::mutex> lock(s.turns.mu);
            s.turns.next = static_cast<int64_t>(s.head_segments);
        }
    }
    s.launch_segments();
}

bool FrameStream::next_rgb(Tensor& rgb, int64_t& sampled_position) {
    Impl& s = *impl_;
    VIDI_CHECK(!s.device, "FrameStream: next_rgb() with frames decoded to the GPU");
    VIDI_CHECK(s.in_flight.empty() && s.next_segment == 0 && s.pending.empty(),
               "FrameStream: next_rgb() after next()");
    if (s.next_pos >= s.indices.size()) return false;
    Picture p = s.sequential_picture(s.next_pos);
    rgb = Tensor::uninitialized({p.height, p.width, 3}, DType::u8);
    copy_rows(p, rgb.data<uint8_t>());
    sampled_position = static_cast<int64_t>(s.next_pos++);
    s.buffers.give_back(std::move(p));
    return true;
}

bool FrameStream::Impl::fetch() {
    const size_t upcoming = next_pos + pending.size();
    if (upcoming >= indices.size()) return false;
    if (parallel() && !cursor) {
        launch_segments();
        Segment seg = std::move(in_flight.front());
        in_flight.pop_front();
        for (Picture& p : seg.pictures.get()) pending.push_back(std::move(p));
        ++lane_segments;
        launch_segments();  // keep every lane busy while these pictures are used
    } else {
        const size_t n = std::min(indices.size() - upcoming, static_cast<size_t>(max_batch));
        for (size_t i = 0; i < n; ++i) pending.push_back(sequential_picture(upcoming + i));
    }
    return true;
}

bool FrameStream::Impl::decoded_up_to(size_t have, size_t upto) {
    launch_segments();
    for (const Segment& seg : in_flight) {
        if (have >= upto) return true;
        if (seg.pictures.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
        have = seg.end;
    }
    return have >= upto;
}

bool FrameStream::ready() {
    Impl& s = *impl_;
    if (!s.parallel() || s.cursor) return true;  // the caller's thread decodes: nothing to wait for
    const size_t end = std::min(s.indices.size(), s.next_pos + static_cast<size_t>(s.max_batch));
    if (s.device) {
        if (s.next_pos >= end) return true;
        s.launch_segments();
        const size_t batch = static_cast<size_t>(s.max_batch);
        return s.failed || s.device->filled(s.next_pos / batch, static_cast<int64_t>(end - s.next_pos));
    }
    return s.decoded_up_to(s.next_pos + s.pending.size(), end);
}

void FrameStream::Impl::reap_segments() {
    for (auto seg = in_flight.begin(); seg != in_flight.end();)
        if (seg->pictures.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
            auto pictures = std::move(seg->pictures);
            seg = in_flight.erase(seg);
            ++lane_segments;
            pictures.get();  // the lane wrote its frames, or this throws its error
        } else {
            ++seg;
        }
}

void FrameStream::Impl::fetch_device(size_t upto) {
    if (parallel() && !cursor) {
        // The batch's frames may come from several segments at once (interleaved), so the
        // writer counts them; the segments are reaped as they end.
        const size_t batch = static_cast<size_t>(max_batch), b = (upto - 1) / batch;
        reap_segments();
        launch_segments();
        // Every frame of the batch is in a launched segment (interleaved, the first segments
        // were launched together): the segments not yet reaped hold at most the batch and the
        // two before it, or NVDEC's CPU head, for which `ahead` was raised, well within `ahead`.
        // Else nothing would wake the wait below.
        VIDI_CHECK(next_segment >= upto, "'", path, "': frame ", upto - 1, " is in no decoding segment (",
                   next_segment, " launched)");
        if (!device->wait_filled(b, static_cast<int64_t>(upto - b * batch), [this] { return failed.load(); })) {
            std::lock_guard<std::mutex> lock(error_mu);
            std::rethrow_exception(error);
        }
        reap_segments();
        launch_segments();  // keep every lane busy while these frames are used
        return;
    }
    for (; written < upto; ++written) device->write(0, written, sequential_cursor(written));
}

bool FrameStream::Impl::next_device(Tensor& rgb, std::vector<int64_t>& positions) {
    if (held) {  // the reader queued its work on the previous batch: its slot may be refilled
        device->release(*held);
        held.reset();
    }
    if (next_pos >= indices.size()) return false;
    const size_t end = std::min(indices.size(), next_pos + static_cast<size_t>(max_batch));
    fetch_device(end);
    const size_t b = next_pos / static_cast<size_t>(max_batch);
    rgb = device->take(b, static_cast<int64_t>(end - next_pos));
    held = b;
    for (; next_pos < end; ++next_pos) positions.push_back(static_cast<int64_t>(position(next_pos)));
    return true;
}

bool FrameStream::next_frames(Tensor& rgb, std::vector<int64_t>& sampled_positions) {
    Impl& s = *impl_;
    sampled_positions.clear();
    if (s.device) return s.next_device(rgb, sampled_positions);
    // Segments need not line up with batches: fill a whole batch (as one decoder would).
    while (s.pending.size() < static_cast<size_t>(s.max_batch) && s.fetch()) {
    }
    if (s.pending.empty()) return false;
    // A batch holds frames of one size (they all have the stream's first size; kept as a guard).
    const int w = s.pending.front().width, h = s.pending.front().height;
    int64_t n = 0;
    while (n < static_cast<int64_t>(s.pending.size()) && n < s.max_batch &&
           s.pending[static_cast<size_t>(n)].width == w && s.pending[static_cast<size_t>(n)].height == h)
        ++n;
    host_buffer(rgb, {n, h, w, 3}, DType::u8);
    for (int64_t i = 0; i < n; ++i) {
        copy_rows(s.pending.front(), rgb.row(i).data<uint8_t>());
        s.buffers.give_back(std::move(s.pending.front()));
        s.pending.pop_front();
        sampled_positions.push_back(static_cast<int64_t>(s.next_pos++));
    }
    return true;
}

bool FrameStream::next(Tensor& batch, std::vector<int64_t>& sampled_positions) {
    VIDI_CHECK(!impl_->device, "FrameStream: next() with frames decoded to the GPU (use next_frames)");
    Tensor& rgb = impl_->host_rgb;
    if (!next_frames(rgb, sampled_positions)) return false;
    const int S = impl_->image_size;
    host_buffer(batch, {rgb.dim(0), 3, S, S}, DType::f32);
    frames_to_pixels_f32(rgb.data<uint8_t>(), rgb.dim(0), static_cast<int>(rgb.dim(1)), static_cast<int>(rgb.dim(2)),
                         S, batch.data<float>());
    return true;
}

}  // namespace vidi::media
