#!/usr/bin/env bash
# The whole pipeline on the GPU machine, in one call (see bench/RESULTS.md for the results):
#   1. tiny-a through the CUDA backend against the golden files (parity);
#   2. a full-size random Vidi1.5-9B checkpoint from `vidi make-checkpoint`;
#   3. retrieval on a 10-minute 720p video, two queries sharing one encoding, peak memory;
#   4. the PyTorch reference (bench/torch_reference.py) on the same video and checkpoint;
#   5. full-size parity: CUDA engine vs PyTorch reference logits on a 1-minute video;
#   6. peak memory for a 1-minute and a 1-hour video;
#   7. the memory planner under --gpu-memory caps (refusals and a run that fits).
# Inputs travel in .dev (bench/gpu_common.sh says what is there).
# Usage there: OUT=/some/dir [STEPS="0 1 2 3 4 5 6"] bash bench/gpu_e2e.sh
set -uo pipefail
source bench/gpu_common.sh
export PYTHONUNBUFFERED=1
STEPS=${STEPS:-0 1 2 3 4 5 6 7}
# Raw 16 kHz s16 audio for the reference (OpenCV there cannot read every AAC stream).
pcm() { local f=$M/$1.s16le; [ -f "$f" ] || gunzip -k "$f.gz"; echo "$f"; }

stamp "device"; df -h /tmp . | tail -2; nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
baseline=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits); echo "baseline_mib=$baseline"

if want 2; then
stamp "2. make-checkpoint (background)"
( t0=$(date +%s); sh .dev/vidi-run vidi make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > "$W/make_ckpt.log" 2>&1; echo "make rc=$? seconds=$(( $(date +%s) - t0 ))" >> "$W/make_ckpt.log" ) &
mk=$!
fi

if want 0; then
stamp "0. CUDA op tests"
timeout 120 sh .dev/vidi-run test_cuda 2>&1 | grep -E "^\[  (PASSED|FAILED)|FAILED|tests ran" | head -12
fi

if want 1; then
stamp "1. tiny-a parity on CUDA"
cuda_parity tiny $G/tiny-a $G/tiny-a_synth.golden.safetensors "Describe a kitchen scene."
fi

if want 2; then
wait $mk; tail -c 300 "$W/make_ckpt.log"; echo
V inspect $CK | tail -3
fi

if want 3; then
stamp "3. vidi retrieve, 10-minute 720p, two queries"
with_mem vidi10m V retrieve --backend cuda --model $CK --video $M/v10m_720p.mp4 \
  --query "slicing onion" --query "a person opens the fridge" --max-new-tokens 20 > "$W/vidi10m.txt" 2> "$W/vidi10m.err"
grep -E "frames|audio|media-kv|prefill  " "$W/vidi10m.err" | head -12; grep -vE "^\[" "$W/vidi10m.err" | tail -8
fi

if want 4; then
stamp "4. PyTorch reference, 10-minute 720p"
with_mem torch10m timeout 220 python3 bench/torch_reference.py --model $CK --video $M/v10m_720p.mp4 --audio-pcm "$(pcm v10m)" \
  --query "slicing onion" --max-new-tokens 20 --repeat-question --timings "$OUT/torch10m.json" > "$W/torch10m.log" 2>&1
tail -4 "$W/torch10m.log"; cat "$OUT/torch10m.json" 2>/dev/null | head -40
fi

if want 5; then
stamp "5. full-size parity on a 1-minute video (CUDA engine vs PyTorch, both bf16)"
with_mem vidi1m V dump -q --backend cuda --model $CK --video $M/v1m_720p.mp4 --query "slicing onion" \
  --frames 0 --forced-ids 100,200,300,400 --max-new-tokens 8 --out "$W/full_1m_cuda.safetensors"
for dt in bfloat16 float16 float32; do  # float16: the official inference's dtype
  timeout 150 python3 bench/torch_reference.py --model $CK --video $M/v1m_720p.mp4 --audio-pcm "$(pcm v1m)" \
    --query "slicing onion" --max-new-tokens 8 --dtype $dt --dump "$W/full_1m_torch_$dt.safetensors" > "$W/torch1m_$dt.log" 2>&1
  tail -1 "$W/torch1m_$dt.log"
done
echo "-- engine (CUDA, bf16) vs PyTorch float32:"
python3 bench/compare_dump.py "$W/full_1m_cuda.safetensors" "$W/full_1m_torch_float32.safetensors" \
  prompt_ids image_tokens audio_tokens prompt_logits generated_ids
echo "-- engine (CUDA, bf16) vs PyTorch bfloat16:"
python3 bench/compare_dump.py "$W/full_1m_cuda.safetensors" "$W/full_1m_torch_bfloat16.safetensors" \
  image_tokens audio_tokens prompt_logits
echo "-- engine (CUDA, bf16) vs PyTorch float16:"
python3 bench/compare_dump.py "$W/full_1m_cuda.safetensors" "$W/full_1m_torch_float16.safetensors" prompt_logits
echo "-- PyTorch float16 vs PyTorch float32:"
python3 bench/compare_dump.py "$W/full_1m_torch_float16.safetensors" "$W/full_1m_torch_float32.safetensors" prompt_logits
echo "-- PyTorch bfloat16 vs PyTorch float32:"
python3 bench/compare_dump.py "$W/full_1m_torch_bfloat16.safetensors" "$W/full_1m_torch_float32.safetensors" \
  image_tokens audio_tokens prompt_logits
fi

if want 6; then
stamp "6. 1-hour video, peak memory"
with_mem vidi1h timeout 150 sh .dev/vidi-run vidi retrieve --backend cuda --model $CK --video $M/v1h_90p.mp4 \
  --query "slicing onion" --max-new-tokens 20 > "$W/vidi1h.txt" 2> "$W/vidi1h.err"
grep -vE "^\[" "$W/vidi1h.err" | tail -6
with_mem vidi1m_retrieve V retrieve --backend cuda --model $CK --video $M/v1m_720p.mp4 \
  --query "slicing onion" --max-new-tokens 20 > "$W/vidi1mr.txt" 2> "$W/vidi1mr.err"
grep -vE "^\[" "$W/vidi1mr.err" | tail -3
fi

if want 7; then
stamp "7. memory planner: --gpu-memory caps"
for cap in 19GiB 30GiB 48GiB; do
  with_mem "cap_$cap" V retrieve -q --backend cuda --gpu-memory $cap --model $CK --video $M/v10m_720p.mp4 \
    --query "slicing onion" --max-new-tokens 20 > "$W/cap_$cap.txt" 2>&1
  echo "--gpu-memory $cap:"; grep -vE "^\[" "$W/cap_$cap.txt" | tail -2
done
fi

stamp "done"
