#!/usr/bin/env bash
# The CTest suite's GoogleTest programs on the GPU machine (issue 17: `ctest` passes there as
# well as in CI). Every test_* program of the bundle runs whole, as `ctest` runs its cases, with
# a GPU present: the CUDA cases run instead of being skipped, and `auto` backends pick CUDA.
# Not run here (they need the build tree's tools, not a GPU): browser_timeline (Node and a
# browser), install_and_package (cmake --install, CPack), the fuzzers (their seeds run in CI).
#
# The programs were built with VIDI_BINARY_DIR (default /work/main/build) and VIDI_SOURCE_DIR
# compiled in: that path is made to point at this tree, with the bundled `vidi` at
# build/src/vidi. The golden data travel as .dev/golden.tar.xz (tar -C ../shared -cJf ...
# golden) and are unpacked once into .stage/ (git-ignored: a warm machine keeps it between
# calls, so a later call may leave the archive behind). The bundle needs every test program and
# the ffmpeg CLI: BUNDLE_EXTRA=/usr/bin/ffmpeg tools/device_bundle.sh.
# Usage there: OUT=/some/dir [BUILD_DIR=/work/main/build] bash bench/gpu_ctest.sh
set -uo pipefail
source bench/gpu_common.sh
build=${BUILD_DIR:-/work/main/build}
stamp "device"; nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
V --version > /dev/null  # unpacks the bundle

stage=$PWD/.stage
if [ -f .dev/golden.tar.xz ] && [ ! -f $stage/golden/README.md ]; then
  mkdir -p $stage && tar -xJf .dev/golden.tar.xz -C $stage
fi
[ -f $stage/golden/README.md ] || { echo "gpu_ctest: no golden data (carry .dev/golden.tar.xz)"; exit 1; }
src=$(dirname "$build")
if [ "$(realpath -m "$src")" != "$PWD" ]; then
  [ -e "$src" ] && [ ! -L "$src" ] && { echo "gpu_ctest: $src exists and is not this tree"; exit 1; }
  mkdir -p "$(dirname "$src")" && ln -sfn "$PWD" "$src"
fi
mkdir -p "$build/src" && ln -sfn /tmp/vidi/bin/vidi "$build/src/vidi"
export VIDI_SHARED_DIR=$stage PATH=/tmp/vidi/bin:$PATH

total=0; failed=0
for t in /tmp/vidi/bin/test_*; do
  name=$(basename $t)
  stamp "$name"
  timeout 540 $t --gtest_brief=1 > $OUT/$name.log 2>&1
  rc=$?
  ran=$(grep -oE "^\[==========\] [0-9]+ tests? from" $OUT/$name.log | tail -1 | grep -oE "[0-9]+")
  skipped=$(grep -oE "^\[  SKIPPED \] [0-9]+" $OUT/$name.log | grep -oE "[0-9]+$")
  echo "$name rc=$rc tests=${ran:-?} skipped=${skipped:-0}"
  grep -E "^\[  FAILED  \]|Failure$" $OUT/$name.log | head -10
  total=$((total + ${ran:-0})); [ $rc -eq 0 ] || failed=$((failed + 1))
done
stamp "done: $total tests in the programs, $failed program(s) failed"
