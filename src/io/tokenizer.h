// Text <-> token ids through a SentencePiece tokenizer.model (the Gemma tokenizer of a
// Vidi checkpoint). Special markers that are user-defined pieces, such as <start_of_turn>
// (106) and <end_of_turn> (107), become their single ids when they appear in text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace vidi::io {

class Tokenizer {
public:
    // Throws vidi::Error naming the file when it is missing or not a SentencePiece model.
    static Tokenizer load(const std::string& path);

    // No <bos> is added; callers build the prompt (SPEC.md §5).
    std::vector<int32_t> encode(const std::string& text) const;
    // skip_special drops control pieces (<pad>, <eos>, <bos>), <unk> and the chat/markup
    // specials (<start_of_turn>, <end_of_turn>, <mask>, [multimodal]), as Hugging Face's
    // skip_special_tokens does for Gemma. An id outside the vocabulary is an error.
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

// Writes a SentencePiece BPE model with `vocab_size` pieces laid out like Gemma's
// tokenizer: <pad> 0, <eos> 1, <bos> 2, <unk> 3, <mask> 4, [multimodal] 5, <unused0..98>,
// [@BOS@] 105, <start_of_turn> 106, <end_of_turn> 107, "\n" 108, the 256 byte-fallback
// pieces, then synthetic text pieces (all 1- and 2-character strings over a small
// alphabet, then 3-character ones) until the vocabulary is full. Used by make-checkpoint
// for random-weight checkpoints; the protobuf is encoded by hand (no generated code).
void write_gemma_style_tokenizer_model(const std::string& path, int vocab_size);
int gemma_style_tokenizer_min_vocab();  // smallest vocab_size the writer accepts

}  // namespace vidi::io
