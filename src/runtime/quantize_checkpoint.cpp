#include "runtime/quantize_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <vector>

#include "core/quantize.h"
#include "io/checkpoint.h"
#include "io/checkpoint_writer.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "model/checkpoint.h"

namespace fs = std::filesystem;

namespace vidi {

namespace {

struct Entry {
    std::string name;
    bool quantize = false;
    uint64_t bytes_out = 0;
};

// quantize() gives a group that held NaN or infinity a NaN scale.
bool has_nan_scale(const QTensor& q) {
    const std::vector<float> s = q.scales.to_f32_vector();
    return std::any_of(s.begin(), s.end(), [](float v) { return std::isnan(v); });
}

// Weights in other formats (PyTorch, TensorFlow, Flax, GGUF, ONNX) and their indexes: not
// copied, as the bf16 safetensors they would duplicate are not.
bool other_weight_file(const fs::path& p) {
    static const std::set<std::string> kExtensions = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5",
                                                      ".msgpack", ".gguf", ".onnx", ".safetensors"};
    return kExtensions.count(p.extension().string()) || p.filename().string().ends_with(".index.json");
}

// Everything else beside the weights (tokenizer, generation config, ...) is copied.
std::vector<fs::path> files_to_copy(const std::string& model_dir, uint64_t& bytes) {
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(model_dir)) {
        const std::string n = f.path().filename().string();
        if (!f.is_regular_file() || n == "config.json" || other_weight_file(f.path())) continue;
        files.push_back(f.path());
        bytes += f.file_size();
    }
    return files;
}

}  // namespace

QuantizeSummary quantize_checkpoint(const QuantizeOptions& o) {
    const QuantFormat format = parse_quant_format(o.weights);
    VIDI_CHECK(format.quantized(), "quantize: ", format.name(), " is not a quantised format (int8, int4, ...)");
    model::Checkpoint ckpt = model::Checkpoint::open(o.model_dir);
    ckpt.require_usable();
    const std::set<std::string> linear = ckpt.linear_weights();
    for (const std::string& name : linear)
        VIDI_CHECK(!ckpt.has(name + io::kQuantScaleSuffix), o.model_dir, " is already quantised (", name,
                   io::kQuantScaleSuffix, "); quantise the bf16 checkpoint instead");
    VIDI_CHECK(fs::absolute(o.out_dir).lexically_normal() != fs::absolute(o.model_dir).lexically_normal(),
               "quantize: --out must differ from --model");
    io::StagedDir staged(o.out_dir);  // OUT appears whole or not at all
    const fs::path out(staged.path());

    const io::TensorStore& store = ckpt.store();
    std::vector<Entry> entries;
    uint64_t total_in = 0, total_out = 0;
    for (const std::string& name : store.names()) {
        const io::TensorInfo& ti = store.info(name);
        Entry e{name};
        e.quantize = linear.count(name) && ti.shape.size() == 2 && format.fits(ti.shape[1]);
        e.bytes_out = e.quantize ? format.bytes(ti.shape[0], ti.shape[1])
                                 : uint64_t(shape_numel(ti.shape)) * dtype_size(ti.dtype);
        total_in += uint64_t(shape_numel(ti.shape)) * dtype_size(ti.dtype);
        total_out += e.bytes_out;
        entries.push_back(std::move(e));
    }
    uint64_t copied_bytes = 0;
    const std::vector<fs::path> copies = files_to_copy(o.model_dir, copied_bytes);
    io::require_free_space(out.string(), total_out + copied_bytes);
    // Shards in name order, each closed before it would exceed shard_bytes.
    std::vector<std::vector<const Entry*>> shards(1);
    uint64_t in_shard = 0;
    for (const Entry& e : entries) {
        if (!shards.back().empty() && in_shard + e.bytes_out > o.shard_bytes) shards.emplace_back(), in_shard = 0;
        shards.back().push_back(&e);
        in_shard += e.bytes_out;
    }

    QuantizeSummary s;
    s.format = format.name();
    nlohmann::json weight_map = nlohmann::json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
        const std::string file = io::shard_name(i, shards.size());
        io::SafetensorsWriter w((out / file).string());
        w.set_metadata("format", "pt");
        w.set_metadata("vidi_quantization", format.name());
        for (const Entry* e : shards[i]) {
            const io::TensorInfo& ti = store.info(e->name);
            if (!e->quantize) {
                w.declare(e->name, ti.dtype, ti.shape);
                continue;
            }
            const int64_t N = ti.shape[0], K = ti.shape[1];
            w.declare(e->name, format.bits == 8 ? DType::i8 : DType::u8, {N, format.bits == 8 ? K : K / 2});
            w.declare(e->name + io::kQuantScaleSuffix, DType::f32, {N, K / format.group_for(K)});
        }
        w.begin();
        for (const Entry* e : shards[i]) {
            const Tensor t = store.get(e->name);
            if (e->quantize) {
                const QTensor q = quantize(t, format);
                VIDI_CHECK(!has_nan_scale(q), "quantize: ", e->name, " holds NaN or infinity, which a quantised "
                           "copy would hide; `vidi inspect --values ", o.model_dir, "` lists such tensors");
                w.write(q.values.raw(), q.values.nbytes());
                w.write(q.scales.raw(), q.scales.nbytes());
                weight_map[e->name + io::kQuantScaleSuffix] = file;
                ++s.quantized;
            } else {
                w.write(t.raw(), t.nbytes());
                ++s.copied;
            }
            weight_map[e->name] = file;
            s.bytes_in += t.nbytes();
            s.bytes_out += e->bytes_out;
            if (o.progress) o.progress(s.bytes_in, total_in);
        }
        w.finish();
    }
    s.shards = static_cast<int>(shards.size());
    io::write_json_file((out / "model.safetensors.index.json").string(),
                        {{"metadata", {{"total_size", s.bytes_out}, {"vidi_quantization", format.name()}}},
                         {"weight_map", weight_map}});
    nlohmann::json config = io::read_json_file((fs::path(o.model_dir) / "config.json").string());
    config["vidi_quantization"] = {{"weights", format.name()}, {"bits", format.bits},
                                   {"group_size", format.group}, {"symmetric", true}};
    io::write_json_file((out / "config.json").string(), config);
    model::copy_tower_configs(config, o.model_dir, out.string());
    for (const fs::path& f : copies) {
        fs::copy_file(f, out / f.filename());
        fs::permissions(out / f.filename(), fs::perms::owner_write, fs::perm_options::add);
    }
    staged.commit();
    return s;
}

}  // namespace vidi
