// libFuzzer: the request-form reader of `vidi serve` (multipart parser, JSON and urlencoded
// bodies, JSON documents with a data: URL, every limit, the upload store) on arbitrary bodies.
// Input: byte 0 sets the size of the pieces the body arrives in, then the Content-Type up to
// the first '\n' ("document:" before it reads the body as a JSON document, BodyKind::document),
// then the body.
// Besides crashes it checks that nothing of an upload stays in the store once the form is gone.
#include <cstdlib>
#include <string>

#include "app/server/form.h"
#include "app/server/http_error.h"
#include "fuzz_support.h"

using namespace vidi::server;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static UploadStore store(vidi::fuzz::make_temp_dir("form"), 256 << 10, 4, 64 << 10);
    if (size < 1) return 0;
    const size_t piece = 1 + data[0] * 16;
    const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
    const size_t eol = rest.find('\n');
    std::string type = rest.substr(0, eol);
    const bool document = type.rfind("document:", 0) == 0;
    if (document) type = type.substr(9);
    const std::string body = eol == std::string::npos ? "" : rest.substr(eol + 1);
    ServerLimits limits;
    limits.max_upload_bytes = 64 << 10;
    limits.max_fields = 8;
    limits.max_field_bytes = 1024;
    limits.max_fields_bytes = 4096;
    limits.part_header_bytes = 512;
    limits.drain_bytes = 4096;
    try {
        Form form = parse_form_bytes(type, body, piece, limits, store,
                                     document ? BodyKind::document : BodyKind::fields);
        if (form.video && form.video->file->bytes() > limits.max_upload_bytes) std::abort();
        if (form.fields.size() > static_cast<size_t>(limits.max_fields)) std::abort();
    } catch (const HttpError& e) {
        if (e.status() != 400 && e.status() != 413 && e.status() != 503 && e.status() != 507) std::abort();
    }
    if (store.bytes() != 0 || store.files() != 0) std::abort();  // an upload outlived its form
    return 0;
}
