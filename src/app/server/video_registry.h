// Videos registered through POST /v1/videos: an id per registration, the file it came
// from (an upload the server keeps, or a path on the host) and its content hash.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "app/server/form.h"

namespace vidi::server {

struct VideoSource {
    std::string path;                   // what the engine and the player read
    std::string name;                   // the client's file name or the host path
    std::string sha256;
    std::shared_ptr<OwnedFile> upload;  // set when the server owns the file
};

struct RegisteredVideo {
    std::string id;
    VideoSource source;
    double duration = 0;
};

class VideoRegistry {
public:
    std::string add(VideoSource source, double duration);  // returns the new id
    std::optional<RegisteredVideo> find(const std::string& id) const;
    std::optional<RegisteredVideo> remove(const std::string& id);
    bool has_content(const std::string& sha256) const;  // another id with the same bytes
    std::vector<RegisteredVideo> list() const;

private:
    mutable std::mutex mu_;
    std::map<std::string, RegisteredVideo> videos_;
};

}  // namespace vidi::server
