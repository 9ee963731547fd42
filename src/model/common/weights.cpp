#include "model/common/weights.h"

#include "core/quantize.h"

namespace vidi::model {

WeightLoader::WeightLoader(const io::TensorStore& store, Backend& backend, LoadOptions options, std::string prefix)
    : store_(store), be_(backend), options_(options), prefix_(std::move(prefix)) {}

Tensor WeightLoader::checked(const std::string& name, const Shape& expected) const {
    const std::string full = prefix_ + name;
    VIDI_CHECK(store_.has(full), "checkpoint tensor '", full, "' is missing (expected shape ", shape_str(expected), ")");
    Tensor t = store_.get(full);
    VIDI_CHECK(t.shape() == expected, "checkpoint tensor '", full, "': expected shape ", shape_str(expected),
               ", found ", shape_str(t.shape()), " (does config.json match the checkpoint?)");
    VIDI_CHECK(dtype_is_float(t.dtype()), "checkpoint tensor '", full, "': expected a float dtype, found ",
               dtype_name(t.dtype()));
    return t;
}

Tensor WeightLoader::weight(const std::string& name, const Shape& expected) const {
    return be_.weight(checked(name, expected));
}

Tensor WeightLoader::f32_weight(const std::string& name, const Shape& expected) const {
    if (options_.f32_names) options_.f32_names->insert(prefix_ + name);
    return be_.f32_weight(checked(name, expected));
}

QTensor WeightLoader::stored_quantized(const std::string& full, const Shape& expected) const {
    if (std::string problem = io::check_quantized(store_, full, expected); !problem.empty()) fail("checkpoint ", problem);
    const Tensor codes = store_.get(full), scales = store_.get(full + io::kQuantScaleSuffix);
    const int bits = codes.dtype() == DType::i8 ? 8 : 4;
    return {codes, scales, bits, static_cast<int>(expected[1] / scales.dim(1))};
}

void WeightLoader::keep_fp8_copies(const std::vector<const QTensor*>& weights) const {
    if (!options_.fp8_copies) return;
    for (const QTensor* w : weights) be_.keep_fp8_copy(*w);
}

void WeightLoader::keep_fp8_copies_joined(const std::array<NormedLinear, 3>& qkv) const {
    if (options_.fp8_copies) be_.keep_fp8_copies_joined(qkv);
}

QTensor WeightLoader::linear(const std::string& name, const Shape& expected) const {
    VIDI_CHECK(expected.size() == 2, "linear weight '", prefix_, name, "' must be 2-D");
    const std::string full = prefix_ + name;
    if (options_.linear_names) options_.linear_names->insert(full);
    if (store_.has(full + io::kQuantScaleSuffix) && store_.has(full)) return be_.linear_weight(stored_quantized(full, expected));
    Tensor t = checked(name, expected);
    const QuantFormat& f = options_.linear_format;
    if (f.quantized() && f.fits(expected[1])) return be_.quantized_weight(t, f);
    return be_.linear_weight(QTensor(t));
}

Tensor WeightLoader::activation(const std::string& name, const Shape& expected) const {
    return be_.upload(checked(name, expected));
}

}  // namespace vidi::model
