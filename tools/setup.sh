#!/usr/bin/env bash
# Installs the Debian 12 packages vidi needs (when missing) and builds it into ./build.
# CUDA: built when /usr/local/cuda/bin/nvcc (or nvcc on PATH) exists; -DVIDI_CUDA=OFF to skip.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config git ffmpeg
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
  libsentencepiece-dev sentencepiece nlohmann-json3-dev libopenblas-dev libfftw3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev libcpp-httplib-dev
  python3-pil python3-numpy  # python3-pil: tools/pil_reference.py (media test data)
  libssl-dev chromium  # libssl-dev: SHA-256 for the serve cache; chromium: tests/browser
  file)  # file: CPack finds the .deb's library dependencies with it (tests/install)
# Node.js for tests/browser (playwright-core) and tests/openai (the openai client): Debian's,
# unless a node/npm is already there.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cuda_args=()
if [ -x /usr/local/cuda/bin/nvcc ]; then
  cuda_args+=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${cuda_args[@]}" "$@" >/dev/null
cmake --build build -j "$(nproc)"
# playwright-core for the browser test and the openai client for tests/openai, exactly as
# locked in their package-lock.json.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
(cd tests/openai && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
