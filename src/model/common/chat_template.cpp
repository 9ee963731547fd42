#include "model/common/chat_template.h"

#include <filesystem>

#include "io/files.h"
#include "io/json_file.h"

namespace fs = std::filesystem;

namespace vidi::model {

namespace {

// Jinja reads '\n' in a string literal as a newline: both spellings are the same template.
std::string unescape_newlines(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n') {
            out += '\n';
            ++i;
        } else {
            out += s[i];
        }
    }
    return out;
}

// Up to 40 characters from `at`, newlines shown as \n.
std::string excerpt(const std::string& s, size_t at) {
    std::string out;
    for (size_t i = at; i < s.size() && i < at + 40; ++i) out += s[i] == '\n' ? std::string("\\n") : std::string(1, s[i]);
    return at >= s.size() ? "(end)" : "\"" + out + (at + 40 < s.size() ? "…" : "") + "\"";
}

size_t common_prefix(const std::string& a, const std::string& b) {
    size_t i = 0;
    while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
    return i;
}

// tokenizer_config.json's "chat_template": a string, or the entry named "default" of a list.
struct TemplateField {
    std::optional<std::string> text;
    std::string unusable;  // what the field holds when it is there and holds no template
};

TemplateField template_field(const std::string& dir) {
    TemplateField f;
    const fs::path config = fs::path(dir) / "tokenizer_config.json";
    if (!fs::exists(config)) return f;
    const nlohmann::json j = io::read_json_file(config.string());
    const auto t = j.find("chat_template");
    if (t == j.end() || t->is_null()) return f;
    if (t->is_string()) {
        f.text = t->get<std::string>();
    } else if (t->is_array()) {
        for (const auto& entry : *t)
            if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
                entry["template"].is_string()) {
                f.text = entry["template"].get<std::string>();
                break;
            }
        if (!f.text) f.unusable = "a list without a template named \"default\"";
    } else {
        f.unusable = cat("a", t->is_object() ? "n " : " ", t->type_name());
    }
    return f;
}

// The field's template, else chat_template.jinja's.
std::optional<std::string> template_of(const std::string& dir, const TemplateField& f) {
    if (f.text) return f.text;
    const fs::path jinja = fs::path(dir) / "chat_template.jinja";
    if (!fs::exists(jinja)) return std::nullopt;
    return io::read_regular_file(jinja.string());
}

}  // namespace

std::optional<std::string> checkpoint_chat_template(const std::string& dir) {
    return template_of(dir, template_field(dir));
}

std::optional<std::string> chat_template_warning(const std::string& dir, const std::vector<std::string>& known,
                                                 const std::string& family) {
    if (known.empty()) return std::nullopt;
    const TemplateField f = template_field(dir);  // tokenizer_config.json read once
    if (!f.unusable.empty())  // the official code could not render it
        return cat(dir, ": tokenizer_config.json's chat_template is ", f.unusable,
                   ", not a template (a string, or a list with one named \"default\"). Prompts follow the built-in ",
                   family, " format.");
    const std::optional<std::string> raw = template_of(dir, f);
    if (!raw) return std::nullopt;
    const std::string got = unescape_newlines(*raw);
    std::string closest;
    size_t best = 0;
    for (const std::string& k : known) {
        const std::string want = unescape_newlines(k);
        if (want == got) return std::nullopt;
        const size_t n = common_prefix(want, got);
        if (closest.empty() || n > best) closest = want, best = n;
    }
    return cat(dir, ": the checkpoint's chat_template differs from the ", family,
               " prompt format this engine builds (the official code renders the checkpoint's); from character ",
               best, " the checkpoint has ", excerpt(got, best), " where ", family, "'s has ", excerpt(closest, best),
               ". Prompts follow the built-in format.");
}

}  // namespace vidi::model
