#!/usr/bin/env bash
# Issue 21 on the GPU machine: 4-bit media K/V (--media-kv int4).
#   T  the int4 kernels' tests (test_cuda CudaMediaKv4.* in bf16 and fp16, with the attention,
#      quantisation and step-graph suites they touch), tiny-a with int4 K/V against the golden
#      file on CUDA in both dtypes (test_runtime MediaKv4Decoder when the bundle has it, and
#      `vidi dump` figures beside int8)
#   K  cross-attention kernel speed, bf16 / int8 / int4 K/V (cuda_micro decode: one query over
#      50000 keys, a 40-token prompt over an hour's 126000)
#   S  compute-sanitizer memcheck over the int4 kernel tests (opt-in: slow)
#   A  an hour of 720p (3600 frames: 90000 visual + 36000 audio tokens) answered under
#      --gpu-memory 19GiB --weights int4 --media-kv int4, nothing thinned: the planner's line,
#      peak GPU memory (nvidia-smi every 100 ms), encode time, decoding step
#   P  the same hour with the planner's own choices (--gpu-memory 19GiB alone; opt-in)
#   B  accuracy at full size on the 1-minute video against bf16 media K/V (same weights):
#      prompt-logits relative error and top-1 agreement over 24 teacher-forced steps, int8 and
#      int4, in bf16 and fp16
# The full-size random checkpoint is $PWD/.ckpt-9b (made in the background unless `vidi
# inspect` passes there). Inputs travel in .dev (bench/gpu_common.sh): the bundle, media
# (tools/make_bench_media.sh v1m_720p v1h_720p), tref (tiny-a, tiny-a_synth.golden.safetensors;
# tiny-a_dummy.golden.safetensors too for test_runtime). Under 6 minutes with STEPS="T K A B".
# Usage there: OUT=dir STEPS="T K A B" bash bench/gpu_kv4.sh
set -uo pipefail
source bench/gpu_common.sh
STEPS=${STEPS:-T K A B}
t_start=$(date +%s)
stamp "device"; nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
V --version > /dev/null  # unpacks the bundle
if { want A || want P || want B; } && ! V inspect $CK > /dev/null 2>&1; then
  ( t0=$(date +%s); rm -rf $CK; V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > $W/make_ckpt.log 2>&1
    echo "make rc=$? seconds=$(( $(date +%s) - t0 ))" >> $W/make_ckpt.log ) &
  mk=$!
fi
ckpt_ready() { if [ -n "${mk:-}" ]; then wait $mk; tail -1 $W/make_ckpt.log; mk=; fi; }
G_ST=$G/tiny-a_synth.golden.safetensors

if want T; then
  stamp "T test_cuda: int4 media K/V, and the suites they touch"
  timeout 200 sh .dev/vidi-run test_cuda \
    --gtest_filter='*CudaMediaKv4*:*CudaRowInvariance*:*CudaPaths*:*CudaStepGraph*' > $OUT/test_cuda_kv4.log 2>&1
  echo "rc=$?"; grep -E "^\[  (PASSED|FAILED)|^\[  FAILED|tests ran|Failure" $OUT/test_cuda_kv4.log | head -20
  timeout 200 sh .dev/vidi-run test_backend --gtest_filter='*/Attention.*/cuda_*:*/Quant.*/cuda_*' \
    > $OUT/test_backend_kv4.log 2>&1
  echo "rc=$?"; grep -E "^\[  (PASSED|FAILED)|^\[  FAILED|tests ran|Failure" $OUT/test_backend_kv4.log | head -20
  if [ -x /tmp/vidi/bin/test_runtime ]; then
    stamp "T test_runtime MediaKv4Decoder (tiny-a vs golden; CUDA cases in bf16 and fp16)"
    mkdir -p $W/shared/golden
    for f in $G/tiny-a $G/tiny-a_*.golden.safetensors; do ln -sfn "$PWD/$f" $W/shared/golden/; done
    [ -e $W/shared/golden/tiny-a_dummy.golden.safetensors ] ||
      echo "note: carry tiny-a_dummy.golden.safetensors in .dev/tref (the test reads both golden files)"
    VIDI_SHARED_DIR=$W/shared timeout 120 sh .dev/vidi-run test_runtime --gtest_filter='*MediaKv4Decoder*' 2>&1 |
      grep -E "int4 media K/V|OK|FAILED|Failure|PASSED"
  fi
  stamp "T tiny-a on CUDA vs golden (float64): media K/V bf16, int8, int4 in bf16 and fp16"
  forced=$(python3 -c "from safetensors.numpy import load_file; print(','.join(str(int(x)) for x in load_file('$G_ST')['forced_ids']))")
  echo "| tiny-a, synth | prompt_logits rel | prompt top-1 | forced_logits rel | forced top-1 |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for dt in bf16 fp16; do
    for kv in bf16 int8 int4; do
      V dump -q --backend cuda --dtype $dt --weights bf16 --media-kv $kv --model $G/tiny-a --video $G/synth.mp4 \
        --query "a moving colour pattern" --forced-ids "$forced" --max-new-tokens 16 --out $W/tiny_${dt}_$kv.safetensors \
        && python3 bench/compare_dump.py --row "$dt, media K/V $kv" $W/tiny_${dt}_$kv.safetensors $G_ST
    done
  done
fi

if want K; then
  stamp "K cross-attention over media K/V: bf16, int8, int4"
  timeout 60 sh .dev/vidi-run cuda_micro decode 2>&1 | tail -8
fi

if want S; then
  stamp "S compute-sanitizer memcheck, int4 kernel tests"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  timeout 240 "$sanitizer" --tool memcheck --target-processes all --print-limit 20 sh .dev/vidi-run test_cuda \
    --gtest_filter='*CudaMediaKv4.DeviceQuant*:*CudaMediaKv4.FewRows*:*CudaMediaKv4.Recorded*:*CudaMediaKv4.Bad*' \
    2>&1 | tail -12
fi

hour() {  # tag, then the run's flags
  local tag=$1; shift
  with_mem $tag V retrieve --backend cuda --gpu-memory 19GiB "$@" --model $CK --video $M/v1h_720p.mp4 \
    --query "slicing onion" --max-new-tokens 20 > $W/$tag.txt 2> $W/$tag.err
  grep -vE "^\[ *[0-9.]+s\]" $W/$tag.err | tail -8; cp $W/$tag.err $OUT/
  if grep -q "frame in" $W/$tag.err; then echo "[$tag] THINNED: frames were dropped"; else echo "[$tag] every frame kept"; fi
  awk '/^query .*tokens in/ { for (i = 1; i <= NF; ++i) if ($i == "tokens") { n = $(i - 1); s = $(i + 2) }
       printf "[%s] decoding step %.1f ms (%d tokens in %s s)\n", tag, 1000 * s / n, n, s }' tag=$tag $W/$tag.err
}
if want A; then
  ckpt_ready
  stamp "A 1 hour 720p under --gpu-memory 19GiB, int4 weights, int4 media K/V (cap 19456 MiB)"
  hour h1_int4 --weights int4 --media-kv int4
fi
if want P; then
  ckpt_ready
  stamp "P the same hour, the planner's choices"
  hour h1_auto
fi

if want B; then
  ckpt_ready
  stamp "B full-size accuracy, 1-minute 720p, 24 teacher-forced steps on the bf16-K/V answer"
  D() { V dump -q --backend cuda --weights bf16 --model $CK --video $M/v1m_720p.mp4 --query "slicing onion" "$@"; }
  echo "| dtype, media K/V (vs bf16 K/V) | prompt_logits rel | prompt top-1 | forced_logits rel | forced top-1 |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for dt in bf16 fp16; do
    D --dtype $dt --media-kv bf16 --max-new-tokens 24 --out $W/acc_gen_$dt.safetensors
    forced=$(python3 -c "from safetensors.numpy import load_file; print(','.join(str(int(x)) for x in load_file('$W/acc_gen_$dt.safetensors')['generated_ids']))")
    D --dtype $dt --media-kv bf16 --forced-ids "$forced" --max-new-tokens 1 --out $W/acc_ref_$dt.safetensors
    for kv in int8 int4; do
      D --dtype $dt --media-kv $kv --forced-ids "$forced" --max-new-tokens 1 --out $W/acc_$kv.safetensors \
        && python3 bench/compare_dump.py --row "$dt, $kv" $W/acc_$kv.safetensors $W/acc_ref_$dt.safetensors
    done
  done
fi
stamp "done in $(( $(date +%s) - t_start )) s"
