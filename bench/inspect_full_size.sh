#!/usr/bin/env bash
# Full-size checkpoint benchmark: writes a random Vidi1.5-9B checkpoint (~21 GB) with
# `vidi make-checkpoint --preset vidi1.5-9b`, then times `vidi inspect` on it, cold (the
# shards' pages evicted from the page cache with posix_fadvise DONTNEED, our files only)
# and warm. Usage: bench/inspect_full_size.sh [OUT_DIR (default /work/bigckpt)] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
VIDI=${VIDI:-build/src/vidi}
OUT=${1:-/work/bigckpt}
KEEP=${2:-}
[ -e "$OUT" ] && { echo "inspect_full_size: $OUT exists; remove it first" >&2; exit 1; }

echo "== make-checkpoint ($(date -u +%FT%TZ), $(nproc) cores)"
/usr/bin/time -f "wall %e s, max RSS %M kB" "$VIDI" make-checkpoint --preset vidi1.5-9b --out "$OUT" --seed 1
du -sh "$OUT"

evict() {  # drop only this checkpoint's pages from the page cache
  python3 - "$OUT" <<'PY'
import os, sys, glob
for f in glob.glob(os.path.join(sys.argv[1], "*")):
    if os.path.isfile(f):
        fd = os.open(f, os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
PY
}

evict
echo "== inspect, cold (shards evicted)"
/usr/bin/time -f "wall %e s, max RSS %M kB" "$VIDI" inspect "$OUT"
for i in 1 2 3; do
  echo "== inspect, warm #$i"
  /usr/bin/time -f "wall %e s, max RSS %M kB" "$VIDI" inspect "$OUT" | grep -E "checkpoint|params|verdict"
done
"$VIDI" inspect --json "$OUT" | python3 -c "import json,sys; j=json.load(sys.stdin); print('llm params', j['params']['llm'], 'usable', j['usable'])"
[ "$KEEP" = "--keep" ] || { rm -rf "$OUT"; echo "removed $OUT"; }
