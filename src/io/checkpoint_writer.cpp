#include "io/checkpoint_writer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/json_file.h"
#include "io/safetensors.h"
#include "vidi/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::io {

namespace {

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

// bf16 bits of f (round to nearest even); values here are small and finite.
uint16_t to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7FFF + ((u >> 16) & 1);
    return static_cast<uint16_t>(u >> 16);
}

struct ShardPlan {
    std::vector<const ExpectedTensor*> tensors;
    uint64_t bytes = 0;
};

std::vector<ShardPlan> plan_shards(const std::vector<ExpectedTensor>& tensors, uint64_t shard_bytes) {
    std::vector<ShardPlan> shards(1);
    for (const ExpectedTensor& t : tensors) {
        uint64_t b = uint64_t(shape_numel(t.shape)) * 2;
        if (!shards.back().tensors.empty() && shards.back().bytes + b > shard_bytes) shards.emplace_back();
        shards.back().tensors.push_back(&t);
        shards.back().bytes += b;
    }
    return shards;
}

constexpr const char* kStaging = ".vidi-partial";  // StagedDir's directory inside DIR

// The staging directory opened and locked for this process; -1 when another run holds it.
int lock_staging(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(path, ": cannot open: ", std::strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    ::close(fd);
    return -1;
}

}  // namespace

std::string shard_name(size_t i, size_t n) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    return buf;
}

StagedDir::StagedDir(const std::string& dir) : dir_(dir), staging_((fs::path(dir) / kStaging).string()) {
    VIDI_CHECK(!dir.empty(), "no output directory given");
    std::error_code ec;
    if (fs::exists(dir_, ec)) {
        if (!fs::is_directory(dir_, ec)) fail(dir, ": already exists and is not a directory");
        for (const auto& entry : fs::directory_iterator(dir_))
            if (entry.path().filename() != kStaging) fail(dir, ": already exists and is not an empty directory");
    } else {
        fs::create_directories(dir_, ec);
        if (ec) fail(dir, ": cannot create: ", ec.message());
        created_ = true;
    }
    if (fs::exists(staging_, ec)) {  // an interrupted run's, unless one is still writing it
        const int old = lock_staging(staging_);
        if (old < 0) fail(dir, ": another run is writing it");
        fs::remove_all(staging_, ec);
        ::close(old);
        if (ec) fail(staging_, ": cannot clear what an interrupted run left: ", ec.message());
    }
    if (!fs::create_directory(staging_, ec) || ec) fail(dir, ": another run is writing it (", ec.message(), ")");
    lock_ = lock_staging(staging_);
    if (lock_ < 0) fail(dir, ": another run is writing it");
}

StagedDir::~StagedDir() {
    std::error_code ec;
    if (!committed_) {
        fs::remove_all(staging_, ec);
        if (created_) fs::remove(dir_, ec);  // only if empty
    }
    if (lock_ >= 0) ::close(lock_);
}

void StagedDir::commit() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(staging_)) {
        fs::rename(entry.path(), fs::path(dir_) / entry.path().filename(), ec);
        if (ec) fail("cannot move ", entry.path().string(), " into ", dir_, ": ", ec.message());
    }
    fs::remove(staging_, ec);
    committed_ = true;
}

void require_free_space(const std::string& dir, uint64_t bytes) {
    std::error_code ec;
    const fs::space_info room = fs::space(dir, ec);
    if (ec || room.available >= bytes) return;  // unknown: the writes say it
    char need[64];
    std::snprintf(need, sizeof need, "%.2f GB but %.2f GB are free", bytes / 1e9, room.available / 1e9);
    fail(dir, ": the output needs ", need);
}

void fill_random_bf16(const std::string& name, TensorKind kind, uint64_t seed, int64_t begin, int64_t count,
                      uint16_t* out, float norm_center) {
    const uint64_t key = splitmix64(seed ^ fnv1a(name));
    float std = 0.02f, mean = 0.0f;
    if (kind == TensorKind::bias) std = 0.01f;
    if (kind == TensorKind::norm_scale) mean = norm_center, std = 0.02f * norm_center;
    const float scale = std * std::sqrt(3.0f) / 65536.0f;  // Irwin-Hall(4) of 16-bit uniforms has variance 1/3
    for (int64_t i = 0; i < count; ++i) {
        uint64_t h = splitmix64(key + uint64_t(begin + i) * 0xD1B54A32D192ED03ull);
        float sum = float(h & 0xFFFF) + float((h >> 16) & 0xFFFF) + float((h >> 32) & 0xFFFF) + float(h >> 48);
        out[i] = to_bf16(mean + (sum - 2.0f * 65535.0f) * scale);
    }
}

RandomCheckpointSummary write_random_tensors(const ExpectedTensors& tensors, const RandomCheckpointOptions& opt) {
    VIDI_CHECK(opt.shard_bytes > 0, "make-checkpoint: shard size must be positive");
    const fs::path out(opt.out_dir);
    const std::vector<ShardPlan> shards = plan_shards(tensors, opt.shard_bytes);

    RandomCheckpointSummary summary;
    uint64_t total = 0;
    for (const auto& s : shards) total += s.bytes;
    require_free_space(opt.out_dir, total);
    constexpr int64_t kChunk = 1 << 20;  // elements per write: 2 MB of bf16
    std::vector<uint16_t> buf(kChunk);
    json weight_map = json::object();
    for (size_t s = 0; s < shards.size(); ++s) {
        const std::string file = shard_name(s, shards.size());
        SafetensorsWriter w((out / file).string());
        w.set_metadata("format", "pt");
        for (const ExpectedTensor* t : shards[s].tensors) w.declare(t->name, DType::bf16, t->shape);
        w.begin();
        for (const ExpectedTensor* t : shards[s].tensors) {
            const int64_t n = shape_numel(t->shape);
            for (int64_t i = 0; i < n; i += kChunk) {
                const int64_t m = std::min(kChunk, n - i);
                fill_random_bf16(t->name, t->kind, opt.seed, i, m, buf.data(), t->init_center);
                w.write(buf.data(), size_t(m) * 2);
                summary.bytes += uint64_t(m) * 2;
                if (opt.progress) opt.progress(summary.bytes, total);
            }
            weight_map[t->name] = file;
            ++summary.tensors;
        }
        w.finish();
    }
    summary.shards = int(shards.size());
    write_json_file((out / "model.safetensors.index.json").string(),
                    {{"metadata", {{"total_size", summary.bytes}}}, {"weight_map", weight_map}});
    return summary;
}

}  // namespace vidi::io
