#!/usr/bin/env bash
# The tiny Vidi-7B checkpoint and its golden files, made on the GPU machine's CPU in float64
# by bench/torch_reference.py (docs/vidi-7b.md). Everything lands in $OUT:
#   tiny-vidi7b/                              checkpoint (tools/make_tiny_vidi7b.py, seed 7)
#   tiny-vidi7b_{synth,dummy}.golden.safetensors  golden tensors (names: ../shared/golden/README.md)
#   tiny-vidi7b_{synth,dummy}.json            the reference's run record (prompt, ids, timings)
#   tiny-vidi7b_summary.json, self_check.json, parity_f32.txt, log.txt
# Inputs travel in .dev/vidi7b (git-ignored; name .dev in `carry`), made on the dev box:
#   mkdir -p .dev/vidi7b && cp ../shared/golden/{synth,dummy}.mp4 .dev/vidi7b/
#   for v in synth dummy; do ffmpeg -v error -nostdin -i .dev/vidi7b/$v.mp4 -vn -ac 1 -ar 16000 \
#     -acodec pcm_s16le -f s16le .dev/vidi7b/$v.s16le; done
# The audio comes from those files (the ffmpeg CLI, as the official load_audio; the GPU image
# has no ffmpeg CLI), frames from OpenCV (the same RGB24 bytes as the CLI, bench/RESULTS.md),
# durations as ffprobe prints them on the dev box. Runs in about a minute.
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/vidi7b-out}
M=${MEDIA:-.dev/vidi7b}
W=$(mktemp -d)
CK=$OUT/tiny-vidi7b
REF="python3 bench/torch_reference.py"
F64="--device cpu --dtype float64"
# forced_ids: pieces of an answer ("0.12-0.25, 0.40-0.43"), </s>, "\n", the first and last ids
FORCED=358,405,358,407,2,13,259,411,342,599,0,1
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

python3 tools/make_tiny_vidi7b.py --out "$CK" --seed 7
$REF --model "$CK" --self-check $F64 > "$OUT/self_check.json" || echo "SELF-CHECK FAILED (see above)"

for case in "synth|12.012|a moving colour pattern" "dummy|24.625|slicing onion"; do
  IFS='|' read -r v dur query <<< "$case"
  [ -f "$M/$v.mp4" ] || { echo "skip $v: $M/$v.mp4 missing"; continue; }
  echo "=== $v"
  $REF --model "$CK" --video "$M/$v.mp4" --audio-pcm "$M/$v.s16le" --duration "$dur" --query "$query" \
    --max-new-tokens 16 --forced-ids $FORCED $F64 --dump-media --dump "$W/$v.st" --timings "$OUT/tiny-vidi7b_$v.json"
  $REF --model "$CK" --text-only --question "Describe the scene." --max-new-tokens 16 $F64 --dump "$W/$v.text.st"
  python3 - "$W/$v.st" "$W/$v.text.st" "$OUT/tiny-vidi7b_$v.golden.safetensors" <<'PY'
import sys
sys.path.insert(0, "bench")
import torch
from torch_reference import st_open, st_save
merged = {**st_open(sys.argv[1]), **st_open(sys.argv[2])}
# golden files hold float32 (and int64 ids), as ../shared/golden
st_save(sys.argv[3], {k: (v.float() if v.is_floating_point() else v).clone() for k, v in merged.items()})
print(sys.argv[3], {k: list(v.shape) for k, v in merged.items()})
PY
  # the same pipeline in float32 against the float64 golden: expect ~1e-6 (pixels, mel: ~1e-7)
  $REF --model "$CK" --video "$M/$v.mp4" --audio-pcm "$M/$v.s16le" --duration "$dur" --query "$query" \
    --max-new-tokens 16 --device cpu --dtype float32 --golden "$OUT/tiny-vidi7b_$v.golden.safetensors" \
    2>&1 | grep parity | sed "s/^/$v f32: /" | tee -a "$OUT/parity_f32.txt"
done

python3 - "$OUT" <<'PY'
import json, os, sys
sys.path.insert(0, "bench")
from torch_reference import st_open
out, summary = sys.argv[1], {}
for v in ("synth", "dummy"):
    j = os.path.join(out, f"tiny-vidi7b_{v}.json")
    if not os.path.exists(j):
        continue
    r, g = json.load(open(j)), st_open(os.path.join(out, f"tiny-vidi7b_{v}.golden.safetensors"))
    summary[f"tiny-vidi7b_{v}"] = {
        "case": v, "prompt_text": r["prompt_text"], "duration_s": r.get("duration_s"),
        "frames": r.get("frames"), "mel_frames": r.get("mel_frames"),
        "image_token_grid": r.get("image_token_grid"), "audio_tokens": r.get("audio_tokens"),
        "prompt_ids": g["prompt_ids"].tolist(), "generated_ids": g["generated_ids"].tolist(),
        "min_margin": float(g["generated_margins"].min()),
        "text_generated_ids": g["text_generated_ids"].tolist(),
        "text_min_margin": float(g["text_generated_margins"].min()),
        "answer": r.get("answer"), "official_output": r.get("official_output")}
json.dump(summary, open(os.path.join(out, "tiny-vidi7b_summary.json"), "w"), indent=1)
print(json.dumps({k: {kk: vv for kk, vv in s.items() if kk not in ("prompt_ids",)} for k, s in summary.items()}, indent=1))
PY
du -sh "$OUT"/* | sort -h | tail -8
rm -rf "$W"
