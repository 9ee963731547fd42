// libFuzzer: every model family's retrieval answer parser (SPEC §7) on arbitrary model
// output. Byte 0 picks the video's duration; every range it returns must lie in [0, duration] with start <= end.
#include <cmath>
#include <cstdlib>
#include <string>

#include "model/family.h"
#include "vidi/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static const double durations[] = {12.012, 0.0, 3600.5, 1e-3, 86400.0 * 365};
    const double duration = durations[data[0] % 5];
    const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        for (const vidi::model::Family* family : vidi::model::families())
            for (const auto& r : family->parse_ranges(text, duration))
                if (!(r.start >= 0 && r.start <= r.end && r.end <= duration)) std::abort();
    } catch (const vidi::Error&) {
    }
    return 0;
}
