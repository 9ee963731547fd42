#include "app/server/video_registry.h"

#include <cstdio>
#include <random>

#include "app/server/http_error.h"

namespace vidi::server {
namespace {
std::string random_id() {
    static std::mutex mu;
    static std::mt19937_64 rng{std::random_device{}()};
    std::lock_guard lock(mu);
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
    return buf;
}
}  // namespace

std::string VideoRegistry::add(VideoSource source, double duration) {
    std::lock_guard lock(mu_);
    if (videos_.size() >= max_videos_)
        throw HttpError(507, std::to_string(max_videos_) + " videos are registered already; delete some first");
    std::string id;
    do id = random_id();
    while (videos_.count(id));
    videos_[id] = RegisteredVideo{id, std::move(source), duration};
    return id;
}

std::optional<RegisteredVideo> VideoRegistry::find(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = videos_.find(id);
    if (it == videos_.end()) return std::nullopt;
    return it->second;
}

std::optional<RegisteredVideo> VideoRegistry::remove(const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = videos_.find(id);
    if (it == videos_.end()) return std::nullopt;
    RegisteredVideo v = std::move(it->second);
    videos_.erase(it);
    return v;
}

std::vector<std::string> VideoRegistry::remove_upload(const UploadStore::File& upload) {
    std::lock_guard lock(mu_);
    std::vector<std::string> ids;
    for (auto it = videos_.begin(); it != videos_.end();) {
        if (it->second.source.file->upload().get() == &upload) {
            ids.push_back(it->first);
            it = videos_.erase(it);
        } else {
            ++it;
        }
    }
    return ids;
}

size_t VideoRegistry::size() const {
    std::lock_guard lock(mu_);
    return videos_.size();
}

bool VideoRegistry::has_content(const std::string& sha256) const {
    std::lock_guard lock(mu_);
    for (auto& [id, v] : videos_)
        if (v.source.sha256 == sha256) return true;
    return false;
}

std::vector<RegisteredVideo> VideoRegistry::list() const {
    std::lock_guard lock(mu_);
    std::vector<RegisteredVideo> out;
    for (auto& [id, v] : videos_) out.push_back(v);
    return out;
}

}  // namespace vidi::server
