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
    const int64_t groups = (params + 31) / 32;
    return {params * 2, groups * 34, groups * 18};
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

std::string detect_vision_prefix(const TensorStore& store) {
    const std::string official = kVisionPrefixOfficial, flat = kVisionPrefixFlat;
    bool any_official = false, any_flat = false;
    for (const auto& name : store.names()) {
        if (name.compare(0, official.size(), official) == 0) any_official = true;
        else if (name.compare(0, flat.size(), flat) == 0) any_flat = true;
    }
    return any_flat && !any_official ? flat : official;
}

ValidationReport validate(const ModelConfig& c, const TensorStore& store, const std::string& vision_prefix) {
    ValidationReport r;
    std::map<std::string, bool> known;  // name -> present
    for (const ExpectedTensor& e : expected_tensors(c, vision_prefix)) {
        known[e.name] = true;
        if (!store.has(e.name)) {
            if (e.required) r.missing.push_back(e.name);
            continue;
        }
        ++r.checked;
        const TensorInfo& ti = store.info(e.name);
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

Checkpoint Checkpoint::open(const std::string& dir) {
    Checkpoint ck;
    ck.dir_ = dir;
    ck.config_ = ModelConfig::load(dir);
    ck.store_ = TensorStore::open(dir);
    ck.vision_prefix_ = detect_vision_prefix(ck.store_);
    ck.expected_ = expected_tensors(ck.config_, ck.vision_prefix_);
    ck.report_ = validate(ck.config_, ck.store_, ck.vision_prefix_);
    return ck;
}

void Checkpoint::require_usable() const {
    if (!report_.usable()) fail("checkpoint ", dir_, ": ", report_.to_string());
}

ParamCounts Checkpoint::params() const {
    ParamCounts p;
    for (const ExpectedTensor& e : expected_) {
        if (!store_.has(e.name)) continue;
        int64_t n = shape_numel(store_.info(e.name).shape);
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
