#include "app/server/sha256.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "vidi/error.h"

namespace vidi::server {

struct Sha256::Ctx {
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
    VIDI_CHECK(ctx_->md && EVP_DigestInit_ex(ctx_->md.get(), EVP_sha256(), nullptr) == 1,
               "SHA-256: OpenSSL init failed");
}

Sha256::~Sha256() = default;

void Sha256::feed(const void* data, size_t n) {
    VIDI_CHECK(EVP_DigestUpdate(ctx_->md.get(), data, n) == 1, "SHA-256: OpenSSL update failed");
}

std::string Sha256::hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    VIDI_CHECK(EVP_DigestFinal_ex(ctx_->md.get(), digest, &n) == 1, "SHA-256: OpenSSL final failed");
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += digits[digest[i] >> 4];
        out += digits[digest[i] & 15];
    }
    return out;
}

std::string sha256_fd(int fd, const HashProgress& progress) {
    Sha256 h;
    std::vector<char> buf(1 << 20);
    struct stat st {};
    const int64_t total = progress && fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
    off_t offset = 0;
    for (;;) {
        const ssize_t n = pread(fd, buf.data(), buf.size(), offset);
        if (n < 0 && errno == EINTR) continue;
        VIDI_CHECK(n >= 0, "read error while hashing");
        if (n == 0) break;
        h.feed(buf.data(), static_cast<size_t>(n));
        offset += n;
        if (progress) progress(offset, total);
    }
    return h.hex();
}

std::string sha256_bytes(const std::string& bytes) {
    Sha256 h;
    h.feed(bytes.data(), bytes.size());
    return h.hex();
}

}  // namespace vidi::server
