// Shared helpers for the tests: where the golden data is, temporary directories,
// and comparisons that report the worst element.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "vidi/error.h"
#include "vidi/tensor.h"

namespace vidi::test {

std::string shared_dir();                   // ../shared beside the checkout
std::string golden_dir();                   // shared_dir()/golden
std::string golden_path(const std::string& name);
std::string tiny_model_dir();               // golden/tiny-a
std::string vidi_binary();                  // the built CLI
std::string vidi7b_data_dir();              // tests/data/vidi7b (the tiny Vidi-7B and its golden file)
std::string tiny_vidi7b_dir();              // tests/data/vidi7b/tiny-vidi7b
// A writable copy of golden/tiny-a at `to` (to break or change it).
void copy_tiny_model(const std::string& to);
void copy_dir(const std::string& from, const std::string& to);  // the same for any checkpoint
// The first `count` elements (all when -1) of a bf16 tensor in a (copied) sharded checkpoint
// := `bits`, written in place in its shard.
void write_bf16(const std::string& checkpoint_dir, const std::string& tensor, uint16_t bits, int64_t count = 1);

// A fresh directory under the build tree, removed when the object dies.
class TempDir {
public:
    explicit TempDir(const std::string& tag = "t");
    ~TempDir();
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// ‖a − b‖ / ‖b‖ over all elements (any float dtype, compared in double).
double rel_error(const Tensor& a, const Tensor& b);
double max_abs_diff(const Tensor& a, const Tensor& b);
double mean_abs_diff(const Tensor& a, const Tensor& b);

// The message of the vidi::Error that `f` throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

// Fraction of the rows of two [T, V] host f32 logits whose argmax (the first on ties) agree.
double top1_agreement(const Tensor& a, const Tensor& b);

// Token ids stored as i64 (golden files) -> int32 ids.
std::vector<int32_t> ids_of(const Tensor& t);

// Runs a shell command; returns its exit code and fills `out` with stdout+stderr.
int run_command(const std::string& cmd, std::string* out = nullptr);

}  // namespace vidi::test
