#include "app/server/http_error.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <new>
#include <nlohmann/json.hpp>

#include "app/server/job_queue.h"
#include "vidi/error.h"

namespace vidi::server {
namespace {

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

}  // namespace

void send_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
}

void send_current_exception(httplib::Response& res) {
    try {
        throw;
    } catch (const HttpError& e) {
        send_error(res, e.status(), e.what());
    } catch (const JobCancelled& e) {
        send_error(res, 503, e.what());
    } catch (const std::bad_alloc&) {
        send_error(res, 503, "out of memory");
    } catch (const vidi::Error& e) {
        send_error(res, mentions_out_of_memory(e.what()) ? 503 : 400, e.what());
    } catch (const std::exception& e) {
        send_error(res, 500, std::string("internal error: ") + e.what());
    } catch (...) {
        send_error(res, 500, "internal error");
    }
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
        case 503: return "service unavailable";
        default: return "HTTP error " + std::to_string(status);
    }
}

}  // namespace vidi::server
