#include "model/weights.h"

namespace vidi::model {

WeightLoader::WeightLoader(const io::TensorStore& store, Backend& backend, std::string prefix)
    : store_(store), be_(backend), prefix_(std::move(prefix)) {}

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

Tensor WeightLoader::activation(const std::string& name, const Shape& expected) const {
    return be_.upload(checked(name, expected));
}

}  // namespace vidi::model
