#!/usr/bin/env bash
# Vidi-7B on the GPU machine (docs/vidi-7b.md §12), in one call:
#   0. test_app's Vidi-7B cases on every backend there (CPU ≤ 1e-3, CUDA ≤ 2e-2 vs the golden);
#   1. tiny Vidi-7B through the CUDA backend against its golden file (compare_dump);
#   2. a full-size random Vidi-7B from `vidi make-checkpoint --preset vidi-7b` (assumed shapes);
#   3. retrieval on a 10-minute 720p video, peak memory;
#   4. the PyTorch reference (bench/torch_reference.py, family vidi-7b) on the same call;
#   5. the memory planner under --gpu-memory 19GiB.
# Inputs travel in .dev as for bench/gpu_e2e.sh (bench/gpu_common.sh), plus the repository's
# tests/data/vidi7b. Usage there: OUT=/some/dir [STEPS="0 1 2 3 4 5"] bash bench/gpu_vidi7b_e2e.sh
set -uo pipefail
source bench/gpu_common.sh
export PYTHONUNBUFFERED=1
STEPS=${STEPS:-0 1 2 3 4 5}
T=tests/data/vidi7b
CK7=$PWD/.ckpt-vidi7b
pcm() { local f=$M/$1.s16le; [ -f "$f" ] || gunzip -k "$f.gz"; echo "$f"; }

stamp "device"; nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader

if want 2; then
stamp "2. make-checkpoint --preset vidi-7b (background)"
( t0=$(date +%s); V make-checkpoint --preset vidi-7b --out $CK7 --seed 1 > "$W/make_ckpt7.log" 2>&1; echo "make rc=$? seconds=$(( $(date +%s) - t0 ))" >> "$W/make_ckpt7.log" ) &
mk=$!
fi

if want 0; then
stamp "0. Vidi-7B cases (cpu, cuda_bf16, cuda_fp16): test_app golden, test_runtime int4 media K/V"
timeout 300 sh .dev/vidi-run test_app --gtest_filter='*Vidi7bGolden*' 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED|vidi-7b|tests ran" | head -30
timeout 120 sh .dev/vidi-run test_runtime --gtest_filter='*Vidi7bMediaKv4*' 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED|Vidi-7B|tests ran" | head -12
fi

if want 1; then
stamp "1. tiny Vidi-7B parity on CUDA"
cuda_parity tiny7b $T/tiny-vidi7b $T/tiny-vidi7b_synth.golden.safetensors "Describe the scene."
fi

if want 2; then
wait $mk; tail -c 300 "$W/make_ckpt7.log"; echo
V inspect $CK7 | tail -4
fi

if want 3; then
stamp "3. vidi retrieve, 10-minute 720p"
with_mem vidi7b_10m V retrieve --backend cuda --model $CK7 --video $M/v10m_720p.mp4 \
  --query "slicing onion" --max-new-tokens 20 > "$W/vidi7b_10m.txt" 2> "$W/vidi7b_10m.err"
grep -E "frames|audio|media-kv|prefill  " "$W/vidi7b_10m.err" | head -12; grep -vE "^\[" "$W/vidi7b_10m.err" | tail -8
fi

if want 4; then
stamp "4. PyTorch reference (vidi-7b), 10-minute 720p"
with_mem torch7b_10m timeout 300 python3 bench/torch_reference.py --model $CK7 --video $M/v10m_720p.mp4 \
  --audio-pcm "$(pcm v10m)" --query "slicing onion" --max-new-tokens 20 --timings "$OUT/torch7b_10m.json" \
  > "$W/torch7b_10m.log" 2>&1
tail -4 "$W/torch7b_10m.log"; cat "$OUT/torch7b_10m.json" 2>/dev/null | head -40
fi

if want 5; then
stamp "5. memory planner: --gpu-memory 19GiB"
with_mem vidi7b_cap19 V retrieve -q --backend cuda --gpu-memory 19GiB --model $CK7 --video $M/v10m_720p.mp4 \
  --query "slicing onion" --max-new-tokens 20 > "$W/vidi7b_cap19.txt" 2>&1
grep -vE "^\[" "$W/vidi7b_cap19.txt" | tail -3
fi

stamp "done"
