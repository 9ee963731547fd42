#include "app/server/form.h"

#include <httplib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "app/server/http_error.h"

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

// Streams one multipart file part into a file; counts bytes and stops writing (but keeps
// draining the body) once the limit is passed, so the client still gets its 413.
class PartWriter {
public:
    PartWriter(const std::string& path, int64_t limit) : limit_(limit), file_(std::fopen(path.c_str(), "wb")) {
        if (!file_) throw HttpError(500, "cannot create upload file " + path);
    }
    ~PartWriter() { close(); }
    bool write(const char* data, size_t n) {
        bytes_ += static_cast<int64_t>(n);
        if (bytes_ > limit_) {
            too_large_ = true;
            return true;
        }
        if (std::fwrite(data, 1, n, file_) != n) write_failed_ = true;
        return !write_failed_;
    }
    void close() {
        if (file_ && std::fclose(file_) != 0) write_failed_ = true;
        file_ = nullptr;
    }
    int64_t bytes() const { return bytes_; }
    bool too_large() const { return too_large_; }
    bool write_failed() const { return write_failed_; }

private:
    int64_t limit_;
    FILE* file_;
    int64_t bytes_ = 0;
    bool too_large_ = false;
    bool write_failed_ = false;
};

void set_field(Form& form, const std::string& name, const std::string& value, const FormLimits& limits) {
    if (static_cast<int64_t>(value.size()) > limits.max_field_bytes)
        throw HttpError(400, "field '" + name + "' is longer than " + std::to_string(limits.max_field_bytes) + " bytes");
    form.fields[name] = value;
}

void read_multipart(const httplib::ContentReader& reader, const FormLimits& limits, const std::string& upload_dir,
                    Form& form) {
    std::string part_name, text;
    std::unique_ptr<PartWriter> writer;
    bool text_too_long = false;
    auto finish_part = [&] {
        if (writer) {
            writer->close();
            if (writer->too_large())
                throw HttpError(413, "the uploaded video is larger than the server's limit of " +
                                         std::to_string(limits.max_upload_bytes >> 20) + " MiB (--max-upload-mb)");
            if (writer->write_failed()) throw HttpError(500, "could not store the upload (disk full?)");
            form.video->bytes = writer->bytes();
            writer.reset();
        } else if (!part_name.empty()) {
            if (text_too_long) set_field(form, part_name, std::string(limits.max_field_bytes + 1, ' '), limits);
            set_field(form, part_name, text, limits);
        }
        part_name.clear();
        text.clear();
        text_too_long = false;
    };
    std::exception_ptr failure;
    bool ok = reader(
        [&](const httplib::MultipartFormData& header) {
            try {
                finish_part();
                part_name = header.name;
                if (part_name == "video") {
                    if (form.video) throw HttpError(400, "more than one 'video' file in the request");
                    auto path = unique_path(upload_dir, "upload", safe_extension(header.filename));
                    form.video = Upload{std::make_shared<OwnedFile>(path), header.filename, 0};
                    writer = std::make_unique<PartWriter>(path, limits.max_upload_bytes);
                } else if (!header.filename.empty()) {
                    throw HttpError(400, "unexpected file field '" + part_name + "' (send the video as 'video')");
                }
            } catch (...) {
                failure = std::current_exception();
                return false;
            }
            return true;
        },
        [&](const char* data, size_t n) {
            if (writer) return writer->write(data, n);
            if (text.size() + n > static_cast<size_t>(limits.max_field_bytes)) {
                text_too_long = true;
                return true;
            }
            text.append(data, n);
            return true;
        });
    if (failure) std::rethrow_exception(failure);
    finish_part();
    if (!ok) throw HttpError(400, "malformed multipart body");
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

Form read_form(const httplib::Request& req, const httplib::ContentReader& reader, const FormLimits& limits,
               const std::string& upload_dir) {
    Form form;
    // httplib drains a body over its payload limit and the reader then fails: say why.
    const std::string length = req.get_header_value("Content-Length");
    if (!length.empty() && std::strtoull(length.c_str(), nullptr, 10) >
                               static_cast<uint64_t>(limits.max_upload_bytes + FormLimits::kEnvelopeBytes)) {
        reader([](const char*, size_t) { return true; });
        throw HttpError(413, "the request is larger than the server's upload limit of " +
                                 std::to_string(limits.max_upload_bytes >> 20) + " MiB (--max-upload-mb)");
    }
    if (req.is_multipart_form_data()) {
        read_multipart(reader, limits, upload_dir, form);
        return form;
    }
    std::string body;
    bool too_long = false;
    reader([&](const char* data, size_t n) {
        if (body.size() + n > static_cast<size_t>(limits.max_field_bytes) * 4) too_long = true;
        else body.append(data, n);
        return true;
    });
    if (too_long) throw HttpError(413, "request body too large (upload videos as multipart/form-data)");
    const std::string type = req.get_header_value("Content-Type");
    if (type.rfind("application/json", 0) == 0) {
        nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) throw HttpError(400, "the body is not a JSON object");
        for (auto& [k, v] : j.items()) {
            if (v.is_string()) set_field(form, k, v.get<std::string>(), limits);
            else if (v.is_number_integer()) set_field(form, k, v.dump(), limits);
            else throw HttpError(400, "JSON field '" + k + "' must be a string or an integer");
        }
    } else if (!body.empty()) {
        httplib::Params params;
        httplib::detail::parse_query_text(body, params);
        for (auto& [k, v] : params) set_field(form, k, v, limits);
    }
    return form;
}

}  // namespace vidi::server
