#include "app/server/access.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <httplib.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <utility>

#include "app/server/sha256.h"
#include "app/server/text.h"

namespace vidi::server {
namespace {

// Equal keys in time that does not depend on where they differ: both are hashed first, so
// the comparison runs over two strings of the same length.
bool same_key(const std::string& a, const std::string& b) {
    const std::string ha = sha256_bytes(a), hb = sha256_bytes(b);
    return CRYPTO_memcmp(ha.data(), hb.data(), ha.size()) == 0;
}

}  // namespace

// A numeric address is read as the resolver reads the one the server binds, so every
// spelling of a loopback address counts ("127.1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1").
bool is_loopback_address(const std::string& host) {
    std::string h = lower(host);
    if (h == "localhost") return true;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST;
    addrinfo* found = nullptr;
    if (h.empty() || getaddrinfo(h.c_str(), nullptr, &hints, &found) != 0) return false;
    bool loopback = true;
    for (const addrinfo* a = found; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            loopback &= (ntohl(reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr.s_addr) >> 24) == 127;
        } else if (a->ai_family == AF_INET6) {
            const in6_addr& a6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr;
            loopback &= IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
        } else {
            loopback = false;
        }
    }
    freeaddrinfo(found);
    return loopback;
}

std::vector<std::string> loopback_host_names() { return {"localhost", "127.0.0.1", "::1"}; }

namespace {

// A Host header or an origin's authority, lower-case, as {name, port} (port "" when absent):
// "[::1]:8099" -> {"::1", "8099"}, "localhost" -> {"localhost", ""}; a bare IPv6 address
// (several colons, no brackets) is all name.
std::pair<std::string, std::string> split_host(const std::string& host_port) {
    const std::string h = lower(host_port);
    if (!h.empty() && h[0] == '[') {  // [v6]:port
        const size_t close = h.find(']');
        if (close == std::string::npos) return {h, ""};
        const bool port = close + 1 < h.size() && h[close + 1] == ':';
        return {h.substr(1, close - 1), port ? h.substr(close + 2) : ""};
    }
    const size_t colon = h.find(':');
    if (colon == std::string::npos || h.find(':', colon + 1) != std::string::npos) return {h, ""};
    return {h.substr(0, colon), h.substr(colon + 1)};
}

}  // namespace

std::string host_name(const std::string& host_header) { return split_host(host_header).first; }

bool same_origin(const std::string& origin, const std::string& host_header) {
    const size_t scheme_end = origin.find("://");
    if (scheme_end == std::string::npos) return false;  // "null" (a sandboxed or file: page) and the like
    const std::string scheme = lower(origin.substr(0, scheme_end));
    const std::string default_port = scheme == "https" ? "443" : scheme == "http" ? "80" : "";
    if (default_port.empty()) return false;
    std::string rest = origin.substr(scheme_end + 3);
    if (const size_t slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
    // Both authorities with the port made explicit (the scheme's default when absent).
    auto explicit_port = [&](const std::string& h) {
        auto [name, port] = split_host(h);
        return std::pair{name, port.empty() ? default_port : port};
    };
    return explicit_port(rest) == explicit_port(host_header);
}

bool is_public_route(const std::string& method, const std::string& path) {
    if (method != "GET" && method != "HEAD") return false;
    return path == "/" || path == "/health" || is_page_file(path);
}

bool is_page_file(const std::string& path) {
    const size_t dot = path.rfind('.');
    if (path.size() < 2 || path[0] != '/' || dot == std::string::npos || dot < 2) return false;
    for (size_t i = 1; i < dot; ++i) {
        const char c = path[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) return false;
    }
    const std::string ext = path.substr(dot + 1);
    return ext == "html" || ext == "js" || ext == "css" || ext == "svg";
}

bool has_valid_key(const AccessOptions& access, const httplib::Request& req) {
    if (access.api_key.empty()) return true;
    const std::string auth = req.get_header_value("Authorization");
    static const std::string scheme = "bearer ";
    if (auth.size() <= scheme.size() || lower(auth.substr(0, scheme.size())) != scheme) return false;
    return same_key(auth.substr(scheme.size()), access.api_key);
}

std::optional<HttpError> check_access(const AccessOptions& access, const httplib::Request& req) {
    if (!access.allowed_hosts.empty()) {
        const std::string name = host_name(req.get_header_value("Host"));
        if (std::find(access.allowed_hosts.begin(), access.allowed_hosts.end(), name) == access.allowed_hosts.end())
            return HttpError(403, "this server does not answer for host '" + name + "' (--allowed-host)");
    }
    // A browser names the page that sent a request in Origin: another site's page may make the
    // browser send requests here (it cannot read the answers), so they are refused outright.
    // Another port is another site (a page of any other local service), so the port counts.
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && !same_origin(origin, req.get_header_value("Host")))
        return HttpError(403, "cross-origin request from '" + origin + "' refused");
    if (!is_public_route(req.method, req.path) && !has_valid_key(access, req))
        return HttpError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'");
    return std::nullopt;
}

}  // namespace vidi::server
