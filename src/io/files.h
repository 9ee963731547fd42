// Opening, reading and replacing files with errors that name them: a FIFO or a device where a
// file is expected is refused at once (never waited on or read without end), and an output
// file is replaced whole or not at all.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace vidi::io {

// The most read_regular_file reads by default: a checkpoint's JSON and template files
// (tokenizer.json runs to tens of MB) fit many times over.
constexpr uint64_t kMaxTextFileBytes = 256ull << 20;

// A regular file open for reading, closed with the object. Refuses (vidi::Error naming `path`)
// one that cannot be opened, and a FIFO, device or directory without blocking on it.
class RegularFile {
public:
    explicit RegularFile(const std::string& path);
    ~RegularFile();
    RegularFile(const RegularFile&) = delete;
    RegularFile& operator=(const RegularFile&) = delete;
    int fd() const { return fd_; }
    uint64_t size() const { return size_; }

private:
    int fd_ = -1;
    uint64_t size_ = 0;
};

// The whole of a regular file; a longer one than max_bytes is refused before it is read.
std::string read_regular_file(const std::string& path, uint64_t max_bytes = kMaxTextFileBytes);

// An output that replaces `path` only when it is complete: written to a new temporary file
// beside it, synced and renamed over `path` by commit(). Destroyed before that (a failed
// write), the temporary goes and `path` keeps what it held. The rename replaces a symlink
// named `path`, never the file it points to. The constructor creates the temporary, so an
// output that cannot be written (no such directory, no permission, `path` a directory, a
// device or a pipe) is refused (vidi::Error naming it) before any work is spent on it.
class ReplacingFile {
public:
    explicit ReplacingFile(std::string path);
    ~ReplacingFile();
    ReplacingFile(const ReplacingFile&) = delete;
    ReplacingFile& operator=(const ReplacingFile&) = delete;
    std::FILE* get() const { return file_; }
    void commit();

private:
    std::string path_, temp_;
    std::FILE* file_ = nullptr;
};

// Refuses (vidi::Error naming `dir`) a directory in which no file can be created, by creating
// and removing one (permission bits alone say nothing for root or a read-only mount).
void require_writable_dir(const std::string& dir);

}  // namespace vidi::io
