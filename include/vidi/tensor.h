// The one tensor type: a shape, a dtype, a device and a pointer into storage that is
// kept alive by a shared owner (a heap block, a memory-mapped file, a device buffer).
// Views (reshape, row slices) share the owner; nothing is copied implicitly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "vidi/error.h"

namespace vidi {

enum class DType : uint8_t { f32, f16, bf16, i64, i32, u8, i8 };
enum class Device : uint8_t { cpu, cuda };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
bool dtype_is_float(DType t);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[3, 384, 384]"
int64_t shape_numel(const Shape& s);

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<int8_t>() { return DType::i8; }

class Tensor {
public:
    Tensor() = default;

    // Fresh zero-initialised host memory (64-byte aligned).
    static Tensor empty(Shape shape, DType dtype);
    static Tensor zeros(Shape shape, DType dtype) { return empty(std::move(shape), dtype); }
    // Fresh host memory (64-byte aligned) whose contents are unspecified, for a buffer the
    // caller overwrites whole: large zeroed blocks cost their page faults twice.
    static Tensor uninitialized(Shape shape, DType dtype);
    // Wraps memory owned elsewhere; `owner` keeps it alive (may be null for borrowed memory).
    static Tensor wrap(void* data, Shape shape, DType dtype, Device device,
                       std::shared_ptr<void> owner);
    // Host copy of a vector.
    template <class T>
    static Tensor from_vector(const std::vector<T>& v, Shape shape = {});

    bool defined() const { return dtype_set_; }
    const Shape& shape() const { return shape_; }
    int rank() const { return static_cast<int>(shape_.size()); }
    int64_t dim(int i) const;  // negative counts from the end
    int64_t numel() const { return shape_numel(shape_); }
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
    DType dtype() const { return dtype_; }
    Device device() const { return device_; }
    bool on_host() const { return device_ == Device::cpu; }
    // No other tensor or view shares this one's storage: it may be refilled in place.
    bool sole_owner() const { return owner_ && owner_.use_count() == 1; }

    void* raw() const { return data_; }
    template <class T>
    T* data() const {
        check_access(dtype_of<T>());
        return static_cast<T*>(data_);
    }

    // Views sharing the storage.
    Tensor reshape(Shape shape) const;
    Tensor rows(int64_t begin, int64_t end) const;  // slice of dim 0
    Tensor row(int64_t i) const { return rows(i, i + 1).reshape(Shape(shape_.begin() + 1, shape_.end())); }

    // Host-side conversions (any float dtype -> f32 copy; same dtype -> deep copy).
    Tensor to_f32() const;
    Tensor clone() const;
    std::vector<float> to_f32_vector() const;
    std::string describe() const;  // "bf16[3584, 4608]", or "undefined"

private:
    void check_access(DType want) const;

    std::shared_ptr<void> owner_;
    void* data_ = nullptr;
    Shape shape_;
    DType dtype_ = DType::f32;
    Device device_ = Device::cpu;
    bool dtype_set_ = false;
};

// bf16/f16 <-> f32 scalar conversions (round-to-nearest-even).
float bf16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);
float f16_to_f32(uint16_t v);
uint16_t f32_to_f16(float v);
// Converts n elements of a float dtype to f32.
void convert_to_f32(const void* src, DType dtype, float* dst, size_t n);
void convert_from_f32(const float* src, DType dtype, void* dst, size_t n);

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& v, Shape shape) {
    if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
    VIDI_CHECK(shape_numel(shape) == static_cast<int64_t>(v.size()), "from_vector: shape ",
               shape_str(shape), " does not hold ", v.size(), " elements");
    Tensor t = empty(std::move(shape), dtype_of<T>());
    std::copy(v.begin(), v.end(), t.data<T>());
    return t;
}

}  // namespace vidi
