// A SentencePiece ModelProto written by hand in protobuf wire format: only the fields the
// SentencePiece loader needs (pieces, trainer ids and piece names, an identity normaliser).
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "io/tokenizer.h"
#include "vidi/error.h"

namespace vidi::io {

namespace {

// Protobuf wire format: varint (type 0), 32-bit (type 5) and length-delimited (type 2).
class ProtoWriter {
public:
    void varint(int field, uint64_t v) {
        tag(field, 0);
        raw_varint(v);
    }
    void f32(int field, float v) {
        tag(field, 5);
        char b[4];
        std::memcpy(b, &v, 4);  // little-endian host, as the format wants
        out_.append(b, 4);
    }
    void bytes(int field, const std::string& s) {
        tag(field, 2);
        raw_varint(s.size());
        out_ += s;
    }
    const std::string& str() const { return out_; }

private:
    void tag(int field, int wire) { raw_varint((uint64_t(field) << 3) | wire); }
    void raw_varint(uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(char(v | 0x80));
            v >>= 7;
        }
        out_.push_back(char(v));
    }
    std::string out_;
};

enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6 };

struct Piece {
    std::string text;
    float score;
    PieceType type;
};

// Characters of the synthetic text pieces; "▁" is SentencePiece's escaped space.
std::vector<std::string> alphabet() {
    std::vector<std::string> a = {"\xE2\x96\x81"};
    for (char c = 'a'; c <= 'z'; ++c) a.emplace_back(1, c);
    for (char c = 'A'; c <= 'Z'; ++c) a.emplace_back(1, c);
    for (char c = '0'; c <= '9'; ++c) a.emplace_back(1, c);
    for (char c : std::string(".,?!'-:;()\"/")) a.emplace_back(1, c);
    return a;
}

std::vector<Piece> special_and_byte_pieces(const SentencePieceLayout& layout) {
    std::vector<Piece> p;
    for (const auto& [text, kind] : layout.specials) p.push_back({text, 0, static_cast<PieceType>(kind)});
    char buf[8];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        p.push_back({buf, 0, kByte});
    }
    return p;
}

std::string serialize(const std::vector<Piece>& pieces, const SentencePieceLayout& layout) {
    ProtoWriter model;
    for (const Piece& p : pieces) {
        ProtoWriter sp;
        sp.bytes(1, p.text);
        sp.f32(2, p.score);
        sp.varint(3, p.type);
        model.bytes(1, sp.str());
    }
    ProtoWriter trainer;
    trainer.varint(3, 2);  // model_type BPE
    trainer.varint(4, pieces.size());
    trainer.varint(35, 1);  // byte_fallback
    // unk_id .. pad_id are fields 40-43, their pieces 45-48 (an absent one: id -1).
    const int ids[] = {layout.unk_id, layout.bos_id, layout.eos_id, layout.pad_id};
    for (int i = 0; i < 4; ++i) trainer.varint(40 + i, static_cast<uint64_t>(static_cast<int64_t>(ids[i])));
    for (int i = 0; i < 4; ++i)
        if (ids[i] >= 0) trainer.bytes(45 + i, layout.specials.at(static_cast<size_t>(ids[i])).first);
    model.bytes(2, trainer.str());
    ProtoWriter normalizer;  // no normalisation, spaces kept
    normalizer.bytes(1, "identity");
    normalizer.varint(3, layout.add_dummy_prefix ? 1 : 0);
    normalizer.varint(4, 0);  // remove_extra_whitespaces
    normalizer.varint(5, 1);  // escape_whitespaces
    model.bytes(3, normalizer.str());
    return model.str();
}

}  // namespace

int sentencepiece_min_vocab(const SentencePieceLayout& layout) {
    return static_cast<int>(special_and_byte_pieces(layout).size() + alphabet().size());
}

void write_sentencepiece_model(const std::string& path, int vocab_size, const SentencePieceLayout& layout) {
    if (vocab_size < sentencepiece_min_vocab(layout))
        fail("cannot build a tokenizer with vocab_size ", vocab_size, ": the special, byte and character pieces need ",
             sentencepiece_min_vocab(layout));
    std::vector<Piece> pieces = special_and_byte_pieces(layout);
    const std::vector<std::string> chars = alphabet();
    for (const auto& c : chars) pieces.push_back({c, 0, kNormal});
    // BPE merges: longer strings, built from strings one shorter, ranked by id.
    std::vector<std::string> previous = chars;
    float rank = 0;
    while (pieces.size() < size_t(vocab_size)) {
        std::vector<std::string> longer;
        for (const auto& p : previous) {
            for (const auto& c : chars) {
                if (pieces.size() == size_t(vocab_size)) break;
                longer.push_back(p + c);
                pieces.push_back({longer.back(), --rank, kNormal});
            }
        }
        previous = std::move(longer);
    }
    std::ofstream out(path, std::ios::binary);
    if (!out) fail(path, ": cannot create tokenizer model");
    std::string data = serialize(pieces, layout);
    out.write(data.data(), std::streamsize(data.size()));
    if (!out) fail(path, ": write failed");
}

}  // namespace vidi::io
