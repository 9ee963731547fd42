#!/usr/bin/env bash
# Issue 20 on a Hopper: the towers' attention in one call. test_cuda's attention tests (each
# kernel against a double reference, the resident kernel byte for byte against the streaming
# one), `cuda_micro towers-attention` (the two kernels side by side), then the 10-minute 720p
# request, each with --warm-up (what a server's request sees): RUNS plain and one profiled with
# the CPU decoders, two with the default decoder (NVDEC where there is one); with STEPS
# containing "torch", PyTorch's request (bench/torch_reference.py) in the same call, then one
# more of each decoder.
# Inputs in .dev (bench/gpu_common.sh): the bundle with test_cuda, cuda_micro and ffmpeg
# (BUNDLE_PROGRAMS="vidi test_cuda cuda_micro" BUNDLE_EXTRA=/usr/bin/ffmpeg
# tools/device_bundle.sh), vidi-run, media/v10m_720p.mp4 (tools/make_bench_media.sh).
# STEPS "golden": tiny-a (.dev/tref: tiny-a, tiny-a_synth.golden.safetensors, synth.mp4) on CUDA
# against its golden file with the default decoder and with --decoder cpu.
# Usage there: OUT=DIR [RUNS=3] [STEPS="tests micro request torch"] bash bench/gpu_towers_attention.sh
set -uo pipefail
source bench/gpu_common.sh
STEPS=${STEPS:-tests micro request torch}
RUNS=${RUNS:-3}
stamp device; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader; nproc
if { want request || want torch; } && [ ! -f $CK/config.json ]; then
  ( t0=$(date +%s); V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > "$W/mk.log" 2>&1
    echo "make rc=$? s=$(( $(date +%s) - t0 ))" >> "$W/mk.log" ) &
fi
V --version > /dev/null  # unpacks the bundle
export PATH=/tmp/vidi/bin:$PATH
if want tests; then
  stamp tests
  timeout 300 test_cuda --gtest_filter='*Fp8*:*Attention*:*Paths*' --gtest_brief=1 > $OUT/tests.log 2>&1
  echo "test_cuda rc=$?"; grep -E "PASSED|FAILED|SKIPPED|Failure|Expected|Which is" $OUT/tests.log | head -20
fi
if want micro; then
  stamp micro
  timeout 120 cuda_micro towers-attention > $OUT/micro.log 2>&1
  echo "cuda_micro rc=$?"; grep -E "SigLIP|Whisper" $OUT/micro.log
fi
run() {  # tag decoder [env...]
  local tag=$1 decoder=$2; shift 2
  env "$@" timeout 120 sh .dev/vidi-run vidi retrieve --backend cuda --model $CK --video $M/v10m_720p.mp4 \
    --compute fp8 --decoder $decoder --warm-up --query "slicing onion" --max-new-tokens 20 > "$W/$tag.out" 2> "$W/$tag.err"
  echo "[$tag] rc=$? md5=$(md5sum < "$W/$tag.out" | cut -c1-8) $(grep -E '^encoded|prefill .* tokens in' "$W/$tag.err" | tr '\n' ' ')"
}
if want request; then
  wait; tail -c 200 "$W/mk.log" 2>/dev/null; echo
  stamp "request (--warm-up)"
  for r in $(seq 1 $RUNS); do run cpu_$r cpu; done
  run cpu_prof cpu VIDI_PROFILE=1
  grep -E "frames:|siglip|whisper|media layers|outside" "$W/cpu_prof.err" | head -12
  cp "$W/cpu_prof.err" $OUT/
  run auto_1 auto
  run auto_2 auto
fi
if want golden; then  # tiny-a on CUDA against its golden file: the default decoder and the CPU decoders' ring
  stamp "golden (.dev/tref)"
  cuda_parity tiny_auto $G/tiny-a $G/tiny-a_synth.golden.safetensors 2>&1 | tail -12
  DUMP_ARGS="--decoder cpu" cuda_parity tiny_cpu $G/tiny-a $G/tiny-a_synth.golden.safetensors 2>&1 | tail -12
  python3 bench/compare_dump.py "$W/tiny_cpu_synth_cuda.safetensors" "$W/tiny_auto_synth_cuda.safetensors" \
    image_tokens audio_tokens prompt_logits 2>&1 | tail -4
fi
if want torch; then
  stamp "PyTorch reference"
  sh .dev/vidi-run ffmpeg -nostdin -v error -y -i $M/v10m_720p.mp4 -vn -ac 1 -ar 16000 -f s16le $W/v10m.s16le 2>/dev/null
  timeout 300 python3 bench/torch_reference.py --model $CK --video $M/v10m_720p.mp4 --audio-pcm $W/v10m.s16le \
    --query "slicing onion" --max-new-tokens 20 --repeat-question --timings "$OUT/torch10m.json" > "$W/torch.log" 2>&1
  echo "torch rc=$?"; grep -E "timings|request_s|device_name" "$W/torch.log" "$OUT/torch10m.json" 2>/dev/null | head -6
  stamp "after PyTorch"
  run cpu_after cpu
  run auto_after auto
fi
stamp done
