#!/usr/bin/env bash
# Issue 20 on the GPU machine in one call: the 10-minute 720p request with --compute fp8 and
# 16bit, from the MP4 and from the same streams copied into MPEG-TS (decoded in lanes by the
# keyframes' byte positions since 2026-12-05), PyTorch (bench/torch_reference.py) in the same
# call, and `vidi inspect --values` on the full-size checkpoint. Inputs in .dev
# (bench/gpu_common.sh): the bundle with ffmpeg (BUNDLE_PROGRAMS=vidi
# BUNDLE_EXTRA=/usr/bin/ffmpeg tools/device_bundle.sh), vidi-run, media/v10m_720p.mp4
# (tools/make_bench_media.sh); ~63 MB with the tree. Usage there: OUT=DIR bash bench/gpu_request.sh
set -uo pipefail
source bench/gpu_common.sh
export PYTHONUNBUFFERED=1
stamp device; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader; nproc
( t0=$(date +%s); V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > "$W/mk.log" 2>&1; echo "make rc=$? s=$(( $(date +%s) - t0 ))" >> "$W/mk.log" ) &
mk=$!
sh .dev/vidi-run ffmpeg -nostdin -v error -y -i $M/v10m_720p.mp4 -c copy -f mpegts $W/v10m.ts
sh .dev/vidi-run ffmpeg -nostdin -v error -y -i $M/v10m_720p.mp4 -vn -ac 1 -ar 16000 -f s16le $W/v10m.s16le
ls -la $W/v10m.ts $W/v10m.s16le
wait $mk; tail -c 200 "$W/mk.log"; echo
run() {  # tag video compute [env]
  local tag=$1 video=$2 compute=$3; shift 3
  env "$@" timeout 120 sh .dev/vidi-run vidi retrieve --backend cuda --model $CK --video $video --compute $compute \
    --query "slicing onion" --max-new-tokens 20 > "$W/$tag.out" 2> "$W/$tag.err"
  echo "[$tag] rc=$? $(grep -E '^encoded|prefill .* tokens in' "$W/$tag.err" | tr '\n' ' ')"
}
stamp "runs"
run mp4_fp8_a $M/v10m_720p.mp4 fp8
run ts_fp8_a $W/v10m.ts fp8
run mp4_16_a $M/v10m_720p.mp4 16bit
run ts_16_a $W/v10m.ts 16bit
run mp4_fp8_b $M/v10m_720p.mp4 fp8
run ts_fp8_b $W/v10m.ts fp8
run mp4_fp8_prof $M/v10m_720p.mp4 fp8 VIDI_PROFILE=1
grep -E "frames:|siglip|whisper|media layers|encode" "$W/mp4_fp8_prof.err" | head -8
run ts_fp8_prof $W/v10m.ts fp8 VIDI_PROFILE=1
grep -E "frames:|siglip|whisper|media layers|encode" "$W/ts_fp8_prof.err" | head -8
stamp "PyTorch reference"
timeout 230 python3 bench/torch_reference.py --model $CK --video $M/v10m_720p.mp4 --audio-pcm $W/v10m.s16le \
  --query "slicing onion" --max-new-tokens 20 --repeat-question --timings "$OUT/torch10m.json" > "$W/torch.log" 2>&1
echo "torch rc=$?"; tail -3 "$W/torch.log"; cat "$OUT/torch10m.json" 2>/dev/null | head -30
stamp "after PyTorch"
run mp4_fp8_c $M/v10m_720p.mp4 fp8
run ts_fp8_c $W/v10m.ts fp8
stamp "inspect --values"
/usr/bin/time -f "inspect_values wall %e user %U sys %S" sh .dev/vidi-run vidi inspect --values $CK 2>&1 | grep -E "values|verdict|inspect_values"
stamp done
