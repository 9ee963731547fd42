// The files this process holds mapped (safetensors shards), so that a SIGBUS can be named: a
// page of a mapping whose file was truncated or rewritten in place since it was mapped faults
// with SIGBUS, which otherwise kills the process without a word.
#pragma once

#include <cstddef>
#include <string>

namespace vidi::io {

void note_mapping(const void* begin, size_t bytes, const std::string& path);
void forget_mapping(const void* begin);
// The file whose mapping holds `addr`, or nullptr. Async-signal-safe.
const char* mapped_file_at(const void* addr);
// Installs a SIGBUS handler that names the mapped file the fault hit on stderr, then lets the
// default action end the process (the status and any core dump stay those of SIGBUS).
void name_truncated_mappings_on_sigbus();

}  // namespace vidi::io
