#!/usr/bin/env bash
# Runs the CUDA tests and micro-benchmarks on the GPU machine from binaries built
# elsewhere and carried in .dev/ (test_cuda, cuda_micro, and the bundle of
# tools/device_bundle.sh for test_backend, whose CUDA cases check every op). Logs go to $OUT
# (or ./cuda_out).
#   bench/cuda_device_run.sh [tests|bench|all]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-cuda_out}
mkdir -p "$out"
what=${1:-all}

{ cat /etc/os-release | head -2; ldd --version | head -1; nvidia-smi; } 2>&1 | tee "$out/machine.txt"

# cuBLASLt comes from the machine's CUDA toolkit, or else from the pip wheels beside torch.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [ -e "$d/libcublasLt.so.13" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
done
if ! ldd .dev/test_cuda | grep -q "libcublasLt.so.13 => /"; then
  lib=$(find / -name 'libcublasLt.so.13' -not -path '/proc/*' 2>/dev/null | head -1)
  [ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib"):${LD_LIBRARY_PATH:-}"
fi
ldd .dev/test_cuda | grep -E "cublas|not found" | tee -a "$out/machine.txt"

rc=0
if [ "$what" = tests ] || [ "$what" = all ]; then
  .dev/test_cuda --gtest_output=xml:"$out/test_cuda.xml" 2>&1 | tee "$out/test_cuda.log" | grep -vE "^\[ +(RUN|OK) " 
  rc=${PIPESTATUS[0]}
  echo "test_cuda exit code $rc"
  # The backend suite's CUDA cases (the CPU ones run everywhere).
  sh .dev/vidi-run test_backend --gtest_filter='*/cuda*' --gtest_output=xml:"$out/test_backend.xml" 2>&1 |
    tee "$out/test_backend.log" | grep -vE "^\[ +(RUN|OK) "
  rc_ops=${PIPESTATUS[0]}
  echo "test_backend (cuda) exit code $rc_ops"
  [ "$rc_ops" -ne 0 ] && rc=$rc_ops
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  .dev/cuda_micro 2>&1 | tee "$out/cuda_micro.log"
fi
if [ "$what" = sanitize ] || [ "$what" = all ]; then
  # Out-of-bounds and uninitialised reads in the kernels, on the small cases.
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  timeout 240 "$sanitizer" --tool memcheck --print-limit 20 sh .dev/vidi-run test_backend \
    --gtest_filter='Backends/Layout.*/cuda_*:Backends/Elementwise.*/cuda_*:Backends/Rope.*/cuda_*:Backends/Attention.ManyKeys*/cuda_*:Backends/Attention.NoKeys*/cuda_*:Backends/Attention.Decode*/cuda_*' \
    2>&1 | tail -40 | tee "$out/sanitizer.log"
fi
exit $rc
