// Who may use the server: the Host header a request names (against DNS rebinding), the API
// key it carries, and which host directories `video_path` may name. Checked for every request
// before its body is read (server.cpp), so new endpoints are covered without doing anything.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "app/server/http_error.h"

namespace httplib {
struct Request;
}

namespace vidi::server {

struct AccessOptions {
    std::string api_key;                     // empty: no key needed
    std::vector<std::string> allowed_hosts;  // Host names accepted (port ignored); empty: any
    std::vector<std::string> media_roots;    // directories video_path may name; empty: none
};

// True for 127.0.0.0/8, ::1 and "localhost": addresses only this machine reaches.
bool is_loopback_address(const std::string& host);
// The names a browser uses for a loopback server: localhost, 127.0.0.1, ::1.
std::vector<std::string> loopback_host_names();

// The name in a Host header without its port, lower-cased ("[::1]:8099" -> "::1").
std::string host_name(const std::string& host_header);

// Whether a browser's Origin ("http://localhost:8099") names the site the Host header does:
// scheme default ports made explicit, then host and port compared. "null" is never the same.
bool same_origin(const std::string& origin, const std::string& host_header);

// Requests that need no key: GET/HEAD of /health and of the page's own files.
bool is_public_route(const std::string& method, const std::string& path);
// A file of the web page: "/" followed by [A-Za-z0-9_-]+ and .html, .js, .css or .svg. Checked
// by hand, not with std::regex, whose recursion per character can exhaust a thread's stack on
// a long path.
bool is_page_file(const std::string& path);

// nullopt when the request may go on; else the answer (403 foreign Host, 403 an Origin other
// than the Host (another site's page), 401 missing or wrong key). The key is compared in
// constant time.
std::optional<HttpError> check_access(const AccessOptions& access, const httplib::Request& req);
// Whether the request carries the right key (always true when no key is set).
bool has_valid_key(const AccessOptions& access, const httplib::Request& req);

}  // namespace vidi::server
