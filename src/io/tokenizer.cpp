#include "io/tokenizer.h"

#include <sentencepiece_processor.h>

#include <filesystem>

#include "vidi/error.h"

namespace vidi::io {

Tokenizer Tokenizer::load(const std::string& path, const std::set<std::string>& markup) {
    if (!std::filesystem::is_regular_file(path)) fail(path, ": tokenizer model not found");
    auto sp = std::make_shared<sentencepiece::SentencePieceProcessor>();
    auto status = sp->Load(path);
    if (!status.ok()) fail(path, ": not a usable SentencePiece model: ", status.ToString());
    Tokenizer t;
    t.path_ = path;
    t.special_.resize(static_cast<size_t>(sp->GetPieceSize()));
    for (int id = 0; id < sp->GetPieceSize(); ++id)
        t.special_[id] = sp->IsControl(id) || sp->IsUnknown(id) || markup.count(sp->IdToPiece(id)) != 0;
    t.sp_ = std::move(sp);
    return t;
}

std::vector<int32_t> Tokenizer::encode(const std::string& text) const {
    std::vector<int> ids;
    auto status = sp_->Encode(text, &ids);
    if (!status.ok()) fail(path_, ": cannot tokenise text: ", status.ToString());
    return {ids.begin(), ids.end()};
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    std::vector<int> kept;
    kept.reserve(ids.size());
    for (int32_t id : ids) {
        if (id < 0) fail(path_, ": token id ", id, " is negative");
        // Ids past the pieces (a model whose vocabulary is padded beyond its tokenizer) decode
        // to nothing, as in Hugging Face's fast tokenizers.
        if (id >= vocab_size()) continue;
        if (!(skip_special && special_[id])) kept.push_back(id);
    }
    std::string text;
    auto status = sp_->Decode(kept, &text);
    if (!status.ok()) fail(path_, ": cannot decode ids: ", status.ToString());
    return text;
}

int Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

int Tokenizer::piece_to_id(const std::string& piece) const {
    int id = sp_->PieceToId(piece);
    return sp_->IdToPiece(id) == piece ? id : -1;  // SentencePiece answers <unk> for unknown pieces
}

std::string Tokenizer::id_to_piece(int id) const {
    if (id < 0 || id >= vocab_size()) fail(path_, ": token id ", id, " is outside the vocabulary of ", vocab_size());
    return sp_->IdToPiece(id);
}

bool Tokenizer::is_special(int id) const { return id >= 0 && id < vocab_size() && special_[id]; }
int Tokenizer::bos_id() const { return sp_->bos_id(); }
int Tokenizer::eos_id() const { return sp_->eos_id(); }
int Tokenizer::pad_id() const { return sp_->pad_id(); }

}  // namespace vidi::io
