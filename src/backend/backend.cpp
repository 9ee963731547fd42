#include "backend/backend.h"

namespace vidi {

#ifndef VIDI_WITH_CUDA
std::unique_ptr<Backend> make_cuda_backend(int, DType) {
    fail("this vidi was built without CUDA (configure with -DVIDI_CUDA=ON where nvcc is installed)");
}
bool cuda_available() { return false; }
#endif

DType parse_compute_dtype(const std::string& name) {
    if (name == "bf16") return DType::bf16;
    if (name == "fp16") return DType::f16;
    fail("unknown dtype '", name, "' (expected bf16 or fp16)");
}

std::unique_ptr<Backend> make_backend(const std::string& kind, int threads, DType gpu_dtype) {
    if (kind == "cpu") return make_cpu_backend(threads);
    if (kind == "auto") return cuda_available() ? make_cuda_backend(0, gpu_dtype) : make_cpu_backend(threads);
    if (kind == "cuda") return make_cuda_backend(0, gpu_dtype);
    if (kind.rfind("cuda:", 0) == 0) {
        int ordinal = -1;
        try {
            ordinal = std::stoi(kind.substr(5));
        } catch (...) {
        }
        VIDI_CHECK(ordinal >= 0, "bad backend '", kind, "' (expected cuda:N)");
        return make_cuda_backend(ordinal, gpu_dtype);
    }
    fail("unknown backend '", kind, "' (expected cpu, cuda, cuda:N or auto)");
}

}  // namespace vidi
