#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang-14, sanitizers) in build-fuzz/ and runs each for
# SECONDS (default 30) from its seed corpus in fuzz/corpus/<name>/. New inputs go to a
# scratch corpus (the committed seeds stay as they are); a crash leaves its input in
# build-fuzz/artifacts/ and makes the script fail. Prints one summary line per harness.
#   fuzz/run.sh [SECONDS] [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(form safetensors config media_tokens answer chat framing av1_header)
CXX=${FUZZ_CXX:-clang++-14}
CC=${FUZZ_CC:-clang-14}
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (apt-get install clang-14 libclang-rt-14-dev libomp-14-dev)"; exit 1; }
build=${FUZZ_BUILD_DIR:-build-fuzz}
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_C_COMPILER="$CC" \
  -DVIDI_FUZZ=ON -DVIDI_CUDA=OFF -DVIDI_TESTS=OFF -DVIDI_BENCH=OFF ${FUZZ_CMAKE_ARGS:-} >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
cmake --build "$build" -j "${FUZZ_JOBS:-2}" --target "${names[@]/#/fuzz_}" >"$build/build.log" 2>&1 || { tail -40 "$build/build.log"; exit 1; }
mkdir -p "$build/artifacts"
failed=0
for name in "${names[@]}"; do
  work=$(mktemp -d)
  log="$build/fuzz_$name.log"
  set +e
  # ASan's leak check is off: the harnesses keep one engine/store for the whole run on purpose.
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$build/fuzz/fuzz_$name" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name-" "$work" "fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  corpus=$(ls "$work" | wc -l)
  rm -rf "$work"
  if [ $rc -ne 0 ]; then
    failed=1
    echo "fuzz: $name: FAILED after ${runs:-?} runs (exit $rc); input in $build/artifacts/; log $log"
    grep -m3 -E "ERROR: |runtime error|==ERROR|deadly signal" "$log" || true
  else
    echo "fuzz: $name: ${runs} runs in ${seconds} s, 0 crashes, $corpus new corpus inputs"
  fi
done
exit $failed
