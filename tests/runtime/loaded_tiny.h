// tiny-a loaded through the runtime (LoadedModel) on a backend, once per process, and byte
// comparisons of what it computes (tokens, media K/V) for the runtime's tests.
#pragma once

#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "runtime/loaded_model.h"
#include "support/test_support.h"

namespace vidi::test {

inline runtime::LoadedModel& loaded_tiny(const std::string& backend) {
    static std::map<std::string, std::unique_ptr<runtime::LoadedModel>> made;
    auto& m = made[backend];
    if (!m) {
        EngineOptions o;
        o.model_dir = tiny_model_dir();
        o.backend = backend;
        o.threads = 2;
        m = std::make_unique<runtime::LoadedModel>(o);
    }
    return *m;
}

// Both tensors brought to the host as to_host() gives them (floats widened to f32: the same
// bits compare the same), then compared byte for byte.
inline bool same_bytes(Backend& be, const Tensor& a, const Tensor& b) {
    if (a.defined() != b.defined()) return false;
    if (!a.defined()) return true;
    const Tensor x = be.to_host(a), y = be.to_host(b);
    return x.dtype() == y.dtype() && x.nbytes() == y.nbytes() && std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0;
}

inline bool same_kv(Backend& be, const model::MediaKV& a, const model::MediaKV& b) {
    if (a.tokens != b.tokens || a.k.size() != b.k.size()) return false;
    for (size_t l = 0; l < a.k.size(); ++l)
        for (const auto& [x, y] : {std::pair{&a.k[l], &b.k[l]}, std::pair{&a.v[l], &b.v[l]}})
            if (!same_bytes(be, x->values, y->values) || !same_bytes(be, x->scales, y->scales) ||
                !same_bytes(be, x->zeros, y->zeros))
                return false;
    return true;
}

}  // namespace vidi::test
