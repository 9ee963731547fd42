#include "app/server/http_error.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <new>
#include <nlohmann/json.hpp>

#include "app/server/job_queue.h"
#include "vidi/error.h"

namespace vidi::server {

// The engine reports host and device allocation failures as vidi::Error; those are the
// server's limits, not the client's input.
bool mentions_out_of_memory(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    // The engine says "out of GPU memory" / "out of host memory" (backend/cuda/device_pool.cpp,
    // core/tensor.cpp).
    for (const char* phrase : {"out of memory", "out of gpu memory", "out of host memory", "cannot allocate"})
        if (text.find(phrase) != std::string::npos) return true;
    return false;
}

HttpError video_unavailable(const std::string& why) { return HttpError(400, kVideoUnavailable, why); }

ErrorStyle error_style(const std::string& path) {
    const bool openai =
        path == "/v1/chat/completions" || path == "/v1/models" || path.rfind("/v1/models/", 0) == 0;
    return openai ? ErrorStyle::openai : ErrorStyle::vidi;
}

std::string brief_json(const nlohmann::json& value) { return brief_text(json_text(value)); }

std::string brief_text(const std::string& text) {
    if (text.size() <= 80) return text;
    size_t n = 77;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;  // not inside a character
    return text.substr(0, n) + "...";
}

std::string error_body(int status, const std::string& message, ErrorStyle style) {
    // A message may quote what a client sent (a field name, a path).
    if (style == ErrorStyle::vidi) return json_text(nlohmann::json{{"error", message}});
    const char* type = status == 401   ? "authentication_error"
                       : status == 403 ? "permission_error"
                       : status < 500  ? "invalid_request_error"
                                       : "server_error";
    const nlohmann::json code = status == 401                                             ? nlohmann::json("invalid_api_key")
                                : status == 404 && message.find("model") != std::string::npos ? nlohmann::json("model_not_found")
                                                                                          : nlohmann::json(nullptr);
    return json_text(nlohmann::json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", code}}}});
}

std::string printable(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c != 0x7F) {
            out += ch;
            continue;
        }
        char hex[5];
        std::snprintf(hex, sizeof hex, "\\x%02X", c);
        out += hex;
    }
    return out;
}

void send_error(httplib::Response& res, int status, const std::string& message, ErrorStyle style) {
    res.status = status;
    res.set_content(error_body(status, message, style), "application/json");
}

std::pair<int, std::string> current_exception_status() {
    try {
        throw;
    } catch (const HttpError& e) {
        if (!e.log_detail().empty())
            std::fprintf(stderr, "vidi serve: %s: %s\n", printable(e.what()).c_str(), printable(e.log_detail()).c_str());
        return {e.status(), e.what()};
    } catch (const JobCancelled& e) {
        return {503, e.what()};
    } catch (const std::bad_alloc&) {
        return {503, "out of memory"};
    } catch (const vidi::Error& e) {
        return {mentions_out_of_memory(e.what()) ? 503 : 400, e.what()};
    } catch (const std::exception& e) {
        return {500, std::string("internal error: ") + e.what()};
    } catch (...) {
        return {500, "internal error"};
    }
}

void send_current_exception(httplib::Response& res, ErrorStyle style) {
    bool closing = false;
    try {
        throw;
    } catch (const HttpError& e) {
        closing = e.close_connection();
    } catch (...) {
    }
    const auto [status, message] = current_exception_status();
    send_error(res, status, message, style);
    if (closing) close_after_response(res);
}

void close_after_response(httplib::Response& res) {
    // cpp-httplib 0.11 keeps a connection open whatever the handler says; a response with no
    // length whose provider then fails is the one it ends by closing the socket.
    if (res.get_header_value("Connection") == "close") return;  // done already
    auto body = std::make_shared<std::string>(std::move(res.body));
    res.body.clear();
    const std::string type = res.get_header_value("Content-Type");
    res.headers.erase("Content-Type");  // set again below (headers is a multimap)
    res.set_header("Connection", "close");
    res.set_content_provider(type.empty() ? "application/json" : type, [body](size_t offset, httplib::DataSink& sink) {
        if (offset < body->size()) sink.write(body->data() + offset, body->size() - offset);
        return false;
    });
}

std::string default_error_message(int status) {
    switch (status) {
        case 400: return "bad request";
        case 404: return "not found";
        case 405: return "method not allowed";
        case 413: return "upload too large";
        case 414: return "URI too long";
        case 415: return "unsupported media type";
        case 416: return "range not satisfiable";
        case 501: return "not implemented";
        case 507: return "insufficient storage";
        case 503: return "service unavailable";
        default: return "HTTP error " + std::to_string(status);
    }
}

}  // namespace vidi::server
