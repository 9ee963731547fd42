#include "backend/backend.h"

namespace vidi {

#ifndef VIDI_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend(int) {
    fail("this vidi was built without CUDA (configure with -DVIDI_CUDA=ON where nvcc is installed)");
}
bool cuda_available() { return false; }
#endif

std::unique_ptr<Backend> make_backend(const std::string& kind, int threads) {
    if (kind == "cpu") return make_cpu_backend(threads);
    if (kind == "auto") return cuda_available() ? make_cuda_backend(0) : make_cpu_backend(threads);
    if (kind == "cuda") return make_cuda_backend(0);
    if (kind.rfind("cuda:", 0) == 0) {
        int ordinal = -1;
        try {
            ordinal = std::stoi(kind.substr(5));
        } catch (...) {
        }
        VIDI_CHECK(ordinal >= 0, "bad backend '", kind, "' (expected cuda:N)");
        return make_cuda_backend(ordinal);
    }
    fail("unknown backend '", kind, "' (expected cpu, cuda, cuda:N or auto)");
}

}  // namespace vidi
