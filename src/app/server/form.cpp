#include "app/server/form.h"

#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "app/server/data_url.h"
#include "app/server/guarded_http.h"
#include "app/server/http_error.h"
#include "app/server/multipart.h"

namespace fs = std::filesystem;

namespace vidi::server {
namespace {

// Keeps the extension of the client's file name (the demuxer probes content anyway, but
// a familiar extension helps the page's player and clip export pick a container).
std::string safe_extension(const std::string& filename) {
    std::string ext = fs::path(filename).extension().string();
    if (ext.size() > 8) return "";
    for (char c : ext.substr(ext.empty() ? 0 : 1))
        if (!std::isalnum(static_cast<unsigned char>(c))) return "";
    return ext;
}

bool starts_with_ci(const std::string& s, const std::string& prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
    return true;
}

std::string mib(int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

// Turns body bytes, as they arrive, into a Form: counts every byte, stops storing at the
// first error (kept for the answer) and drains at most limits.drain_bytes after it.
class FormReader {
public:
    FormReader(const std::string& content_type, const ServerLimits& limits, UploadStore& uploads, BodyKind kind)
        : limits_(limits), uploads_(uploads), multipart_(starts_with_ci(content_type, "multipart/form-data")),
          json_(starts_with_ci(content_type, "application/json")),
          body_limit_(kind == BodyKind::document ? limits.max_document_bytes()
                      : multipart_              ? limits.max_body_bytes()
                                                : limits.max_fields_bytes) {
        if (kind == BodyKind::document) {
            if (!json_) throw HttpError(400, "send the request as JSON (Content-Type: application/json)");
            document_.emplace(limits.max_fields_bytes, [this](const std::string& ext) {
                filename_ = "video" + ext;
                return uploads_.begin(ext);
            });
        }
        if (multipart_)
            parser_.emplace(
                multipart_boundary(content_type), static_cast<size_t>(limits.part_header_bytes),
                [this](const PartHeader& h) { begin_part(h); }, [this](const char* d, size_t n) { part_data(d, n); });
    }

    int64_t body_limit() const { return body_limit_; }

    // False once reading should stop (an error and the drain allowance used up).
    bool receive(const char* data, size_t n) {
        total_ += static_cast<int64_t>(n);
        if (!failure_) {
            try {
                if (total_ > body_limit_)
                    throw HttpError(413, "the request is larger than the server's limit of " + mib(body_limit_) +
                                             (multipart_ || document_ ? " (--max-upload-mb)" : " for fields"));
                consume(data, n);
            } catch (const HttpError& e) {
                fail(e);
            } catch (const std::exception& e) {
                fail(HttpError(500, "internal error", e.what()));
            }
        }
        return !failure_ || total_ - failed_at_ <= limits_.drain_bytes;
    }

    // After the body: the form, or the first error. `read_all`: the body was read to its end.
    Form finish(bool read_all) {
        if (failure_) {
            if (!read_all) failure_->closing();
            throw *failure_;
        }
        if (!read_all) throw HttpError(400, "the request body could not be read to its end").closing();
        if (document_) {
            form_.document = parse_client_json(document_->text(), limits_.max_json_depth);
            if (form_.document.is_discarded() || !form_.document.is_object())
                throw HttpError(400, "the body is not a JSON object");
            if (auto v = document_->video()) form_.video = Upload{v, filename_};
        } else if (multipart_) {
            parser_->finish();
            end_part();
        } else {
            parse_text_body();
        }
        return std::move(form_);
    }

private:
    void fail(const HttpError& e) {
        answer_decided();  // what follows is drained
        failure_ = e;
        failed_at_ = total_;
        writer_.reset();  // the partial upload goes at once
        document_.reset();
        form_.video.reset();
    }

    void consume(const char* data, size_t n) {
        if (document_) document_->feed(data, n);
        else if (multipart_) parser_->feed(data, n);
        else text_.append(data, n);
    }

    void begin_part(const PartHeader& h) {
        end_part();
        ++parts_;
        part_name_ = h.name;
        if (h.name != "video" && ++text_parts_ > limits_.max_fields)
            throw HttpError(413, "more than " + std::to_string(limits_.max_fields) + " fields in the request");
        if (h.name == "video") {
            if (form_.video || had_video_) throw HttpError(400, "more than one 'video' file in the request");
            had_video_ = true;
            writer_ = uploads_.begin(safe_extension(h.filename));
            filename_ = h.filename;
        } else if (h.has_filename) {
            throw HttpError(400, "unexpected file field '" + brief_text(h.name) + "' (send the video as 'video')");
        }
    }

    void part_data(const char* data, size_t n) {
        if (writer_) writer_->write(data, n);
        else add_text(data, n);
    }

    void add_text(const char* data, size_t n) {
        fields_bytes_ += static_cast<int64_t>(n);
        if (fields_bytes_ > limits_.max_fields_bytes)
            throw HttpError(413, "the text fields are larger than " + std::to_string(limits_.max_fields_bytes) +
                                     " bytes");
        if (static_cast<int64_t>(text_.size() + n) > limits_.max_field_bytes)
            throw HttpError(413, "field '" + brief_text(part_name_) + "' is longer than " +
                                     std::to_string(limits_.max_field_bytes) + " bytes");
        text_.append(data, n);
    }

    void end_part() {
        if (writer_) {
            form_.video = Upload{writer_->commit(), filename_};
            writer_.reset();
        } else if (parts_ > 0 && !part_name_.empty()) {
            form_.fields[part_name_] = text_;
        }
        text_.clear();
        part_name_.clear();
    }

    void set_field(const std::string& name, const std::string& value) {
        if (static_cast<int64_t>(value.size()) > limits_.max_field_bytes)
            throw HttpError(413, "field '" + brief_text(name) + "' is longer than " + std::to_string(limits_.max_field_bytes) +
                                     " bytes");
        if (form_.fields.size() >= static_cast<size_t>(limits_.max_fields))
            throw HttpError(413, "more than " + std::to_string(limits_.max_fields) + " fields in the request");
        form_.fields[name] = value;
    }

    void parse_text_body() {
        if (json_) {
            nlohmann::json j = parse_client_json(text_, limits_.max_json_depth);
            if (j.is_discarded() || !j.is_object()) throw HttpError(400, "the body is not a JSON object");
            for (auto& [k, v] : j.items()) {
                if (v.is_string()) set_field(k, v.get<std::string>());
                else if (v.is_number_integer()) set_field(k, v.dump());
                else throw HttpError(400, "JSON field '" + brief_text(k) + "' must be a string or an integer");
            }
        } else if (!text_.empty()) {
            httplib::Params params;
            httplib::detail::parse_query_text(text_, params);
            for (auto& [k, v] : params) set_field(k, v);
        }
    }

    const ServerLimits& limits_;
    UploadStore& uploads_;
    const bool multipart_, json_;
    const int64_t body_limit_;
    std::optional<MultipartParser> parser_;
    std::optional<DataUrlFilter> document_;
    int64_t total_ = 0, failed_at_ = 0, fields_bytes_ = 0;
    std::optional<HttpError> failure_;
    Form form_;
    int parts_ = 0, text_parts_ = 0;
    bool had_video_ = false;
    std::string part_name_, text_, filename_;
    std::unique_ptr<UploadStore::Writer> writer_;
};

// cpp-httplib parses a body itself when its Content-Type starts with "multipart/form-data"
// and then hands out part contents only, hiding the envelope from any count. To read the raw
// bytes the type is renamed on the request before reading (httplib's Request object is not
// const; the handlers only see it through a const reference).
bool read_raw_body(const httplib::Request& req, const httplib::ContentReader& reader,
                   const std::function<bool(const char*, size_t)>& receive) {
    auto& r = const_cast<httplib::Request&>(req);
    auto it = r.headers.find("Content-Type");
    if (it != r.headers.end() && r.is_multipart_form_data()) it->second = "application/x-vidi-raw; " + it->second;
    return reader(receive);
}

int64_t declared_length(const httplib::Request& req) {
    if (!req.has_header("Content-Length")) return -1;
    const std::string v = req.get_header_value("Content-Length");
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    return end == v.c_str() ? -1 : static_cast<int64_t>(std::min<unsigned long long>(n, INT64_MAX));
}

}  // namespace

OwnedFile::~OwnedFile() {
    std::error_code ec;
    fs::remove(path_, ec);
}

std::string Form::get(const std::string& name) const {
    auto it = fields.find(name);
    return it == fields.end() ? std::string() : it->second;
}

std::string unique_path(const std::string& dir, const std::string& stem, const std::string& extension) {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = std::random_device{}();
    return dir + "/" + stem + "-" + std::to_string(salt % 100000) + "-" + std::to_string(++counter) + extension;
}

nlohmann::json parse_client_json(const std::string& text, int max_depth) {
    // The depth by one linear pass over the brackets outside strings, then a plain parse: a
    // parser callback would do it too, but nlohmann 3.11 then rescans a container's members
    // after each nested object (100 000 "{}" in an array took 67 s to refuse).
    int depth = 0;
    bool in_string = false, escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                throw HttpError(400, "the JSON body nests arrays and objects deeper than " + std::to_string(max_depth) +
                                         " levels");
        } else if (c == ']' || c == '}') {
            --depth;
        } else if (c == '\0') {  // nlohmann's parser ends the text there: what follows would go unread
            throw HttpError(400, "the JSON body holds a NUL byte");
        }
    }
    return nlohmann::json::parse(text, nullptr, false);
}

Form read_form(const httplib::Request& req, const httplib::ContentReader& reader, const ServerLimits& limits,
               UploadStore& uploads, BodyKind kind) {
    std::optional<FormReader> form;
    try {
        form.emplace(req.get_header_value("Content-Type"), limits, uploads, kind);
    } catch (HttpError& e) {  // no usable boundary
        if (!drain_body(req, reader, limits)) e.closing();
        throw;
    }
    // A declared length past what could be drained is refused before reading anything.
    if (declared_length(req) > form->body_limit() + limits.drain_bytes)
        throw HttpError(413, "the request is larger than the server's limit of " + mib(form->body_limit()) +
                                 " (--max-upload-mb)")
            .closing();
    const bool read_all = read_raw_body(req, reader, [&](const char* d, size_t n) { return form->receive(d, n); });
    return form->finish(read_all);
}

bool drain_body(const httplib::Request& req, const httplib::ContentReader& reader, const ServerLimits& limits) {
    if (declared_length(req) > limits.drain_bytes) return false;
    int64_t total = 0;
    return read_raw_body(req, reader, [&](const char*, size_t n) {
        total += static_cast<int64_t>(n);
        return total <= limits.drain_bytes;
    });
}

Form parse_form_bytes(const std::string& content_type, const std::string& body, size_t piece,
                      const ServerLimits& limits, UploadStore& uploads, BodyKind kind) {
    FormReader form(content_type, limits, uploads, kind);
    piece = std::max<size_t>(piece, 1);
    bool more = true;
    for (size_t at = 0; at < body.size() && more; at += piece)
        more = form.receive(body.data() + at, std::min(piece, body.size() - at));
    return form.finish(more);
}

}  // namespace vidi::server
