#include "vidi/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace vidi {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::f32: return 4;
        case DType::f16: return 2;
        case DType::bf16: return 2;
        case DType::i64: return 8;
        case DType::i32: return 4;
        case DType::u8: return 1;
        case DType::i8: return 1;
    }
    return 0;
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "f32";
        case DType::f16: return "f16";
        case DType::bf16: return "bf16";
        case DType::i64: return "i64";
        case DType::i32: return "i32";
        case DType::u8: return "u8";
        case DType::i8: return "i8";
    }
    return "?";
}

bool dtype_is_float(DType t) { return t == DType::f32 || t == DType::f16 || t == DType::bf16; }

std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << '[';
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << ']';
    return os.str();
}

int64_t shape_numel(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s)  // a file's header may claim any shape: the product must not wrap
        VIDI_CHECK(!__builtin_mul_overflow(n, d, &n), "shape ", shape_str(s), " has more than 2^63 elements");
    return n;
}

namespace {
// Whole 64-byte lines, at least one (an empty tensor still has a valid pointer).
size_t allocation_bytes(size_t bytes) { return std::max<size_t>(64, (bytes + 63) / 64 * 64); }
}  // namespace

Tensor Tensor::empty(Shape shape, DType dtype) {
    Tensor t = uninitialized(std::move(shape), dtype);
    std::memset(t.data_, 0, allocation_bytes(t.nbytes()));
    return t;
}

Tensor Tensor::uninitialized(Shape shape, DType dtype) {
    for (int64_t d : shape) VIDI_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
    Tensor t;
    t.shape_ = std::move(shape);
    t.dtype_ = dtype;
    t.dtype_set_ = true;
    const size_t padded = allocation_bytes(t.nbytes());
    void* p = std::aligned_alloc(64, padded);
    if (!p) fail("out of host memory allocating ", padded, " bytes for tensor ", t.describe());
    t.owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
    t.data_ = p;
    return t;
}

Tensor Tensor::wrap(void* data, Shape shape, DType dtype, Device device, std::shared_ptr<void> owner) {
    Tensor t;
    t.owner_ = std::move(owner);
    t.data_ = data;
    t.shape_ = std::move(shape);
    t.dtype_ = dtype;
    t.device_ = device;
    t.dtype_set_ = true;
    return t;
}

int64_t Tensor::dim(int i) const {
    int r = rank();
    int j = i < 0 ? i + r : i;
    VIDI_CHECK(j >= 0 && j < r, "dimension ", i, " out of range for ", describe());
    return shape_[j];
}

void Tensor::check_access(DType want) const {
    VIDI_CHECK(dtype_set_, "access to an undefined tensor");
    VIDI_CHECK(want == dtype_, "tensor ", describe(), " accessed as ", dtype_name(want));
}

Tensor Tensor::reshape(Shape shape) const {
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            VIDI_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(shape));
            infer = static_cast<int64_t>(i);
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0) shape[infer] = known ? numel() / known : 0;
    VIDI_CHECK(shape_numel(shape) == numel(), "reshape of ", describe(), " to ", shape_str(shape),
               " changes the element count");
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
    VIDI_CHECK(rank() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], "rows(", begin, ", ", end,
               ") out of range for ", describe());
    Tensor t = *this;
    int64_t row_elems = shape_[0] ? numel() / shape_[0] : 0;
    t.data_ = static_cast<char*>(data_) + static_cast<size_t>(begin * row_elems) * dtype_size(dtype_);
    t.shape_[0] = end - begin;
    return t;
}

std::string Tensor::describe() const {
    return defined() ? cat(dtype_name(dtype_), shape_str(shape_)) : std::string("undefined");
}

float bf16_to_f32(uint16_t v) {
    uint32_t u = static_cast<uint32_t>(v) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_bf16(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400u)) { mant <<= 1; --exp; }
            u = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t exp = static_cast<int32_t>((u >> 23) & 0xffu) - 127 + 15;
    uint32_t mant = u & 0x7fffffu;
    if (((u >> 23) & 0xffu) == 0xffu) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10) return static_cast<uint16_t>(sign);
        mant |= 0x800000u;
        uint32_t shift = static_cast<uint32_t>(14 - exp);
        uint32_t half = 1u << (shift - 1), rest = mant & ((1u << shift) - 1);
        uint32_t r = mant >> shift;
        if (rest > half || (rest == half && (r & 1u))) ++r;
        return static_cast<uint16_t>(sign | r);
    }
    uint32_t r = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (r & 1u))) ++r;  // may carry into the exponent: correct
    return static_cast<uint16_t>(sign | r);
}

void convert_to_f32(const void* src, DType dtype, float* dst, size_t n) {
    switch (dtype) {
        case DType::f32: std::memcpy(dst, src, n * 4); return;
        case DType::bf16: {
            auto* s = static_cast<const uint16_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
            return;
        }
        case DType::f16: {
            auto* s = static_cast<const uint16_t*>(src);
            for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
            return;
        }
        default: fail("cannot convert ", dtype_name(dtype), " to f32");
    }
}

void convert_from_f32(const float* src, DType dtype, void* dst, size_t n) {
    switch (dtype) {
        case DType::f32: std::memcpy(dst, src, n * 4); return;
        case DType::bf16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
            return;
        }
        case DType::f16: {
            auto* d = static_cast<uint16_t*>(dst);
            for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
            return;
        }
        default: fail("cannot convert f32 to ", dtype_name(dtype));
    }
}

Tensor Tensor::to_f32() const {
    VIDI_CHECK(on_host(), "to_f32 needs a host tensor, got one on the GPU");
    if (dtype_ == DType::f32) return *this;
    Tensor t = empty(shape_, DType::f32);
    if (dtype_ == DType::i64) {
        auto* s = static_cast<const int64_t*>(data_);
        for (int64_t i = 0; i < numel(); ++i) t.data<float>()[i] = static_cast<float>(s[i]);
        return t;
    }
    convert_to_f32(data_, dtype_, t.data<float>(), static_cast<size_t>(numel()));
    return t;
}

Tensor Tensor::clone() const {
    VIDI_CHECK(on_host(), "clone needs a host tensor");
    Tensor t = empty(shape_, dtype_);
    std::memcpy(t.data_, data_, nbytes());
    return t;
}

std::vector<float> Tensor::to_f32_vector() const {
    Tensor f = to_f32();
    return std::vector<float>(f.data<float>(), f.data<float>() + f.numel());
}

}  // namespace vidi
