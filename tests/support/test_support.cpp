#include "support/test_support.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace vidi::test {

// Resolved: the build names it "<checkout>/../shared", and a path with ".." is one a server
// refuses (no '.' or '..' components in a client's video_path).
std::string shared_dir() {
    const char* env = std::getenv("VIDI_SHARED_DIR");
    return fs::weakly_canonical(env ? env : VIDI_SHARED_DIR).string();
}
std::string golden_dir() { return shared_dir() + "/golden"; }
std::string golden_path(const std::string& name) { return golden_dir() + "/" + name; }
std::string tiny_model_dir() { return golden_path("tiny-a"); }
std::string vidi_binary() { return std::string(VIDI_BINARY_DIR) + "/src/vidi"; }
std::string vidi7b_data_dir() { return std::string(VIDI_SOURCE_DIR) + "/tests/data/vidi7b"; }
std::string tiny_vidi7b_dir() { return vidi7b_data_dir() + "/tiny-vidi7b"; }

void copy_tiny_model(const std::string& to) { copy_dir(tiny_model_dir(), to); }

void copy_dir(const std::string& from, const std::string& to) {
    fs::copy(from, to, fs::copy_options::recursive);
    for (auto& e : fs::recursive_directory_iterator(to))
        fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
    fs::permissions(to, fs::perms::owner_write, fs::perm_options::add);
}

void write_bf16(const std::string& checkpoint_dir, const std::string& tensor, uint16_t bits, int64_t count) {
    const auto index = nlohmann::json::parse(std::ifstream(checkpoint_dir + "/model.safetensors.index.json"));
    const std::string shard = checkpoint_dir + "/" + index.at("weight_map").at(tensor).get<std::string>();
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header_bytes = 0;
    f.read(reinterpret_cast<char*>(&header_bytes), 8);
    std::string header(header_bytes, '\0');
    f.read(header.data(), static_cast<std::streamsize>(header_bytes));
    const auto entry = nlohmann::json::parse(header).at(tensor);
    if (entry.at("dtype") != "BF16") throw std::runtime_error(tensor + " is not bf16");
    const uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    const uint64_t n = count < 0 ? (end - begin) / 2 : std::min<uint64_t>(uint64_t(count), (end - begin) / 2);
    f.seekp(static_cast<std::streamoff>(8 + header_bytes + begin));
    for (uint64_t i = 0; i < n; ++i) f.write(reinterpret_cast<const char*>(&bits), 2);
    if (!f.good()) throw std::runtime_error("cannot write " + shard);
}

TempDir::TempDir(const std::string& tag) {
    std::random_device rd;
    fs::path base = fs::path(VIDI_BINARY_DIR) / "test-tmp";
    fs::create_directories(base);
    path_ = (base / (tag + "-" + std::to_string(getpid()) + "-" + std::to_string(rd()))).string();
    fs::create_directories(path_);
}

TempDir::~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

namespace {
void check_same_shape(const Tensor& a, const Tensor& b) {
    if (a.numel() != b.numel())
        throw std::runtime_error("compared tensors differ in size: " + a.describe() + " vs " + b.describe());
}
}  // namespace

double rel_error(const Tensor& a, const Tensor& b) {
    check_same_shape(a, b);
    auto x = a.to_f32_vector(), y = b.to_f32_vector();
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        double d = static_cast<double>(x[i]) - y[i];
        num += d * d;
        den += static_cast<double>(y[i]) * y[i];
    }
    if (std::isnan(num)) return INFINITY;
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    check_same_shape(a, b);
    auto x = a.to_f32_vector(), y = b.to_f32_vector();
    double m = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        double d = std::fabs(static_cast<double>(x[i]) - y[i]);
        if (std::isnan(d)) return INFINITY;
        m = std::max(m, d);
    }
    return m;
}

double mean_abs_diff(const Tensor& a, const Tensor& b) {
    check_same_shape(a, b);
    auto x = a.to_f32_vector(), y = b.to_f32_vector();
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += std::fabs(static_cast<double>(x[i]) - y[i]);
    return x.empty() ? 0 : s / x.size();
}

int run_command(const std::string& cmd, std::string* out) {
    std::string full = cmd + " 2>&1";
    FILE* p = popen(full.c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf{};
    std::string text;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), n);
    int status = pclose(p);
    if (out) *out = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double top1_agreement(const Tensor& a, const Tensor& b) {
    const int64_t T = a.dim(0), V = a.dim(1);
    int64_t same = 0;
    for (int64_t t = 0; t < T; ++t) {
        const float *x = a.data<float>() + t * V, *y = b.data<float>() + t * V;
        same += std::max_element(x, x + V) - x == std::max_element(y, y + V) - y;
    }
    return static_cast<double>(same) / static_cast<double>(T);
}

std::vector<int32_t> ids_of(const Tensor& t) {
    std::vector<int32_t> out;
    for (int64_t i = 0; i < t.numel(); ++i) out.push_back(static_cast<int32_t>(t.data<int64_t>()[i]));
    return out;
}

}  // namespace vidi::test
