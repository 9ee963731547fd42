// The fields of a request: multipart/form-data (the `video` file part is streamed to
// disk, never held in memory), application/x-www-form-urlencoded, or a JSON object.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace httplib {
struct Request;
class ContentReader;
}  // namespace httplib

namespace vidi::server {

// A file the server owns: removed when the last owner lets go of it.
class OwnedFile {
public:
    explicit OwnedFile(std::string path) : path_(std::move(path)) {}
    ~OwnedFile();
    OwnedFile(const OwnedFile&) = delete;
    OwnedFile& operator=(const OwnedFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

struct Upload {
    std::shared_ptr<OwnedFile> file;
    std::string filename;  // as the client named it (may be empty)
    int64_t bytes = 0;
};

struct FormLimits {
    int64_t max_upload_bytes = 0;      // the `video` part; larger answers 413
    int64_t max_field_bytes = 1 << 16; // each text field; larger answers 400
    // Room for multipart boundaries and text fields on top of the upload; the HTTP
    // layer's payload limit must be max_upload_bytes + this.
    static constexpr int64_t kEnvelopeBytes = 1 << 20;
};

struct Form {
    std::map<std::string, std::string> fields;
    std::optional<Upload> video;

    // The field's value, or "" when absent.
    std::string get(const std::string& name) const;
    bool has(const std::string& name) const { return fields.count(name) > 0; }
};

// Reads the whole body. Uploads go to files under `upload_dir`. Throws HttpError (400 bad
// body, 413 too large).
Form read_form(const httplib::Request& req, const httplib::ContentReader& reader, const FormLimits& limits,
               const std::string& upload_dir);

// A fresh unique path under `dir` ending in `extension` (with its dot, or empty).
std::string unique_path(const std::string& dir, const std::string& stem, const std::string& extension);

}  // namespace vidi::server
