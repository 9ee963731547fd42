#include "io/safetensors.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/files.h"
#include "io/json_file.h"
#include "io/mapped_files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace vidi::io {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit is 100 MB

// Whether `p` exists; one that cannot be looked at (a symlink loop, no permission) is an
// error naming it rather than std::filesystem's exception.
bool exists_checked(const fs::path& p) {
    std::error_code ec;
    const bool yes = fs::exists(p, ec);
    if (ec) fail(p.string(), ": ", ec.message());
    return yes;
}
}  // namespace

DType parse_dtype(const std::string& s) {
    if (s == "BF16") return DType::bf16;
    if (s == "F16") return DType::f16;
    if (s == "F32") return DType::f32;
    if (s == "I64") return DType::i64;
    if (s == "I32") return DType::i32;
    if (s == "U8") return DType::u8;
    if (s == "I8") return DType::i8;
    fail("unsupported safetensors dtype '", s, "'");
}

const char* safetensors_dtype_name(DType dtype) {
    switch (dtype) {
        case DType::bf16: return "BF16";
        case DType::f16: return "F16";
        case DType::f32: return "F32";
        case DType::i64: return "I64";
        case DType::i32: return "I32";
        case DType::u8: return "U8";
        case DType::i8: return "I8";
    }
    return "?";
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->self_ = f;
    f->path_ = path;
    void* m;
    {
        const RegularFile file(path);
        f->size_ = static_cast<size_t>(file.size());
        if (f->size_ < 8)
            fail(path, ": truncated safetensors file (", f->size_, " bytes, less than the 8-byte header length)");
        m = mmap(nullptr, f->size_, PROT_READ, MAP_SHARED, file.fd(), 0);
        if (m == MAP_FAILED) fail(path, ": mmap failed: ", std::strerror(errno));
    }
    f->map_ = m;
    note_mapping(m, f->size_, path);

    const char* base = static_cast<const char*>(m);
    uint64_t header_len;
    std::memcpy(&header_len, base, 8);
    if (header_len > kMaxHeaderBytes) fail(path, ": corrupt safetensors header length ", header_len);
    if (8 + header_len > f->size_)
        fail(path, ": truncated safetensors file (header of ", header_len, " bytes but file has ", f->size_,
             " bytes)");
    json header;
    try {
        header = json::parse(base + 8, base + 8 + header_len);
    } catch (const json::exception& e) {
        fail(path, ": corrupt safetensors header (not valid JSON: ", e.what(), ")");
    }
    if (!header.is_object()) fail(path, ": corrupt safetensors header (not a JSON object)");
    f->data_ = base + 8 + header_len;
    size_t data_size = f->size_ - 8 - header_len;

    std::vector<const TensorInfo*> by_offset;
    for (auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) fail(path, ": __metadata__ is not an object");
            for (auto& [k, v] : entry.items())
                if (v.is_string()) f->metadata_[k] = v.get<std::string>();
            continue;
        }
        if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
            !entry.contains("data_offsets"))
            fail(path, ": tensor '", name, "' has a malformed header entry");
        TensorInfo ti;
        ti.name = name;
        try {
            ti.dtype = parse_dtype(entry["dtype"].get<std::string>());
            // Whole numbers only: nlohmann would read 96.7 as 96 and a lone 96 as [96].
            if (!entry["shape"].is_array()) fail("shape is not a list");
            for (auto& d : entry["shape"]) {
                if (!d.is_number_integer()) fail("a dimension that is not a whole number (", d.dump(), ")");
                int64_t v = d.get<int64_t>();
                if (v < 0) fail("negative dimension");
                ti.shape.push_back(v);
            }
            auto& off = entry["data_offsets"];
            if (!off.is_array() || off.size() != 2) fail("data_offsets is not a pair");
            if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
                fail("data_offsets are not whole numbers of bytes");
            uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
            if (b > e) fail("data_offsets begin ", b, " > end ", e);
            ti.offset = b;
            ti.nbytes = e - b;
        } catch (const Error& err) {
            fail(path, ": tensor '", name, "': ", err.what());
        } catch (const json::exception& err) {
            fail(path, ": tensor '", name, "': malformed header entry (", err.what(), ")");
        }
        if (ti.offset + ti.nbytes > data_size)
            fail(path, ": truncated file: tensor '", name, "' needs data up to byte ", ti.offset + ti.nbytes,
                 " but the data section has only ", data_size, " bytes");
        size_t expect = 0;
        try {
            if (__builtin_mul_overflow(static_cast<size_t>(shape_numel(ti.shape)), dtype_size(ti.dtype), &expect))
                fail("more than 2^64 bytes");
        } catch (const Error& err) {
            fail(path, ": tensor '", name, "': ", err.what());
        }
        if (expect != ti.nbytes)
            fail(path, ": tensor '", name, "': ", ti.nbytes, " bytes stored but shape ", shape_str(ti.shape),
                 " of ", dtype_name(ti.dtype), " needs ", expect);
        f->tensors_.emplace(name, std::move(ti));
    }
    for (auto& [name, ti] : f->tensors_) by_offset.push_back(&ti);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    // Against the furthest end so far, not only the previous tensor's: an empty tensor between
    // two that overlap (or one inside a long one) must not hide the overlap.
    const TensorInfo* reach = nullptr;
    for (const TensorInfo* q : by_offset) {
        if (!q->nbytes) continue;  // no bytes, nothing to overlap
        if (reach && reach->offset + reach->nbytes > q->offset)
            fail(path, ": tensors '", reach->name, "' and '", q->name, "' overlap in the data section");
        if (!reach || q->offset + q->nbytes > reach->offset + reach->nbytes) reach = q;
    }
    return f;
}

SafetensorsFile::~SafetensorsFile() {
    if (map_) {
        forget_mapping(map_);
        munmap(map_, size_);
    }
}

Tensor SafetensorsFile::get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail(path_, ": no tensor named '", name, "'");
    const TensorInfo& ti = it->second;
    return Tensor::wrap(const_cast<char*>(data_ + ti.offset), ti.shape, ti.dtype, Device::cpu,
                        std::static_pointer_cast<void>(self_.lock()));
}

TensorStore TensorStore::open(const std::string& path) {
    TensorStore store;
    auto add_file = [&](const std::string& file) {
        auto f = SafetensorsFile::open(file);
        for (auto& [name, ti] : f->tensors()) {
            if (store.where_.count(name))
                fail(file, ": tensor '", name, "' also appears in ", store.files_[store.where_[name]]->path());
            store.where_[name] = store.files_.size();
        }
        store.files_.push_back(std::move(f));
    };
    if (!exists_checked(path)) fail(path, ": no such file or directory");
    std::error_code ec;
    if (!fs::is_directory(path, ec)) {
        add_file(path);
        return store;
    }
    fs::path dir(path), index = dir / "model.safetensors.index.json";
    if (exists_checked(index)) {
        json j = read_json_file(index.string());
        if (!j.contains("weight_map") || !j["weight_map"].is_object())
            fail(index.string(), ": no \"weight_map\" object");
        std::map<std::string, std::vector<std::string>> by_shard;
        for (auto& [name, shard] : j["weight_map"].items()) {
            if (!shard.is_string()) fail(index.string(), ": weight_map entry '", name, "' is not a file name");
            by_shard[shard.get<std::string>()].push_back(name);
        }
        for (auto& [shard, names] : by_shard) {
            fs::path file = dir / shard;
            if (shard.find('/') != std::string::npos || shard == "." || shard == "..")
                fail(index.string(), ": shard '", shard, "' is not a file name in the checkpoint's directory");
            if (!exists_checked(file))
                fail(index.string(), ": shard '", shard, "' (holding '", names.front(), "') does not exist");
            add_file(file.string());
            auto& f = store.files_.back();
            for (auto& n : names)
                if (!f->has(n)) fail(index.string(), ": says '", n, "' is in ", shard, " but that shard lacks it");
        }
        // Tensors present in a shard but not listed in the index are still loadable.
        return store;
    }
    fs::path single = dir / "model.safetensors";
    if (exists_checked(single)) {
        add_file(single.string());
        return store;
    }
    fail(path, ": neither model.safetensors.index.json nor model.safetensors found");
}

const TensorInfo& TensorStore::info(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("checkpoint has no tensor named '", name, "'");
    return files_[it->second]->tensors().at(name);
}

Tensor TensorStore::get(const std::string& name) const {
    auto it = where_.find(name);
    if (it == where_.end()) fail("checkpoint has no tensor named '", name, "'");
    return files_[it->second]->get(name);
}

std::vector<std::string> TensorStore::names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (auto& [n, i] : where_) out.push_back(n);
    return out;
}

size_t TensorStore::total_bytes() const {
    size_t n = 0;
    for (auto& f : files_)
        for (auto& [name, ti] : f->tensors()) n += ti.nbytes;
    return n;
}

SafetensorsWriter::SafetensorsWriter(std::string path) : path_(std::move(path)) {}

SafetensorsWriter::~SafetensorsWriter() = default;

void SafetensorsWriter::declare(const std::string& name, DType dtype, const Shape& shape) {
    VIDI_CHECK(!begun_, path_, ": declare('", name, "') after begin()");
    TensorInfo ti{name, dtype, shape, offset_, static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype)};
    offset_ += ti.nbytes;
    entries_.push_back(std::move(ti));
}

void SafetensorsWriter::begin() {
    json header = json::object();
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    for (auto& e : entries_) {
        header[e.name] = {{"dtype", safetensors_dtype_name(e.dtype)},
                          {"shape", e.shape},
                          {"data_offsets", {e.offset, e.offset + e.nbytes}}};
    }
    std::string text = header.dump();
    while (text.size() % 8) text.push_back(' ');  // keeps the data section 8-byte aligned
    file_ = std::make_unique<ReplacingFile>(path_);
    uint64_t len = text.size();
    if (std::fwrite(&len, 8, 1, file_->get()) != 1 ||
        std::fwrite(text.data(), 1, text.size(), file_->get()) != text.size())
        fail(path_, ": write failed (disk full?): ", std::strerror(errno));
    begun_ = true;
    current_ = 0;
    written_in_current_ = 0;
}

void SafetensorsWriter::write(const void* data, size_t bytes) {
    VIDI_CHECK(begun_, path_, ": write() before begin()");
    while (current_ < entries_.size() && written_in_current_ == entries_[current_].nbytes) {
        ++current_;
        written_in_current_ = 0;
    }
    VIDI_CHECK(current_ < entries_.size(), path_, ": more data written than declared");
    const TensorInfo& e = entries_[current_];
    VIDI_CHECK(written_in_current_ + bytes <= e.nbytes, path_, ": tensor '", e.name, "' gets ",
               written_in_current_ + bytes, " bytes but needs ", e.nbytes);
    if (bytes && std::fwrite(data, 1, bytes, file_->get()) != bytes)
        fail(path_, ": write failed (disk full?): ", std::strerror(errno));
    written_in_current_ += bytes;
}

void SafetensorsWriter::finish() {
    VIDI_CHECK(begun_, path_, ": finish() before begin()");
    while (current_ < entries_.size() && written_in_current_ == entries_[current_].nbytes) {
        ++current_;
        written_in_current_ = 0;
    }
    if (current_ < entries_.size()) fail(path_, ": tensor '", entries_[current_].name, "' was not fully written");
    file_->commit();
    file_.reset();
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    SafetensorsWriter w(path);
    for (auto& [k, v] : metadata) w.set_metadata(k, v);
    for (auto& [name, t] : tensors) {
        VIDI_CHECK(t.on_host(), "save_safetensors: tensor '", name, "' is not on the host");
        w.declare(name, t.dtype(), t.shape());
    }
    w.begin();
    for (auto& [name, t] : tensors) w.write(t.raw(), t.nbytes());
    w.finish();
}

}  // namespace vidi::io
