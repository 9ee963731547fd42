// libFuzzer: the AV1 sequence-header reader (media/av1_film_grain.h) on arbitrary extradata and
// packets, which a served file controls. It must stay inside the bytes and answer the same twice.
#include <cstdlib>

#include "media/av1_film_grain.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::optional<bool> a = vidi::media::av1_film_grain(data, size);
    if (a != vidi::media::av1_film_grain(data, size)) std::abort();
    return 0;
}
