// The fields of a request: multipart/form-data (the `video` part streams into the upload
// store, never into memory), application/x-www-form-urlencoded, or a JSON object. Every byte
// of the body is counted as it arrives, whatever its transfer encoding (chunked included),
// against ServerLimits: the body, the upload, the number and size of the text fields.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "app/server/limits.h"
#include "app/server/upload_store.h"

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
    std::shared_ptr<UploadStore::File> file;
    std::string filename;  // as the client named it (may be empty)
};

struct Form {
    std::map<std::string, std::string> fields;
    std::optional<Upload> video;
    nlohmann::json document;  // BodyKind::document: the whole JSON object

    // The field's value, or "" when absent.
    std::string get(const std::string& name) const;
    bool has(const std::string& name) const { return fields.count(name) > 0; }
};

enum class BodyKind {
    fields,    // multipart, urlencoded or a flat JSON object: text fields and a `video` file
    document,  // a JSON document of any shape (the OpenAI API), kept whole; a "url" string that
               // is a base64 data: URL streams into the upload store as `video` (data_url.h)
};

// Reads the whole body. Throws HttpError: 400 malformed, 413 over a limit, 503 too many
// uploads at once, 507 upload store full. When the body was refused part-way, the error is
// marked to close the connection (what was not read must not be taken for a next request).
Form read_form(const httplib::Request& req, const httplib::ContentReader& reader, const ServerLimits& limits,
               UploadStore& uploads, BodyKind kind = BodyKind::fields);

// Reads and drops a body the server refused before looking at it (a wrong key, say), up to
// limits.drain_bytes; false when it was longer and the connection must be closed.
// A client's JSON text: discarded (is_discarded()) when it is not JSON; a 400 when arrays and
// objects nest deeper than `max_depth`, found while parsing, before anything recurses over it.
nlohmann::json parse_client_json(const std::string& text, int max_depth);

bool drain_body(const httplib::Request& req, const httplib::ContentReader& reader, const ServerLimits& limits);

// A fresh unique path under `dir` ending in `extension` (with its dot, or empty).
std::string unique_path(const std::string& dir, const std::string& stem, const std::string& extension);

// The fields parser alone, for the fuzzer and tests: feeds `body` (of `content_type`) in
// pieces of `piece` bytes through the same code as read_form.
Form parse_form_bytes(const std::string& content_type, const std::string& body, size_t piece,
                      const ServerLimits& limits, UploadStore& uploads, BodyKind kind = BodyKind::fields);

}  // namespace vidi::server
