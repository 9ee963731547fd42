#!/usr/bin/env bash
# Issue 5's request and decoding step as an A/B on the GPU machine: this bundle's `vidi`
# against other builds (VARIANTS: "name:file" pairs, each file an xz-compressed `vidi` of
# another commit, built and bundled the same way) or against itself with an environment
# setting ("name:env:VAR=value") on the 10-minute 720p video with the
# full-size random checkpoint, bf16 weights and media K/V, two questions of TOKENS tokens
# each. Runs alternate (variants, new, variants, new, ...) so that drift on the machine hits
# all. Prints each run's encode and "N tokens in S s" lines: a step is S / (N − 1), the first
# token coming from the prefill.
# Usage there: OUT=dir VARIANTS="base:.dev/base/vidi.xz nograph:env:VIDI_CUDA_GRAPHS=0" ROUNDS=2 TOKENS=40 \
#   bash bench/gpu_step.sh
set -uo pipefail
source bench/gpu_common.sh
ROUNDS=${ROUNDS:-2}
TOKENS=${TOKENS:-40}
stamp "device"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
V --version > /dev/null  # unpacks the bundle
names=""
declare -A envs
for v in ${VARIANTS:-}; do
  name=${v%%:*} what=${v#*:}
  if [[ $what == env:* ]]; then
    envs[$name]=${what#env:}
  else
    xz -dc "$what" > /tmp/vidi/bin/vidi_$name && chmod +x /tmp/vidi/bin/vidi_$name || continue
  fi
  names="$names $name"
done
if [ ! -d $CK ]; then
  stamp "full-size checkpoint"
  V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > "$W/make_ckpt.log" 2>&1 || tail -5 "$W/make_ckpt.log"
fi
run() {
  local prog=$1 tag=$2 setting=${3:-VIDI_STEP_AB=1}
  with_mem $tag env $setting sh .dev/vidi-run $prog retrieve --backend cuda --weights bf16 --media-kv bf16 --model $CK \
    --video $M/v10m_720p.mp4 --query "slicing onion" --query "a person opens the fridge" \
    --max-new-tokens $TOKENS > "$W/$tag.txt" 2> "$W/$tag.err"
  grep -E "tokens in" "$W/$tag.err" | sed "s/^/[$tag] /"
  cp "$W/$tag.err" "$OUT/"
}
for r in $(seq $ROUNDS); do
  stamp "round $r"
  for name in $names; do
    if [ -n "${envs[$name]:-}" ]; then run vidi ${name}_$r "${envs[$name]}"; else run vidi_$name ${name}_$r; fi
  done
  run vidi new_$r
done
stamp "done"
