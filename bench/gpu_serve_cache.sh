#!/usr/bin/env bash
# `vidi serve` on the GPU machine with tiny-a: the disk cache file of an encoded video holds the
# tokens as the GPU keeps them (bf16), and a restarted server answers from it as the first did.
# Inputs travel in .dev (bench/gpu_common.sh). Usage there: OUT=dir bash bench/gpu_serve_cache.sh
set -uo pipefail
source bench/gpu_common.sh
V --version > /dev/null  # unpacks the bundle
CD=/tmp/vidi-cache; rm -rf $CD
serve() {
  sh .dev/vidi-run vidi serve --backend cuda --model $G/tiny-a --cache-dir $CD --media-root $PWD/$G --port 8123 > "$W/serve_$1.log" 2>&1 &
  pid=$!
  for i in $(seq 90); do curl -sf http://127.0.0.1:8123/health > /dev/null && return 0; sleep 1; done
  echo "server $1 did not come up"; tail -5 "$W/serve_$1.log"
}
ask() {
  for task in retrieval vqa; do
    curl -s -F video_path=$PWD/$G/synth.mp4 -F question="a moving colour pattern" -F task=$task \
      -F max_new_tokens=16 http://127.0.0.1:8123/inference > "$W/$1_$task.json"
  done
}
stamp "server a: encode, write the cache file"
serve a; ask a; kill -TERM $pid; wait $pid; echo "server a exit $?"
stamp "the cache file"
python3 - <<PY
import glob, json, os, struct
for f in glob.glob("$CD/*/*.vidi"):
    with open(f, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]; h = json.loads(fh.read(n))
    print(os.path.basename(f)[:16], os.path.getsize(f), "bytes",
          {k: (v["dtype"], v["shape"]) for k, v in h.items() if k != "__metadata__"})
PY
stamp "server b: restarted, answers from the disk cache"
serve b; ask b; kill -TERM $pid; wait $pid; echo "server b exit $?"
python3 - <<PY
import json
for task in ("retrieval", "vqa"):
    a, b = (json.load(open(f"$W/{s}_{task}.json")) for s in "ab")
    keys = [k for k in ("answer", "ranges", "token_ids") if k in a]
    print(task, "a:", a["timings"]["video_cache"], "b:", b["timings"]["video_cache"],
          "same answer:", all(a.get(k) == b.get(k) for k in keys))
PY
stamp "end"
