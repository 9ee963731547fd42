// Every limit the server holds clients to, in one place. docs/security.md lists each one
// with its `vidi serve` flag; new endpoints inherit them through the request reader (form.h)
// and the access guard (access.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "app/server/request_framing.h"

namespace vidi::server {

struct ServerLimits {
    int64_t max_upload_bytes = 2048LL << 20;    // one uploaded video (--max-upload-mb)
    int64_t upload_store_bytes = 8192LL << 20;  // every upload kept on disk (--upload-store-mb), LRU
    int max_uploads = 4;                        // uploads being received at once (--max-uploads)
    int max_fields = 64;                        // text fields in one request
    int64_t max_field_bytes = 64 << 10;         // one text field
    int64_t max_fields_bytes = 1 << 20;         // every text field together; a JSON/urlencoded body
    int64_t part_header_bytes = 8 << 10;        // the header block of one multipart part
    // Arrays and objects inside one another in a JSON body. nlohmann::json copies, compares
    // and prints by recursion: 100 000 levels (half a megabyte of "{\"a\":") overflowed a
    // worker's stack and took the server down. The OpenAI API needs 5.
    int max_json_depth = 64;
    // A refused body is still read (and dropped) this far, so that an ordinary client that is
    // still sending sees the answer; past it the connection is closed.
    int64_t drain_bytes = 64LL << 20;
    size_t max_videos = 256;                    // registered videos (POST /v1/videos)
    size_t hash_queue = 16;                     // host files waiting to be hashed; more get 503
    int max_clips = 4;                          // clips exported or being downloaded at once; more get 503
    int http_threads = 32;                      // connections served at once
    int queued_connections = 64;                // accepted and waiting for a thread; then the kernel's backlog
    // Connections served at once from one client address (--max-connections-per-address;
    // 0: no bound): 503 past it. Loopback clients are not counted (a reverse proxy, local
    // pipelines) unless count_loopback_connections (tests).
    int connections_per_address = 16;
    bool count_loopback_connections = false;
    FramingLimits framing;                      // request line, header lines and their count, chunk-size lines
    int head_timeout_ms = 20000;                // a request's line and headers, once the server reads them: 408
    // A connection's requests (heads and bodies) must come at least this fast, in bytes a
    // second, counting only the server's time waiting for their bytes, after a first
    // request_rate_grace_ms a connection (--min-request-rate-kib; 0: no floor): 408. A client
    // trickling an upload held a connection thread to each read's 5 s timeout only.
    int64_t min_request_rate = 16 << 10;
    int request_rate_grace_ms = 20000;

    // The most a request body may hold: the upload, the fields and the multipart envelope.
    int64_t max_body_bytes() const {
        return max_upload_bytes + max_fields_bytes + (max_fields + 2) * (part_header_bytes + 256);
    }
    // The most a JSON document (the OpenAI API) may hold: its text, plus one upload as a base64
    // data: URL (4 characters for every 3 bytes) and its header.
    int64_t max_document_bytes() const { return max_fields_bytes + (max_upload_bytes + 2) / 3 * 4 + 1024; }
};

}  // namespace vidi::server
