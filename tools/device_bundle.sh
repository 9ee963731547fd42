#!/usr/bin/env bash
# Packs the `vidi` binary and the test executables of a build directory, with every shared
# library they load, so that they run on the GPU machine (a CUDA image with no Debian dev
# packages and a glibc we do not control).
#
#   tools/device_bundle.sh [BUILD_DIR] [OUT]      (defaults: build-bundle, .dev/bundle.tar.xz)
#   BUNDLE_EXTRA="/usr/bin/ffmpeg" tools/device_bundle.sh ...   (more programs to carry)
#   BUNDLE_PROGRAMS="vidi test_cuda" tools/device_bundle.sh ...  (only these of the build's)
#
# OUT unpacks to vidi/; it must live at /tmp/vidi, because the executables name the bundled
# loader /tmp/vidi/lib/ld-linux-x86-64.so.2 as their interpreter and find their libraries
# through RPATH $ORIGIN/../lib. So the bundle does not depend on the device's glibc or
# libstdc++, and LD_LIBRARY_PATH is left to the device's own CUDA libraries.
# On the device:   sh .dev/vidi-run vidi --help      (unpacks on first use, then runs)
#
# Not bundled (the device provides them): the NVIDIA driver (libcuda, libnvidia-*, and
# libnvcuvid, which FFmpeg's NVDEC decoding loads with dlopen like libcuda) and the
# large CUDA toolkit libraries (cuBLAS/cuBLASLt and friends, ~600 MB); libcudart is small and
# bundled so that its version matches the build. Large libraries that FFmpeg links but video
# decoding never calls (an AV1 encoder, ICU data, SVG, codec2) are replaced by stubs that
# export the same symbols and abort if ever called, which keeps the archive small.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$root/build-bundle}")
out=$(realpath -m "${2:-$root/.dev/bundle.tar.xz}")
prefix=/tmp/vidi

need() { command -v "$1" >/dev/null || { echo "device_bundle: '$1' is missing (apt-get install $2)" >&2; exit 1; }; }
need patchelf patchelf
need readelf binutils
need xz xz-utils
need gcc gcc

# The device provides these (driver, CUDA toolkit): never bundle them.
device_lib() {
  case "$1" in
    libcuda.so*|libnvidia-*|libnvcuvid.so*|libcublas.so*|libcublasLt.so*|libcudnn*|libnccl*|libcufft*|\
    libcusparse*|libcurand*|libcusolver*|libnvJitLink*|libnvrtc*|libcupti*) return 0 ;;
  esac
  return 1
}
# Linked by FFmpeg/libxml2 but never called when decoding video and audio: stubbed.
stub_lib() {
  # (codecs whose wrappers run init_static_data when FFmpeg lists codecs, such as libaom,
  # libx264 and libx265, are called at start-up and cannot be stubbed)
  case "$1" in
    libicudata.so*|libcodec2.so*|libSvtAv1Enc.so*|librsvg-2.so*) return 0 ;;
  esac
  return 1
}

exes=()
[ -x "$build/src/vidi" ] && exes+=("$build/src/vidi")
for t in "$build"/tests/test_* "$build"/bench/*; do
  [ -f "$t" ] && [ -x "$t" ] && exes+=("$t")
done
# BUNDLE_PROGRAMS="vidi test_cuda": only these of the build's programs (a smaller archive); a
# name the build does not have is an error, not a program missing on the GPU machine later.
if [ -n "${BUNDLE_PROGRAMS:-}" ]; then
  kept=()
  for e in "${exes[@]}"; do [[ " $BUNDLE_PROGRAMS " == *" $(basename "$e") "* ]] && kept+=("$e"); done
  for p in $BUNDLE_PROGRAMS; do
    found=0
    for e in "${kept[@]}"; do [ "$(basename "$e")" = "$p" ] && found=1; done
    [ $found = 1 ] || { echo "device_bundle: no program '$p' in $build (src/vidi, tests/test_*, bench/*)" >&2; exit 1; }
  done
  exes=("${kept[@]}")
fi
ours=("${exes[@]}")
# Other programs to carry (e.g. BUNDLE_EXTRA=/usr/bin/ffmpeg: the tests make media with it).
extras=()
for t in ${BUNDLE_EXTRA:-}; do extras+=("$t"); exes+=("$t"); done
[ ${#exes[@]} -gt 0 ] || { echo "device_bundle: no executables in $build (build src/vidi first)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/vidi/bin" "$stage/vidi/lib" "$stage/stubsrc"

# name -> path, from ldd over the executables (covers the whole closure).
declare -A where
for e in "${exes[@]}"; do
  while read -r name arrow path _; do
    if [ "$arrow" = "=>" ] && [ "$path" = "not" ]; then
      echo "device_bundle: $e needs $name, which is not found here" >&2; exit 1
    fi
    [ "$arrow" = "=>" ] && [ -n "$path" ] && where[$name]=$path
  done < <(ldd "$e")
done

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

make_stub() {  # soname path: a library exporting the same dynamic symbols, each one a trap
  local soname=$1 lib=$2 c="$stage/stubsrc/$1.c"
  {
    echo '#include <stdlib.h>'
    echo '#include <unistd.h>'
    echo "static void trap(void) { static const char m[] = \"vidi bundle: $soname is a stub and was called\\n\";"
    echo '  if (write(2, m, sizeof m - 1)) {} abort(); }'
    nm -D --defined-only -S "$lib" | awk '
      NF == 4 { size = ($2 ~ /^0+$/) ? "1" : "0x" $2; type = $3; name = $4 }
      NF == 3 { size = "1"; type = $2; name = $3 }
      NF < 3 { next }
      name ~ /@/ { sub(/@.*/, "", name) }
      name == "_init" || name == "_fini" || seen[name]++ { next }
      type ~ /^[TtWi]$/ { printf "void f%d(void) __asm__(\"%s\");\nvoid f%d(void) { trap(); }\n", NR, name, NR; next }
      type ~ /^[DdBbRrVvGgSu]$/ {
        printf "__attribute__((used)) char d%d[%s] __asm__(\"%s\");\n", NR, size, name }'
  } > "$c"
  gcc -shared -fPIC -O0 -w -Wl,-soname,"$soname" -o "$stage/vidi/lib/$soname" "$c"
}

# Walk DT_NEEDED from the executables, stopping at stubs and device libraries. Our own
# programs first; then the extra ones, whose libraries beyond ours and FFmpeg's own (text to
# speech, GPU filters, sound servers: ~60 MB that only unused filters and devices call) are
# stubbed.
declare -A done_lib
stubs=()
walk() {  # walk EXTRA EXE...
  local extra=$1; shift
  local queue=() name path
  for e in "$@"; do mapfile -t -O "${#queue[@]}" queue < <(needed "$e"); done
  while [ ${#queue[@]} -gt 0 ]; do
    name=${queue[0]}; queue=("${queue[@]:1}")
    [ -n "${done_lib[$name]:-}" ] && continue
    done_lib[$name]=1
    device_lib "$name" && continue
    case "$name" in ld-linux*) continue ;; esac  # the loader, copied below
    path=${where[$name]:-}
    [ -n "$path" ] || { echo "device_bundle: cannot resolve $name" >&2; exit 1; }
    if stub_lib "$name" || { [ "$extra" = 1 ] && ! ffmpeg_lib "$name"; }; then
      make_stub "$name" "$path"; stubs+=("$name"); continue
    fi
    cp -L "$path" "$stage/vidi/lib/$name"
    mapfile -t -O "${#queue[@]}" queue < <(needed "$path")
  done
}
ffmpeg_lib() { case "$1" in libavfilter.so*|libavdevice.so*|libpostproc.so*) return 0 ;; esac; return 1; }
walk 0 "${ours[@]}"
[ ${#extras[@]} -eq 0 ] || walk 1 "${extras[@]}"

# The loader the executables will name (ldd lists it by absolute path only).
loader=$(readelf -l "${exes[0]}" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
cp -L "$loader" "$stage/vidi/lib/ld-linux-x86-64.so.2"

for e in "${exes[@]}"; do
  b="$stage/vidi/bin/$(basename "$e")"
  cp "$e" "$b"
  strip --strip-unneeded "$b" 2>/dev/null || true
  patchelf --set-interpreter "$prefix/lib/ld-linux-x86-64.so.2" --force-rpath --set-rpath '$ORIGIN/../lib' "$b"
done
# A library with its own RUNPATH would hide the executables' RPATH from its dependencies.
for l in "$stage"/vidi/lib/*; do
  if readelf -d "$l" 2>/dev/null | grep -q '(RUNPATH)'; then patchelf --remove-rpath "$l"; fi
done
chmod u+w "$stage"/vidi/lib/*

cat > "$stage/vidi/run.sh" <<'EOF'
#!/bin/sh
# Runs a bundled program: /tmp/vidi/run.sh vidi --help   (or a test executable by name).
# Our own libraries come through RPATH; LD_LIBRARY_PATH only adds the device's CUDA libraries.
D=$(cd "$(dirname "$0")" && pwd)
[ "$D" = /tmp/vidi ] || { echo "run.sh: the bundle must be unpacked at /tmp/vidi (is $D)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARGS...]   (programs: $(ls "$D/bin" | tr '\n' ' '))" >&2; exit 2; }
prog=$1; shift
cuda=""
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, d, "lib") for d in sorted(os.listdir(p))))' 2>/dev/null); do
  [ -d "$d" ] && ls "$d"/libcublas*.so* >/dev/null 2>&1 && cuda="$cuda:$d"
done
drv=$(ldconfig -p 2>/dev/null | sed -n 's/.*libcuda\.so\.1 .*=> \(.*\)\/libcuda\.so\.1$/\1/p' | head -1)
export LD_LIBRARY_PATH="${cuda#:}${drv:+:$drv}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$D/bin/$prog" "$@"
EOF
chmod +x "$stage/vidi/run.sh"

mkdir -p "$(dirname "$out")"
# One stream with a dictionary larger than a program: every program embeds the same CUDA
# kernels (~17 MB each), which a 192 MiB window stores once (the four-program test bundle:
# 55 MB at xz -6, 40 MB so). The carried tree's limit is 64 MiB.
tar -C "$stage" -cf - vidi | xz -T1 --lzma2=preset=9,dict=192MiB > "$out"
cat > "$(dirname "$out")/vidi-run" <<EOF
#!/bin/sh
# Unpacks $(basename "$out") (beside this script) to /tmp/vidi on first use, then runs a program from it.
a="\$(dirname "\$0")/$(basename "$out")"
if [ ! /tmp/vidi/.unpacked -nt "\$a" ]; then
  rm -rf /tmp/vidi && tar -xJf "\$a" -C /tmp && touch /tmp/vidi/.unpacked || exit 1
fi
exec /tmp/vidi/run.sh "\$@"
EOF
chmod +x "$(dirname "$out")/vidi-run"

echo "device_bundle: $(basename "$out") $(du -h "$out" | cut -f1) — ${#exes[@]} executables ($(cd "$stage/vidi/bin" && ls | tr '\n' ' ')), $(ls "$stage/vidi/lib" | wc -l) libraries, stubs: ${stubs[*]:-none}" >&2
