// Videos registered through POST /v1/videos: an id per registration, the file it came from
// (held open: an upload in the server's store or a host file under a media root) and its
// content hash. Bounded: past max_videos a registration is refused.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "app/server/video_file.h"

namespace vidi::server {

struct VideoSource {
    std::shared_ptr<VideoFile> file;  // what the engine and the player read
    std::string name;                 // the client's file name or path, bytes not UTF-8 as U+FFFD
    std::string sha256;
};

struct RegisteredVideo {
    std::string id;
    VideoSource source;
    double duration = 0;
};

class VideoRegistry {
public:
    explicit VideoRegistry(size_t max_videos) : max_videos_(max_videos) {}
    // Returns the new id; throws HttpError(507) when max_videos are registered.
    std::string add(VideoSource source, double duration);
    std::optional<RegisteredVideo> find(const std::string& id) const;
    std::optional<RegisteredVideo> remove(const std::string& id);
    // Drops every registration of an upload the store evicted; returns their ids.
    std::vector<std::string> remove_upload(const UploadStore::File& upload);
    bool has_content(const std::string& sha256) const;  // another id with the same bytes
    std::vector<RegisteredVideo> list() const;
    size_t size() const;

private:
    const size_t max_videos_;
    mutable std::mutex mu_;
    std::map<std::string, RegisteredVideo> videos_;
};

}  // namespace vidi::server
