// The registry of model families: one line per family. A checkpoint's config.json picks
// its family by model_type, else by an architectures entry.
#include <algorithm>

#include "model/family.h"
#include "model/vidi15/family.h"
#include "model/vidi7b/family.h"

namespace vidi::model {

const std::vector<const Family*>& families() {
    static const std::vector<const Family*> all = {
        &vidi15::family(),
        &vidi7b::family(),
    };
    return all;
}

namespace {

bool contains(const std::vector<std::string>& list, const std::string& s) {
    return std::find(list.begin(), list.end(), s) != list.end();
}

std::string known_model_types() {
    std::string s;
    for (const Family* f : families())
        for (const std::string& t : f->model_types()) s += (s.empty() ? "" : ", ") + t + " (" + f->name() + ")";
    return s;
}

// config.json's model_type; absent or null reads as none (config_from_json refuses other types first).
std::string model_type_of(const nlohmann::json& config) {
    const auto t = config.find("model_type");
    return t != config.end() && t->is_string() ? t->get<std::string>() : std::string();
}

}  // namespace

const Family& family_for(const nlohmann::json& config, const std::string& where) {
    const std::string type = model_type_of(config);
    for (const Family* f : families())
        if (contains(f->model_types(), type)) return *f;
    if (auto a = config.find("architectures"); a != config.end() && a->is_array())
        for (const auto& arch : *a)
            if (arch.is_string())
                for (const Family* f : families())
                    if (contains(f->architectures(), arch.get<std::string>())) return *f;
    fail(where, ": model_type \"", type, "\" is not a known model family (known: ", known_model_types(), ")");
}

std::string family_disagreement(const nlohmann::json& config, const Family& chosen, const std::string& where) {
    const auto a = config.find("architectures");
    if (a == config.end() || !a->is_array()) return {};
    std::string others;  // the known architectures of other families it names
    for (const auto& arch : *a) {
        if (!arch.is_string()) continue;
        const std::string name = arch.get<std::string>();
        if (contains(chosen.architectures(), name)) return {};  // one entry agrees: nothing to say
        for (const Family* f : families())
            if (f != &chosen && contains(f->architectures(), name))
                others += (others.empty() ? "" : ", ") + name + " (" + f->name() + ")";
    }
    if (others.empty()) return {};
    return cat(where, ": model_type \"", model_type_of(config), "\" is ", chosen.name(),
               "'s, but architectures names ", others, ": read as ", chosen.name(),
               " by its model_type; check that config.json belongs to these weights");
}

Preset find_preset(const std::string& name) {
    for (const Family* f : families())
        for (const Preset& p : f->presets())
            if (p.name == name) return p;
    std::string known;
    for (const std::string& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("unknown preset \"", name, "\" (known: ", known, ")");
}

std::vector<std::string> preset_names() {
    std::vector<std::string> names;
    for (const Family* f : families())
        for (const Preset& p : f->presets()) names.push_back(p.name);
    return names;
}

}  // namespace vidi::model
