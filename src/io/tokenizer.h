// Text <-> token ids through a SentencePiece tokenizer.model. Special markers that are
// user-defined pieces (Gemma's <start_of_turn>, <end_of_turn>) become their single ids when
// they appear in text; which of them decode() drops is the model family's word.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace vidi::io {

class Tokenizer {
public:
    // Throws vidi::Error naming the file when it is missing or not a SentencePiece model.
    // `markup`: user-defined pieces that are special too (chat markers), besides the control
    // pieces and <unk>.
    static Tokenizer load(const std::string& path, const std::set<std::string>& markup = {});

    // No <bos> is added; callers build the prompt (SPEC.md §5).
    std::vector<int32_t> encode(const std::string& text) const;
    // skip_special drops control pieces (<pad>, <eos>, <bos>), <unk> and the markup pieces
    // given to load(), as Hugging Face's skip_special_tokens does. An id outside the
    // vocabulary is an error.
    std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;

    int vocab_size() const;
    int piece_to_id(const std::string& piece) const;  // -1 when the piece is not in the vocabulary
    std::string id_to_piece(int id) const;
    bool is_special(int id) const;  // what decode(skip_special=true) drops
    int bos_id() const;
    int eos_id() const;
    int pad_id() const;
    const std::string& path() const { return path_; }

private:
    std::shared_ptr<const sentencepiece::SentencePieceProcessor> sp_;
    std::vector<bool> special_;
    std::string path_;
};

// The layout of a SentencePiece BPE model written for random-weight checkpoints: the
// family's special pieces (ids 0..), the 256 byte-fallback pieces, then synthetic text
// pieces (all 1- and 2-character strings over a small alphabet, then 3-character ones) until
// the vocabulary is full.
struct SentencePieceLayout {
    enum class Kind : uint8_t { unknown = 2, control = 3, user_defined = 4 };  // ModelProto piece types
    std::vector<std::pair<std::string, Kind>> specials;
    int unk_id = 0, bos_id = -1, eos_id = -1, pad_id = -1;  // indices into specials (-1: none)
    bool add_dummy_prefix = false;                           // a space before the text (Llama style)
};
// Writes it with `vocab_size` pieces; the protobuf is encoded by hand (no generated code).
void write_sentencepiece_model(const std::string& path, int vocab_size, const SentencePieceLayout& layout);
int sentencepiece_min_vocab(const SentencePieceLayout& layout);  // smallest vocab_size it accepts

}  // namespace vidi::io
