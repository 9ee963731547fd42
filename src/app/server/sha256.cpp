#include "app/server/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "vidi/error.h"

namespace vidi::server {
namespace {

// One EVP digest context; feed() any number of times, then hex().
class Sha256 {
public:
    Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
        VIDI_CHECK(ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1, "SHA-256: OpenSSL init failed");
    }
    void feed(const void* data, size_t n) {
        VIDI_CHECK(EVP_DigestUpdate(ctx_.get(), data, n) == 1, "SHA-256: OpenSSL update failed");
    }
    std::string hex() {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        VIDI_CHECK(EVP_DigestFinal_ex(ctx_.get(), digest, &n) == 1, "SHA-256: OpenSSL final failed");
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (unsigned i = 0; i < n; ++i) {
            out += digits[digest[i] >> 4];
            out += digits[digest[i] & 15];
        }
        return out;
    }

private:
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

}  // namespace

std::string sha256_file(const std::string& path) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
    VIDI_CHECK(f, "cannot read ", path);
    Sha256 h;
    std::vector<char> buf(1 << 20);
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) h.feed(buf.data(), n);
    VIDI_CHECK(!std::ferror(f.get()), "read error in ", path);
    return h.hex();
}

std::string sha256_bytes(const std::string& bytes) {
    Sha256 h;
    h.feed(bytes.data(), bytes.size());
    return h.hex();
}

}  // namespace vidi::server
