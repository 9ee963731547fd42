// decord's frame numbering replayed over the packet index (no decoding).
//
// decord (src/video/video_reader.cc) lists every packet of the stream, sorts the list by
// timestamp and calls entry i "frame i"; keyframe positions are counted in file order.
// Reading frame `pos` it either decodes on from where it is, counting decoder outputs
// (SkipFramesImpl, NextFrameImpl), or, when `pos` lies under another keyframe than the
// current frame, seeks back to the start and then to that keyframe and checks which frame
// the decoder really produced (SeekAccurate, CheckKeyFrame). Outputs and timestamps agree
// unless packets are never shown: the decoder drops discard-flagged frames (the lead-in
// of an MP4 edit list), so before its first keyframe seek decord's index i is the i-th
// shown frame, and after it the i-th timestamp. This file follows those steps with a model
// of the decoder: after a start from the beginning it outputs every shown frame in
// timestamp order; after a seek to a keyframe, the shown frames of that keyframe and later
// packets whose timestamps are not below it (a closed GOP); a seek lands on the keyframe
// with that timestamp (forward: the first at or after it, backward: the last at or before
// it, or the start). Past the last output decord repeats the last frame it returned.
// Each picture also carries where decord's decoder last restarted before producing it (the
// keyframe it sought to, or the start of the file): the engine's decoders need not decode
// anything before it.
#include <algorithm>
#include <numeric>

#include "media/video_index.h"
#include "vidi/error.h"

namespace vidi::media {
namespace {

constexpr int64_t kNone = INT64_MIN;

class DecordReader {
public:
    explicit DecordReader(const std::vector<VideoPacket>& packets) : pk_(packets), n_(static_cast<int64_t>(packets.size())) {
        order_.resize(pk_.size());
        std::iota(order_.begin(), order_.end(), 0);
        std::stable_sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) { return pk_[a].pts < pk_[b].pts; });
        for (int64_t i : order_) ts_.push_back(pk_[i].pts);
        for (int64_t i = 0; i < n_; ++i)
            if (pk_[i].key) {
                key_pos_.push_back(i);
                keys_by_pts_.push_back(i);
            }
        std::stable_sort(keys_by_pts_.begin(), keys_by_pts_.end(),
                         [&](int64_t a, int64_t b) { return pk_[a].pts < pk_[b].pts; });
        for (int64_t i = n_ - 1; i >= 0 && last_shown_ == kNone; --i)
            if (!pk_[order_[i]].discard) last_shown_ = ts_[i];
        curr_ = n_;  // the index ends with a seek to frame 0
        seek(0);
    }

    DecordPicture get(int64_t pos) {
        if (curr_ != pos) seek_accurate(pos);
        return next_frame();
    }

private:
    // The decoder restarts at file position `from` (a keyframe; <= 0: the start of the file).
    void restart(int64_t from) {
        from_ = from > 0 ? from : -1;
        cursor_ = from_ < 0 ? 0 : static_cast<size_t>(std::lower_bound(ts_.begin(), ts_.end(), pk_[from_].pts) - ts_.begin());
    }
    // The next decoder output, pts kNone at the end.
    DecordPicture pop() {
        const int64_t origin = from_ >= 0 ? pk_[from_].pts : kNone;
        while (cursor_ < order_.size()) {
            const int64_t i = order_[cursor_++];
            if (pk_[i].discard) continue;
            if (from_ >= 0 && (i < from_ || pk_[i].pts < pk_[from_].pts)) continue;
            return {pk_[i].pts, origin};
        }
        return {kNone, origin};
    }
    // decord's pts -> index map keeps the first index of a timestamp.
    int64_t frame_of(int64_t pts) const {
        return static_cast<int64_t>(std::lower_bound(ts_.begin(), ts_.end(), pts) - ts_.begin());
    }
    int64_t locate_keyframe(int64_t pos) const {
        if (key_pos_.empty() || pos <= key_pos_.front()) return 0;
        if (pos >= n_) return key_pos_.back();
        return *(std::upper_bound(key_pos_.begin(), key_pos_.end(), pos) - 1);
    }
    // av_seek_frame to frame `pos`'s timestamp, backward when going back.
    void seek(int64_t pos) {
        if (curr_ == pos) return;
        const int64_t t = ts_[static_cast<size_t>(pos)];
        const bool backward = curr_ > pos;
        auto after = std::lower_bound(keys_by_pts_.begin(), keys_by_pts_.end(), t,
                                      [&](int64_t k, int64_t v) { return pk_[k].pts < v; });
        int64_t land = kNone;
        if (!backward && after != keys_by_pts_.end()) land = *after;
        if (land == kNone) {  // backward, or nothing after: the last keyframe at or before
            auto upto = std::upper_bound(keys_by_pts_.begin(), keys_by_pts_.end(), t,
                                         [&](int64_t v, int64_t k) { return v < pk_[k].pts; });
            land = upto == keys_by_pts_.begin() ? 0 : *(upto - 1);
        }
        restart(land);
        cached_ = {kNone, kNone};
        curr_ = pos;
    }
    bool check_keyframe() {
        const DecordPicture f = pop();
        if (f.pts == kNone) {
            curr_ = n_;
            return false;
        }
        const int64_t cf = frame_of(f.pts);
        if (curr_ != cf) {
            curr_ = cf + 1;
            return false;
        }
        ++curr_;
        key_frame_ = f;
        return true;
    }
    void skip(int64_t num) {
        num = std::min(n_ - curr_, num);
        if (num < 1) return;
        for (int64_t i = 0; i < num; ++i) pop();  // the end's drain signals count as frames too
        curr_ += num;
    }
    void seek_accurate(int64_t pos) {
        int64_t key = locate_keyframe(pos);
        overrun_ = false;
        if (key == locate_keyframe(curr_) && pos >= curr_) {
            skip(pos - curr_);
            return;
        }
        seek(0);
        seek(key);
        if (check_keyframe()) {
            if (pos > key) skip(pos - curr_);
            else overrun_ = pos == key;
        } else if (curr_ < pos) {
            skip(pos - curr_);
        } else {
            key = locate_keyframe(pos);
            seek(key);
            skip(pos - key);
        }
    }
    DecordPicture next_frame() {
        if (overrun_) {  // the keyframe check already decoded it (and leaves the cache alone)
            overrun_ = false;
            return key_frame_;
        }
        DecordPicture f = pop();
        if (f.pts == kNone) f = cached_.pts != kNone ? cached_ : DecordPicture{last_shown_, f.origin};
        ++curr_;
        cached_ = f;
        return f;
    }

    const std::vector<VideoPacket>& pk_;
    const int64_t n_;
    std::vector<int64_t> order_;        // packet numbers in timestamp order (decord's frame list)
    std::vector<int64_t> ts_;           // their timestamps
    std::vector<int64_t> key_pos_;      // file positions of the keyframes
    std::vector<int64_t> keys_by_pts_;  // the same, in timestamp order
    int64_t last_shown_ = kNone;
    int64_t from_ = -1;
    size_t cursor_ = 0;
    int64_t curr_ = 0;
    DecordPicture key_frame_{kNone, kNone}, cached_{kNone, kNone};
    bool overrun_ = false;
};

}  // namespace

std::vector<DecordPicture> decord_pictures(const std::vector<VideoPacket>& packets,
                                           const std::vector<int64_t>& indices) {
    VIDI_CHECK(!packets.empty(), "decord_pictures: no packets");
    for (const VideoPacket& p : packets) VIDI_CHECK(p.pts != AV_NOPTS_VALUE, "decord_pictures: a packet has no timestamp");
    DecordReader reader(packets);
    std::vector<DecordPicture> out;
    out.reserve(indices.size());
    for (int64_t pos : indices) {
        VIDI_CHECK(pos >= 0 && pos < static_cast<int64_t>(packets.size()), "decord_pictures: index ", pos,
                   " out of range");
        out.push_back(reader.get(pos));
    }
    return out;
}

}  // namespace vidi::media
