#!/usr/bin/env bash
# The first batches interleaved across the CPU decoders' lanes (FrameStream::start(true)) against
# the video's order (VIDI_INTERLEAVE_FRAMES=0), on the GPU machine in one call of about seven
# minutes on an H200 with all three steps (issue 20's encode target; ~90 s of it the checkpoint):
#   1. tiny-a on CUDA against its golden file, interleaved, in order and with `--decoder cpu`, and
#      the dumps compared bit for bit (image and audio tokens, logits: identical expected);
#   2. the full-size random checkpoint (fp8) on the 10-minute 720p video: requests alternating
#      interleaved/in order (three each), one with the default decoder, one of each profiled
#      (VIDI_PROFILE's "frames:" line: the first batch's time), PyTorch's reference in the same
#      call (bench/torch_reference.py), then one more of each after it.
# Inputs in .dev (bench/gpu_common.sh): bundle_*.tar.xz + vidi-run (vidi, test_cuda), tref/ or
# tref.tar.xz (tiny-a, synth.mp4 and its golden file), media/v10m_720p.mp4
# (tools/make_bench_media.sh), and the video's audio as 16 kHz s16le PCM for PyTorch, made by
# the bundle's ffmpeg when it has one, else carried as v10m.s16le.xz (xz of
# `ffmpeg -i v10m_720p.mp4 -vn -ac 1 -ar 16000 -f s16le`): with ffmpeg in the bundle, the
# video and tref do not fit the 64 MiB a call carries.
#   3. NVDEC (the default decoder) alone, as by default, against NVDEC with a CPU head of 4 lanes
#      and of the automatic count (VIDI_NVDEC_CPU_HEAD=4|auto: CPU lanes decode the first wave,
#      interleaved, while NVDEC's sessions open), rotating, one of each profiled. Step 1 adds
#      tiny-a's dump with NVDEC and the automatic head, compared bit for bit with the others.
# Usage there: OUT=/some/dir [STEPS="1 2 3"] bash bench/gpu_interleave.sh
set -uo pipefail
source bench/gpu_common.sh
STEPS=${STEPS:-1 2 3}
[ -d $G ] || tar -xJf .dev/tref.tar.xz -C .dev
exec > >(tee -a $OUT/interleave.log) 2>&1
stamp device; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader; nproc; lscpu | grep -m1 "Model name"
V --version > /dev/null
export PATH=/tmp/vidi/bin:$PATH
if want 2 || want 3; then
  ( t0=$(date +%s); V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > "$W/mk.log" 2>&1
    echo "make rc=$? s=$(( $(date +%s) - t0 ))" >> "$W/mk.log" ) &
  mk=$!
  if [ -f .dev/v10m.s16le.xz ]; then xz -dc .dev/v10m.s16le.xz > $W/v10m.s16le
  else sh .dev/vidi-run ffmpeg -nostdin -v error -y -i $M/v10m_720p.mp4 -vn -ac 1 -ar 16000 -f s16le $W/v10m.s16le; fi
fi
timeout 150 sh .dev/vidi-run test_cuda --gtest_filter='*CudaMemory*:*YuvRgb*:*RowInvariance*:*Fp8*' 2>&1 |
  grep -E '^\[  (PASSED|FAILED) |FAILED|tests ran' | head
if want 1; then
  stamp "tiny-a against golden: interleaved, in order, --decoder cpu"
  cuda_parity tiny_new $G/tiny-a $G/tiny-a_synth.golden.safetensors 2>&1 | tail -12
  VIDI_INTERLEAVE_FRAMES=0 cuda_parity tiny_old $G/tiny-a $G/tiny-a_synth.golden.safetensors 2>&1 | tail -12
  DUMP_ARGS="--decoder cpu" cuda_parity tiny_cpu $G/tiny-a $G/tiny-a_synth.golden.safetensors 2>&1 | tail -12
  VIDI_NVDEC_CPU_HEAD=auto DUMP_ARGS="--decoder nvdec" cuda_parity tiny_nvdec $G/tiny-a $G/tiny-a_synth.golden.safetensors 2>&1 | tail -12
  stamp "the dumps bit for bit"
  python3 - $W/tiny_new_synth_cuda.safetensors $W/tiny_old_synth_cuda.safetensors $W/tiny_cpu_synth_cuda.safetensors \
    $W/tiny_nvdec_synth_cuda.safetensors <<'PY'
import sys, numpy as np
from safetensors.numpy import load_file
a, b, c, d = (load_file(p) for p in sys.argv[1:5])
for k in sorted(set(a) & set(b)):
    same = lambda x: k in x and a[k].shape == x[k].shape and np.array_equal(a[k], x[k])
    print(f"{k:28s} {str(a[k].shape):18s} interleaved == in order: {same(b)}, == --decoder cpu: {same(c)}, == nvdec: {same(d)}")
PY
fi
if want 2; then
  wait $mk; tail -c 100 "$W/mk.log"; echo  # (a bare wait would wait for the tee above forever)
fi
run() {  # tag decoder [env...]
  local tag=$1 decoder=$2; shift 2
  env "$@" timeout 120 sh .dev/vidi-run vidi retrieve --backend cuda --model $CK --video $M/v10m_720p.mp4 \
    --compute fp8 --decoder $decoder --warm-up --query "slicing onion" --max-new-tokens 20 > "$W/$tag.out" 2> "$W/$tag.err"
  echo "[$tag] rc=$? md5=$(md5sum < "$W/$tag.out" | cut -c1-8) $(grep -E '^encoded|prefill .* tokens in' "$W/$tag.err" | tr '\n' ' ')"
}
profiled() {  # tag decoder [env...]: a run with VIDI_PROFILE=1, its profile lines kept
  local tag=$1 decoder=$2; shift 2
  run $tag $decoder VIDI_PROFILE=1 "$@"
  grep -E "frames:|profile: (siglip|whisper|media|device timeline|decoding step)" "$W/$tag.err" | head -12; cp "$W/$tag.err" $OUT/
}
if want 2; then
  stamp "requests: new = interleaved, old = in order"
  O="VIDI_INTERLEAVE_FRAMES=0"
  run new_1 cpu; run old_1 cpu $O; run new_2 cpu; run old_2 cpu $O; run new_3 cpu; run old_3 cpu $O; run auto_1 auto
  profiled new_prof cpu; profiled old_prof cpu $O
  stamp "PyTorch reference"
  timeout 200 python3 bench/torch_reference.py --model $CK --video $M/v10m_720p.mp4 --audio-pcm $W/v10m.s16le \
    --query "slicing onion" --max-new-tokens 20 --repeat-question --timings "$OUT/torch10m.json" > "$W/torch.log" 2>&1
  echo "torch rc=$?"; grep -E "timings|request_s" "$W/torch.log" "$OUT/torch10m.json" 2>/dev/null | head -4
  stamp "after PyTorch"
  run new_after cpu; run old_after cpu $O; run auto_after auto
fi
if want 3; then
  stamp "NVDEC: alone (the default), head4 = VIDI_NVDEC_CPU_HEAD=4, head = VIDI_NVDEC_CPU_HEAD=auto"
  H4="VIDI_NVDEC_CPU_HEAD=4" HA="VIDI_NVDEC_CPU_HEAD=auto"
  for i in 1 2 3; do run alone_$i auto; run head4_$i auto $H4; run head_$i auto $HA; done
  profiled alone_prof auto; profiled head4_prof auto $H4; profiled head_prof auto $HA
fi
stamp done
