#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then a program built against the installed
# library with pkg-config opens the tiny checkpoint and answers a text-only turn; then CPack's
# .deb holds the same files and depends on the Debian libraries.
#   install_test.sh BUILD_DIR MODEL_DIR
set -euo pipefail
build=$(realpath "$1") model=$(realpath "$2")
tmp=$(mktemp -d "$build/install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
for f in bin/vidi include/vidi/vidi.h include/vidi/tensor.h include/vidi/error.h share/vidi/web/index.html \
         share/doc/vidi/vidi-serve.service; do
  [ -f "$prefix/$f" ] || { echo "missing after install: $f"; exit 1; }
done
lib=$(find "$prefix" -name libvidi.so.0 | head -1)
[ -n "$lib" ] || { echo "missing after install: libvidi.so.0"; exit 1; }
pcdir=$(dirname "$lib")/pkgconfig
"$prefix/bin/vidi" --help > /dev/null

cat > "$tmp/use.cpp" <<'CPP'
#include <vidi/vidi.h>
#include <cstdio>
int main(int argc, char** argv) {
    try {
        auto engine = vidi::Engine::open({.model_dir = argv[1], .backend = "cpu", .threads = 1});
        vidi::Answer a = engine->ask(nullptr, "Hello?", {.max_new_tokens = 3});
        std::printf("tokens=%zu range=%s\n", a.token_ids.size(), vidi::format_range({12.5, 19.9}).c_str());
        return a.token_ids.size() == 3 ? 0 : 1;
    } catch (const vidi::Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
CPP
# shellcheck disable=SC2046
g++ -o "$tmp/use" "$tmp/use.cpp" $(PKG_CONFIG_PATH=$pcdir pkg-config --define-prefix --cflags --libs vidi) \
    -Wl,-rpath,"$(dirname "$lib")"
out=$("$tmp/use" "$model")
echo "$out"
[ "$out" = "tokens=3 range=00:00:12-00:00:19" ] || { echo "unexpected output from the installed library"; exit 1; }

(cd "$build" && cpack -B "$tmp/pkg" > "$tmp/cpack.log" 2>&1) || { cat "$tmp/cpack.log"; exit 1; }
deb=$(ls "$tmp"/pkg/vidi_*.deb)
contents=$(dpkg-deb -c "$deb")
grep -q './usr/bin/vidi$' <<< "$contents" || { echo "the .deb has no /usr/bin/vidi"; exit 1; }
grep -q './usr/include/vidi/vidi.h$' <<< "$contents" || { echo "the .deb has no headers"; exit 1; }
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for p in libavformat libsentencepiece libopenblas; do
  [[ $depends == *"$p"* ]] || { echo "the .deb does not depend on $p"; exit 1; }
done
echo "install test passed: $(basename "$deb")"
