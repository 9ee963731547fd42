#!/usr/bin/env bash
# A first look on the GPU machine at code that has never run there, in one short call:
#   1. test_backend (every op on cpu, cuda_bf16 and cuda_f16 against double references) and
#      test_cuda (the CUDA backend's own tests: paths, memory, recorded steps, in both dtypes);
#   2. tiny-a through the CUDA backend against the golden file, --dtype bf16 and fp16;
#   3. tiny-a media tokens of a metadata-rotated lossless file equal the physically rotated one's;
#   4. the tiny Vidi-7B golden files (bench/gpu_vidi7b_golden.sh, float64 on the CPU).
# Inputs in .dev (bench/gpu_common.sh): bundle.tar.xz + vidi-run, tref/ (tiny-a, its synth
# golden file, synth.mp4, rot_meta.mp4, rot_phys.mp4), vidi7b/. Usage there: OUT=… bash bench/gpu_smoke.sh
set -uo pipefail
source bench/gpu_common.sh
t0=$(date +%s)
stamp "device"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

stamp "1. test_backend and test_cuda"
for t in test_backend test_cuda; do
  timeout 240 sh .dev/vidi-run $t --gtest_brief=1 > "$OUT/$t.log" 2>&1; echo "$t rc=$?"
  grep -E "^\[  (PASSED|FAILED)|FAILED|tests? ran" "$OUT/$t.log" | head -40
done

stamp "2. tiny-a on CUDA vs golden"
G_ST=$G/tiny-a_synth.golden.safetensors
forced=$(python3 -c "from safetensors.numpy import load_file; print(','.join(str(int(x)) for x in load_file('$G_ST')['forced_ids']))")
for dt in bf16 fp16; do
  V dump -q --backend cuda --dtype $dt --model $G/tiny-a --video $G/synth.mp4 --query "a moving colour pattern" \
    --frames 0,11 --forced-ids "$forced" --max-new-tokens 16 --out $W/tiny_$dt.safetensors 2> $W/tiny_$dt.err \
    || { echo "dump $dt failed:"; tail -5 $W/tiny_$dt.err; continue; }
  echo "-- tiny-a, CUDA $dt vs golden (float64):"
  python3 bench/compare_dump.py $W/tiny_$dt.safetensors $G_ST image_tokens audio_tokens prompt_logits forced_logits \
    generated_ids prompt_ids pixel_values_frame0 pixel_values_frame11
done

stamp "3. rotation on CUDA (tiny-a media tokens, metadata-rotated vs physically rotated)"
for f in rot_meta rot_phys; do
  V dump -q --backend cuda --model $G/tiny-a --video $G/$f.mp4 --query "a test" --max-new-tokens 2 --out $W/$f.safetensors \
    || echo "dump $f failed"
done
python3 bench/compare_dump.py $W/rot_meta.safetensors $W/rot_phys.safetensors image_tokens pixel_values_frame0

stamp "4. tiny Vidi-7B golden files (CPU, float64)"
OUT7=$W/vidi7b timeout 300 env OUT=$W/vidi7b bash bench/gpu_vidi7b_golden.sh > $W/v7.log 2>&1; echo "vidi7b rc=$?"
tail -25 $W/v7.log
sha256sum $W/vidi7b/tiny-vidi7b/*.safetensors | sed "s|$W/||"
cp $W/vidi7b/tiny-vidi7b_synth.golden.safetensors $W/vidi7b/tiny-vidi7b_summary.json $W/vidi7b/self_check.json \
   $W/vidi7b/parity_f32.txt "$OUT/" 2>/dev/null
cp $W/vidi7b/log.txt "$OUT/vidi7b_log.txt" 2>/dev/null
stamp "done in $(( $(date +%s) - t0 )) s"
