// A JSON body that may carry a video as a `data:` URL (POST /v1/chat/completions:
// {"type":"video_url","video_url":{"url":"data:video/mp4;base64,…"}}). The JSON text is kept
// (within its own limit), except the payload of the one string that is the value of a "url"
// key and starts with "data:": that is base64-decoded as it arrives, straight into the upload
// store (the same writer, limits and store as a multipart upload), and the string becomes
// kDataUrlPlaceholder in the kept text. So a 2 GB video never sits in memory, and a JSON
// document of any other shape is kept as it came.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "app/server/upload_store.h"

namespace vidi::server {

// What the data: URL string reads as in the kept JSON once its video is stored.
inline constexpr const char* kDataUrlPlaceholder = "vidi-upload:data-url";

class DataUrlFilter {
public:
    // begin(extension): a writer for the decoded video (UploadStore::begin); the extension
    // comes from the URL's media type (".mp4" for video/mp4, "" when unknown).
    using Begin = std::function<std::unique_ptr<UploadStore::Writer>(const std::string& extension)>;
    DataUrlFilter(int64_t max_text_bytes, Begin begin);
    ~DataUrlFilter();
    DataUrlFilter(const DataUrlFilter&) = delete;
    DataUrlFilter& operator=(const DataUrlFilter&) = delete;

    // The next piece of the body. Throws HttpError: 413 past the text limit (or the writer's
    // upload limit), 400 for a data: URL that is not base64, 507/503 from the store.
    void feed(const char* data, size_t n);
    // After the whole body: the kept JSON text.
    const std::string& text() const { return text_; }
    // The stored video, when the body held a data: URL (complete: its string was closed).
    std::shared_ptr<UploadStore::File> video() const { return video_; }

private:
    enum class State { outside, in_string, string_escape, header, payload, payload_escape };
    void keep(char c);
    // Whether the string that starts at text_[string_start_] is the value of a "url" key.
    bool is_url_value() const;
    void start_payload();
    void decode(const char* data, size_t n);
    void end_payload();

    const int64_t max_text_;
    Begin begin_;
    std::string text_;
    State state_ = State::outside;
    size_t string_start_ = 0;  // where the current string's opening quote is in text_
    bool url_value_ = false;   // the current string is a "url" key's value
    std::string header_;       // "data:video/mp4;base64," while it is read
    std::unique_ptr<UploadStore::Writer> writer_;
    EVP_ENCODE_CTX* ctx_ = nullptr;
    std::shared_ptr<UploadStore::File> video_;
    bool had_data_url_ = false;
};

}  // namespace vidi::server
