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

std::vector<Tensor> Decoder::prefill_rows(const std::vector<std::vector<int32_t>>& prompts,
                                          const std::vector<TextCache*>& caches,
                                          const std::vector<const MediaKV*>& media) const {
    VIDI_CHECK(!prompts.empty() && caches.size() == prompts.size(), "prefill_rows: ", prompts.size(),
               " prompts for ", caches.size(), " caches");
    std::vector<Tensor> logits;
    for (size_t i = 0; i < prompts.size(); ++i)
        logits.push_back(forward_on_device(prompts[i], *caches[i], media, false));
    return logits;
}

Tensor Decoder::decode_rows(const std::vector<int32_t>& ids, const std::vector<TextCache*>& caches,
                            const std::vector<const MediaKV*>& media, RecordedRowsStep&) const {
    const int64_t B = static_cast<int64_t>(ids.size());
    VIDI_CHECK(B >= 1 && B <= kMaxStepRows && caches.size() == ids.size(), "decode_rows: ", ids.size(), " ids for ",
               caches.size(), " caches (1 to ", kMaxStepRows, " rows)");
    Backend& be = backend();
    Tensor logits = be.empty({B, vocab()}, DType::f32);
    for (int64_t b = 0; b < B; ++b) {
        Tensor row = logits.rows(b, b + 1);
        be.copy_(row, forward_on_device({ids[static_cast<size_t>(b)]}, *caches[static_cast<size_t>(b)], media, false));
    }
    return logits;
}

}  // namespace vidi::model
