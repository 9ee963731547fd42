#include "io/checkpoint.h"

#include <map>
#include <sstream>

#include "vidi/error.h"

namespace vidi::io {

const char* component_name(Component c) {
    switch (c) {
        case Component::llm: return "llm";
        case Component::vision: return "vision";
        case Component::audio: return "audio";
        case Component::glue: return "glue";
    }
    return "?";
}

WeightBytes weight_bytes(int64_t params) {
    // int8: one byte per weight (one f32 scale per row is negligible); int4: half a byte
    // plus one f32 scale per group of 64 (what `vidi quantize` and --weights write).
    const int64_t groups = (params + 63) / 64;
    return {params * 2, params, (params + 1) / 2 + groups * 4};
}

std::string ValidationReport::to_string() const {
    std::ostringstream os;
    os << (usable() ? "usable" : "NOT usable") << " (" << checked << " tensors checked";
    if (!unused.empty()) os << ", " << unused.size() << " known but unused";
    os << ")";
    for (auto& e : errors) os << "\n  " << e;
    for (auto& n : missing) os << "\n  missing tensor " << n;
    for (auto& n : unexpected) os << "\n  unexpected tensor " << n;
    return os.str();
}

std::string check_quantized(const TensorStore& store, const std::string& name, const Shape& expected) {
    const TensorInfo& codes = store.info(name);
    const TensorInfo& scales = store.info(name + kQuantScaleSuffix);
    if (expected.size() != 2) return cat("tensor ", name, ": only 2-D weights can be quantised");
    const int64_t N = expected[0], K = expected[1];
    const bool int8 = codes.dtype == DType::i8, int4 = codes.dtype == DType::u8;
    if (!int8 && !int4) return cat("tensor ", name, ": quantised codes must be I8 or U8, found ", dtype_name(codes.dtype));
    const Shape want = {N, int8 ? K : K / 2};
    if (codes.shape != want || (int4 && K % 2))
        return cat("tensor ", name, ": expected ", int8 ? "8" : "4", "-bit codes ", shape_str(want), " for ",
                   shape_str(expected), ", found ", shape_str(codes.shape));
    const int64_t G = scales.shape.size() == 2 ? scales.shape[1] : 0;
    if (scales.dtype != DType::f32 || scales.shape.size() != 2 || scales.shape[0] != N || G <= 0 || K % G ||
        (int4 && (K / G) % 2))
        return cat("tensor ", name, kQuantScaleSuffix, ": expected F32 scales [", N, ", K/group] for K = ", K,
                   ", found ", dtype_name(scales.dtype), shape_str(scales.shape));
    return {};
}

Shape logical_shape(const TensorStore& store, const std::string& name) {
    Shape s = store.info(name).shape;
    if (store.has(name + kQuantScaleSuffix) && store.info(name).dtype == DType::u8 && !s.empty()) s.back() *= 2;
    return s;
}

std::set<std::string> linear_weight_names(const ExpectedTensors& expected) {
    std::set<std::string> names;
    for (const ExpectedTensor& e : expected)
        if (e.linear && e.used) names.insert(e.name);
    return names;
}

std::set<std::string> f32_weight_names(const ExpectedTensors& expected) {
    std::set<std::string> names;
    for (const ExpectedTensor& e : expected)
        if (e.f32 && e.used) names.insert(e.name);
    return names;
}

ValidationReport validate(const ExpectedTensors& expected, const TensorStore& store) {
    ValidationReport r;
    std::map<std::string, bool> known;  // name -> present
    for (const ExpectedTensor& e : expected) {
        known[e.name] = true;
        if (!store.has(e.name)) {
            if (e.required) r.missing.push_back(e.name);
            continue;
        }
        ++r.checked;
        const TensorInfo& ti = store.info(e.name);
        if (store.has(e.name + kQuantScaleSuffix)) {  // quantised by `vidi quantize`
            known[e.name + kQuantScaleSuffix] = true;
            if (std::string problem = check_quantized(store, e.name, e.shape); !problem.empty())
                r.errors.push_back(problem);
            if (!e.used) r.unused.push_back(e.name);
            continue;
        }
        if (ti.shape != e.shape)
            r.errors.push_back(cat("tensor ", e.name, ": expected ", shape_str(e.shape), " found ", shape_str(ti.shape)));
        if (!dtype_is_float(ti.dtype))
            r.errors.push_back(cat("tensor ", e.name, ": dtype ", dtype_name(ti.dtype),
                                   " is not a float type (expected bf16, f16 or f32)"));
        if (!e.used) r.unused.push_back(e.name);
    }
    for (const auto& name : store.names())
        if (!known.count(name)) r.unexpected.push_back(name);
    return r;
}

Checkpoint Checkpoint::open(const std::string& dir, const Layout& layout) {
    Checkpoint ck;
    ck.dir_ = dir;
    ck.store_ = TensorStore::open(dir);
    ck.expected_ = layout(ck.store_);
    ck.report_ = validate(ck.expected_, ck.store_);
    return ck;
}

void Checkpoint::require_usable() const {
    if (!report_.usable()) fail("checkpoint ", dir_, ": ", report_.to_string());
}

ParamCounts Checkpoint::params() const {
    ParamCounts p;
    for (const ExpectedTensor& e : expected_) {
        if (!store_.has(e.name)) continue;
        int64_t n = shape_numel(logical_shape(store_, e.name));
        switch (e.component) {
            case Component::llm: p.llm += n; break;
            case Component::vision: p.vision += n; break;
            case Component::audio: p.audio += n; break;
            case Component::glue: p.glue += n; break;
        }
        if (e.used) p.used += n;
    }
    return p;
}

}  // namespace vidi::io
