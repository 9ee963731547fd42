#include "model/decoder.h"

namespace vidi::model {

size_t MediaKV::bytes() const {
    size_t n = 0;
    for (auto& t : k) n += t.nbytes();
    for (auto& t : v) n += t.nbytes();
    return n;
}

MediaKV Decoder::encode_media(const Tensor& tokens, const QuantFormat& kv_format, int64_t chunk) const {
    MediaKV kv = new_media_kv(tokens.dim(0), kv_format);
    encode_media_rows(kv, 0, tokens, chunk);
    return kv;
}

Tensor Decoder::forward(const std::vector<int32_t>& ids, TextCache& cache, const std::vector<const MediaKV*>& media,
                        bool all_logits) const {
    return backend().to_host(forward_on_device(ids, cache, media, all_logits));
}

}  // namespace vidi::model
