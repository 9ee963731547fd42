// `vidi inspect` (vidi/tools.h): architecture (the family's summary), parameter counts,
// memory needs, the chat template check, the weights' values on request and the validation
// verdict of a checkpoint.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/json_file.h"
#include "io/value_scan.h"
#include "model/checkpoint.h"
#include "model/common/chat_template.h"
#include "model/family.h"
#include "runtime/seconds_since.h"
#include "vidi/tools.h"

namespace vidi {

namespace {

using nlohmann::json;

// 9.242B, 1.604M, 105.4K: parameter counts at a glance.
std::string billions(int64_t n) {
    char b[32];
    if (n >= 100'000'000) std::snprintf(b, sizeof b, "%.3fB", double(n) / 1e9);
    else if (n >= 100'000) std::snprintf(b, sizeof b, "%.3fM", double(n) / 1e6);
    else std::snprintf(b, sizeof b, "%.1fK", double(n) / 1e3);
    return b;
}

std::string gigabytes(int64_t n) {
    char b[32];
    if (n >= 100'000'000) std::snprintf(b, sizeof b, "%.2f GB", double(n) / 1e9);
    else std::snprintf(b, sizeof b, "%.2f MB", double(n) / 1e6);
    return b;
}

// Weights stored quantised by `vidi quantize` (codes + NAME_scale).
int64_t quantized_tensors(const io::Checkpoint& ck) {
    int64_t n = 0;
    for (const std::string& name : ck.store().names()) n += ck.has(name + io::kQuantScaleSuffix);
    return n;
}

// config.json's "vidi_quantization" entry: {} when absent or not an object (it only labels
// the report; the stored tensors say how the weights are held).
json quantization_entry(const io::Checkpoint& ck) {
    const json c = io::read_json_file((std::filesystem::path(ck.dir()) / "config.json").string());
    const auto it = c.find("vidi_quantization");
    return it != c.end() && it->is_object() ? *it : json::object();
}

// Its "weights" name ("int8", "int4/g64"), "?" when it has none.
std::string quantization_name(const io::Checkpoint& ck) {
    const json e = quantization_entry(ck);
    const auto it = e.find("weights");
    return it != e.end() && it->is_string() ? it->get<std::string>() : "?";
}

// tokenizer.model as the engine loads it (model::Checkpoint::tokenizer): "" when it is usable,
// else why not; a checkpoint whose tokenizer the engine refuses is not usable.
std::string tokenizer_problem(const model::Checkpoint& ck, int& pieces) {
    try {
        pieces = ck.tokenizer().vocab_size();
        return "";
    } catch (const Error& e) {
        return e.what();
    }
}

// The value scan's findings, for people: "" when every value is a number.
std::string nonfinite_text(const io::ValueScan& scan) {
    if (scan.nonfinite.empty()) return "";
    std::ostringstream os;
    os << scan.nonfinite.size() << " tensor(s) hold NaN or infinity: ";
    for (size_t i = 0; i < scan.nonfinite.size() && i < 5; ++i) {
        const io::NonFiniteTensor& t = scan.nonfinite[i];
        os << (i ? ", " : "") << t.name << " (" << t.nan << " NaN, " << t.inf << " inf)";
    }
    if (scan.nonfinite.size() > 5) os << ", ...";
    return os.str();
}

json values_json(const std::optional<io::ValueScan>& scan) {
    if (!scan) return json();
    json bad = json::array();
    for (const io::NonFiniteTensor& t : scan->nonfinite) bad.push_back({{"name", t.name}, {"nan", t.nan}, {"inf", t.inf}});
    return {{"tensors", scan->tensors}, {"bytes", scan->bytes}, {"nonfinite", bad}};
}

json report_json(const model::Checkpoint& ck, const model::Summary& arch, const std::string& chat, double open_s,
                 const std::string& tok_problem, int pieces, const std::optional<io::ValueScan>& scan, bool usable) {
    const io::ParamCounts p = ck.params();
    const io::WeightBytes all = io::weight_bytes(p.total()), used = io::weight_bytes(p.used);
    const io::ValidationReport& r = ck.report();
    json j = arch.json;
    j["family"] = ck.family().name();
    const std::string& family_warning = ck.config().family_warning;
    j["family_warning"] = family_warning.empty() ? json() : json(family_warning);
    j["dir"] = ck.dir();
    j["shards"] = ck.store().files().size();
    j["tensor_bytes"] = ck.store().total_bytes();
    j["open_seconds"] = open_s;
    j["chat_template"] = chat;
    j["params"] = {{"llm", p.llm}, {"vision", p.vision}, {"audio", p.audio}, {"glue", p.glue},
                   {"total", p.total()}, {"used", p.used}};
    j["bytes"] = {{"bf16", all.bf16}, {"int8", all.int8}, {"q4", all.q4},
                  {"used_bf16", used.bf16}, {"used_int8", used.int8}, {"used_q4", used.q4}};
    j["validation"] = {{"usable", r.usable()}, {"checked", r.checked}, {"errors", r.errors},
                       {"missing", r.missing}, {"unexpected", r.unexpected}, {"unused", r.unused}};
    j["tokenizer"] = tok_problem.empty() ? json{{"usable", true}, {"pieces", pieces}}
                                         : json{{"usable", false}, {"error", tok_problem}};
    j["values"] = values_json(scan);
    j["usable"] = usable;
    j["quantized_tensors"] = quantized_tensors(ck);
    j["quantization"] = quantization_entry(ck);
    return j;
}

std::string report_text(const model::Checkpoint& ck, const model::Summary& arch, const std::string& chat,
                        double open_s, const std::string& tok_problem, int pieces,
                        const std::optional<io::ValueScan>& scan) {
    const io::ParamCounts p = ck.params();
    const io::WeightBytes all = io::weight_bytes(p.total()), used = io::weight_bytes(p.used);
    std::ostringstream os;
    os << "checkpoint " << ck.dir() << ": " << ck.store().files().size() << " shard(s), "
       << gigabytes(int64_t(ck.store().total_bytes())) << " of tensors, opened in " << open_s * 1e3 << " ms\n";
    os << "family  " << ck.family().name() << "\n";
    if (!ck.config().family_warning.empty()) os << "        warning: " << ck.config().family_warning << "\n";
    for (const auto& [label, line] : arch.lines) {
        std::string l = label;
        l.resize(std::max<size_t>(l.size() + 1, 8), ' ');
        os << l << line << "\n";
    }
    os << "params  LLM " << billions(p.llm) << ", vision " << billions(p.vision) << ", audio " << billions(p.audio)
       << ", glue " << billions(p.glue) << ", total " << billions(p.total()) << " (" << billions(p.used)
       << " used by inference)\n";
    os << "memory  bf16 " << gigabytes(all.bf16) << ", int8 " << gigabytes(all.int8) << ", 4-bit " << gigabytes(all.q4)
       << " (used only: " << gigabytes(used.bf16) << " / " << gigabytes(used.int8) << " / " << gigabytes(used.q4)
       << ")\n";
    if (const int64_t q = quantized_tensors(ck)) {
        os << "weights " << q << " linear weights stored quantised";
        os << " as " << quantization_name(ck);
        os << " (codes + F32 scales; the rest bf16)\n";
    }
    os << "chat    " << chat << "\n";
    const int64_t vocab = ck.config().llm.vocab;
    if (tok_problem.empty() && pieces == vocab) os << "tokens  tokenizer.model: " << pieces << " pieces, matching the config\n";
    else if (tok_problem.empty())
        os << "tokens  tokenizer.model: " << pieces << " pieces for the config's vocabulary of " << vocab
           << " (the model's ids past the pieces decode to nothing)\n";
    else os << "tokens  error: " << tok_problem << "\n";
    if (scan) {
        if (scan->nonfinite.empty())
            os << "values  all " << scan->tensors << " floating tensors (" << gigabytes(int64_t(scan->bytes))
               << ") hold numbers only\n";
        else
            os << "values  error: " << nonfinite_text(*scan) << "\n";
    }
    if (!tok_problem.empty() && ck.usable())
        os << "verdict unusable: its tokenizer\n";
    else if (scan && !scan->nonfinite.empty() && ck.usable())
        os << "verdict unusable: weights hold NaN or infinity\n";
    else
        os << "verdict " << ck.report().to_string() << "\n";
    return os.str();
}

}  // namespace

CheckpointReport inspect_checkpoint(const std::string& dir, const InspectOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    const model::Checkpoint ck = model::Checkpoint::open(dir);
    const double open_s = runtime::seconds_since(t0);
    const model::Family& family = ck.family();
    const model::Summary arch = family.describe(ck.config(), ck.store());
    std::string chat = "no chat_template in the checkpoint: the built-in " + family.name() + " prompt format";
    if (const auto warning = model::chat_template_warning(dir, family.chat_templates(), family.name()))
        chat = "warning: " + *warning;
    else if (model::checkpoint_chat_template(dir))
        chat = "the checkpoint's chat_template is the built-in " + family.name() + " prompt format";
    int pieces = 0;
    const std::string tok_problem = tokenizer_problem(ck, pieces);
    std::optional<io::ValueScan> scan;
    if (options.values) scan = io::scan_values(ck.store(), options.progress);
    CheckpointReport r;
    r.usable = ck.usable() && tok_problem.empty() && (!scan || scan->nonfinite.empty());
    r.text = report_text(ck, arch, chat, open_s, tok_problem, pieces, scan);
    r.json = io::json_text(report_json(ck, arch, chat, open_s, tok_problem, pieces, scan, r.usable), 2);
    return r;
}

}  // namespace vidi
