#include "app/server/data_url.h"

#include <algorithm>
#include <cctype>

#include "app/server/http_error.h"
#include "app/server/text.h"
#include "vidi/error.h"

namespace vidi::server {
namespace {

constexpr size_t kMaxHeader = 256;  // "data:video/mp4;base64," and any parameters
constexpr size_t kDecodePiece = 48 << 10;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The file extension for a data: URL's media type (the demuxer probes the content anyway).
std::string extension_for(const std::string& media_type) {
    if (media_type == "video/mp4") return ".mp4";
    if (media_type == "video/webm") return ".webm";
    if (media_type == "video/quicktime") return ".mov";
    if (media_type == "video/x-matroska") return ".mkv";
    if (media_type == "video/ogg") return ".ogv";
    return "";
}

HttpError bad_base64() { return HttpError(400, "the data: URL's payload is not valid base64"); }

}  // namespace

DataUrlFilter::DataUrlFilter(int64_t max_text_bytes, Begin begin) : max_text_(max_text_bytes), begin_(std::move(begin)) {}

DataUrlFilter::~DataUrlFilter() {
    if (ctx_) EVP_ENCODE_CTX_free(ctx_);
}

void DataUrlFilter::keep(char c) {
    text_.push_back(c);
    if (static_cast<int64_t>(text_.size()) > max_text_)
        throw HttpError(413, "the JSON body (without its data: URL) is larger than " + std::to_string(max_text_) +
                                 " bytes");
}

bool DataUrlFilter::is_url_value() const {
    // ... "url" <ws> : <ws> " (the quote at string_start_)
    size_t i = string_start_;
    while (i > 0 && is_space(text_[i - 1])) --i;
    if (i == 0 || text_[i - 1] != ':') return false;
    --i;
    while (i > 0 && is_space(text_[i - 1])) --i;
    return i >= 5 && text_.compare(i - 5, 5, "\"url\"") == 0;
}

void DataUrlFilter::feed(const char* data, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (state_ == State::payload) {
            size_t j = i;
            while (j < n && data[j] != '"' && data[j] != '\\') ++j;
            decode(data + i, j - i);
            if (j == n) return;
            if (data[j] == '\\') {
                state_ = State::payload_escape;
            } else {
                end_payload();
                state_ = State::outside;
            }
            i = j + 1;
            continue;
        }
        const char c = data[i++];
        switch (state_) {
            case State::outside:
                keep(c);
                if (c == '"') {
                    state_ = State::in_string;
                    string_start_ = text_.size() - 1;
                    url_value_ = is_url_value();
                }
                break;
            case State::in_string:
                keep(c);
                if (c == '\\') {
                    state_ = State::string_escape;
                } else if (c == '"') {
                    state_ = State::outside;
                } else if (url_value_ && text_.size() - string_start_ == 6 &&
                           lower(text_.substr(string_start_ + 1)) == "data:") {
                    state_ = State::header;
                    header_ = "data:";
                }
                break;
            case State::string_escape:
                keep(c);
                state_ = State::in_string;
                break;
            case State::header:
                // JSON may escape the slash of the media type ("video\/mp4").
                if (c == '\\') break;
                keep(c);
                if (c == '"') {  // no payload: the string stays as it is (and is refused later)
                    state_ = State::outside;
                    break;
                }
                header_.push_back(c);
                if (header_.size() > kMaxHeader)
                    throw HttpError(400, "the data: URL's header is longer than " + std::to_string(kMaxHeader) + " bytes");
                if (c == ',') start_payload();
                break;
            case State::payload_escape:
                if (c != '/') throw bad_base64();
                decode(&c, 1);
                state_ = State::payload;
                break;
            case State::payload:
                break;  // handled above
        }
    }
}

void DataUrlFilter::start_payload() {
    const std::string h = lower(header_);
    if (h.size() < 8 || h.compare(h.size() - 8, 8, ";base64,") != 0)
        throw HttpError(400, "a data: URL must be base64 (data:video/mp4;base64,...)");
    if (had_data_url_) throw HttpError(400, "more than one data: URL in the request");
    had_data_url_ = true;
    const size_t type_end = h.find_first_of(";,", 5);
    writer_ = begin_(extension_for(h.substr(5, type_end - 5)));
    ctx_ = EVP_ENCODE_CTX_new();
    VIDI_CHECK(ctx_, "cannot make a base64 decoder");
    EVP_DecodeInit(ctx_);
    text_.resize(string_start_ + 1);  // the header leaves the kept text
    state_ = State::payload;
}

void DataUrlFilter::decode(const char* data, size_t n) {
    // OpenSSL takes '-' for the end of the input and ignores the rest: refuse it (and the
    // URL-safe alphabet it belongs to) instead of storing half a video.
    if (std::find_if(data, data + n, [](char c) { return c == '-' || c == '_'; }) != data + n) throw bad_base64();
    unsigned char out[kDecodePiece + 96];
    for (size_t at = 0; at < n; at += kDecodePiece) {
        const int in_len = static_cast<int>(std::min(kDecodePiece, n - at));
        int out_len = 0;
        if (EVP_DecodeUpdate(ctx_, out, &out_len, reinterpret_cast<const unsigned char*>(data + at), in_len) < 0)
            throw bad_base64();
        if (out_len > 0) writer_->write(reinterpret_cast<const char*>(out), static_cast<size_t>(out_len));
    }
}

void DataUrlFilter::end_payload() {
    unsigned char out[96];
    int out_len = 0;
    if (EVP_DecodeFinal(ctx_, out, &out_len) < 0) throw bad_base64();
    if (out_len > 0) writer_->write(reinterpret_cast<const char*>(out), static_cast<size_t>(out_len));
    if (writer_->bytes() == 0) throw HttpError(400, "the data: URL holds no bytes");
    video_ = writer_->commit();
    writer_.reset();
    text_ += kDataUrlPlaceholder;
    keep('"');
}

}  // namespace vidi::server
