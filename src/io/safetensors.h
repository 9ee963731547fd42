// safetensors: memory-mapped zero-copy reading (single file or a sharded checkpoint via
// model.safetensors.index.json) and a streaming writer. Every header is checked strictly
// so that a truncated or corrupt file is an error naming the file, never a wrong tensor.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vidi/tensor.h"

namespace vidi::io {

class ReplacingFile;  // io/files.h

struct TensorInfo {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;
    size_t offset = 0;  // from the start of the data section
    size_t nbytes = 0;
};

DType parse_dtype(const std::string& s);          // "BF16" -> bf16; throws on unknown
const char* safetensors_dtype_name(DType dtype);  // bf16 -> "BF16"

// One memory-mapped .safetensors file.
class SafetensorsFile {
public:
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return path_; }
    const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    bool has(const std::string& name) const { return tensors_.count(name) != 0; }
    // Zero-copy host view of a tensor; keeps the mapping alive.
    Tensor get(const std::string& name) const;
    size_t file_size() const { return size_; }

private:
    SafetensorsFile() = default;
    std::string path_;
    void* map_ = nullptr;
    size_t size_ = 0;
    const char* data_ = nullptr;  // start of the data section
    std::map<std::string, TensorInfo> tensors_;
    std::map<std::string, std::string> metadata_;
    std::weak_ptr<SafetensorsFile> self_;
};

// All tensors of a checkpoint directory (sharded or single file) or of one file.
class TensorStore {
public:
    // A directory with model.safetensors.index.json, or with model.safetensors, or a file.
    static TensorStore open(const std::string& path);

    bool has(const std::string& name) const { return where_.count(name) != 0; }
    const TensorInfo& info(const std::string& name) const;
    Tensor get(const std::string& name) const;  // error names the tensor if absent
    std::vector<std::string> names() const;     // sorted
    const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
    size_t total_bytes() const;

private:
    std::vector<std::shared_ptr<SafetensorsFile>> files_;
    std::map<std::string, size_t> where_;  // tensor name -> index into files_
};

// Streaming writer: declare every tensor, then write their bytes in declaration order,
// so a 20 GB checkpoint never has to sit in memory.
class SafetensorsWriter {
public:
    explicit SafetensorsWriter(std::string path);
    ~SafetensorsWriter();
    void declare(const std::string& name, DType dtype, const Shape& shape);
    void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
    // Writes the header; after this only write() calls are allowed.
    void begin();
    // Appends bytes of the tensor currently being written (the next declared one);
    // a tensor may arrive in several pieces.
    void write(const void* data, size_t bytes);
    // Checks every declared byte was written and puts the file in place. The bytes go to a
    // temporary beside `path` until then (ReplacingFile): a failed or abandoned write leaves
    // whatever `path` held before.
    void finish();
    size_t data_bytes() const { return offset_; }

private:
    std::string path_;
    std::vector<TensorInfo> entries_;
    std::map<std::string, std::string> metadata_;
    std::unique_ptr<ReplacingFile> file_;  // from begin() to finish()
    size_t offset_ = 0, current_ = 0, written_in_current_ = 0;
    bool begun_ = false;
};

// Convenience: writes whole host tensors to one file.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace vidi::io
