#!/usr/bin/env bash
# Issue "fit a shared 24 GB card" on the GPU machine: quantised kernels, accuracy per mode,
# speed and peak memory per mode on a 10-minute video, and an hour of video under 19 GiB.
#   Q0 CUDA op tests (incl. the quantised kernels)     Q1 kernel micro-benchmarks
#   Q2 full-size checkpoint + `vidi quantize --weights int4`
#   Q3 tiny-a accuracy per mode against the golden file (CUDA)
#   Q4 full-size accuracy per mode: teacher-forced logits against the bf16 engine
#   Q5 10-minute 720p retrieval per mode: wall time, decode speed, peak memory
#   Q6 1-hour video: --gpu-memory 19GiB (planner's choice) beside bf16 without a cap
#   F  the front end alone on the same video: tiny-a's towers cost nothing, so this is decode + resize
#   T  the PyTorch reference on the same 10-minute video (issue 5's end-to-end ratio)
# Inputs travel in .dev (see bench/gpu_common.sh). Usage there: OUT=dir STEPS="Q0 Q1" bash bench/gpu_quant.sh
set -uo pipefail
source bench/gpu_common.sh
CK4=$PWD/.ckpt-9b-int4
STEPS=${STEPS:-Q0 Q1 Q2 Q3 Q4 Q5 Q6 F T}
stamp "device"; nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader

# The full-size checkpoint is made in the background while the kernel steps run.
if { want Q2 || want Q4 || want Q5 || want Q6 || want T; } && [ ! -d $CK ]; then
  ( V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > "$W/make_ckpt.log" 2>&1 ) &
  mk=$!
fi
ckpt_ready() { [ -n "${mk:-}" ] && wait $mk && tail -c 120 "$W/make_ckpt.log" && echo; mk=; }
if want Q0; then
  stamp "Q0 test_cuda"
  timeout 180 sh .dev/vidi-run test_cuda > "$OUT/test_cuda.log" 2>&1; echo "rc=$?"
  grep -E "^\[  (PASSED|FAILED)|^\[  FAILED|tests ran" "$OUT/test_cuda.log" | head -20
fi
if want Q1; then
  stamp "Q1 micro-benchmarks"
  timeout 200 sh .dev/vidi-run cuda_micro ${MICRO_FILTER:-} > "$OUT/cuda_micro.log" 2>&1; echo "rc=$?"
  tail -40 "$OUT/cuda_micro.log"
fi
if want Q3; then
  stamp "Q3 tiny-a per mode vs golden (CUDA)"
  forced=$(python3 -c "from safetensors.numpy import load_file; print(','.join(str(int(x)) for x in load_file('$G/tiny-a_synth.golden.safetensors')['forced_ids']))")
  for mode in "bf16 bf16" "int8 bf16" "int4/g32 bf16" "bf16 int8" "int4/g32 int8"; do
    set -- $mode
    V dump -q --backend cuda --weights $1 --media-kv $2 --model $G/tiny-a --video $G/synth.mp4 \
      --query "a moving colour pattern" --forced-ids "$forced" --max-new-tokens 16 --out "$W/tiny_$$.safetensors" \
      && echo "-- weights $1, media K/V $2:" \
      && python3 bench/compare_dump.py "$W/tiny_$$.safetensors" $G/tiny-a_synth.golden.safetensors prompt_logits forced_logits
  done
fi
if want Q2; then
  ckpt_ready
  stamp "Q2 vidi quantize --weights int4"
  rm -rf $CK4
  with_mem quantize V quantize --model $CK --out $CK4 --weights int4 2>&1 | tail -2
  V inspect $CK4 | tail -4; du -sh $CK $CK4
fi
if want Q4; then
  ckpt_ready
  stamp "Q4 full-size accuracy, 1-minute video, teacher-forced on the bf16 answer"
  V dump -q --backend cuda --weights bf16 --media-kv bf16 --model $CK --video $M/v1m_720p.mp4 --query "slicing onion" \
    --max-new-tokens 24 --out "$W/acc_ref.safetensors"
  forced=$(python3 -c "from safetensors.numpy import load_file; print(','.join(str(int(x)) for x in load_file('$W/acc_ref.safetensors')['generated_ids']))")
  V dump -q --backend cuda --weights bf16 --media-kv bf16 --model $CK --video $M/v1m_720p.mp4 --query "slicing onion" \
    --forced-ids "$forced" --max-new-tokens 1 --out "$W/acc_bf16.safetensors"
  for mode in "bf16 int8 $CK" "int8 bf16 $CK" "int4 bf16 $CK" "int4 int8 $CK" "auto bf16 $CK4"; do
    set -- $mode
    V dump -q --backend cuda --weights $1 --media-kv $2 --model $3 --video $M/v1m_720p.mp4 --query "slicing onion" \
      --forced-ids "$forced" --max-new-tokens 1 --out "$W/acc_m.safetensors" \
      && echo "-- weights $1, media K/V $2, $(basename $3):" \
      && python3 bench/compare_dump.py "$W/acc_m.safetensors" "$W/acc_bf16.safetensors" image_tokens prompt_logits forced_logits
  done
fi
if want Q5; then
  ckpt_ready
  stamp "Q5 10-minute 720p per mode"
  # MODES: "weights kv checkpoint" triples separated by ';' (default: every mode).
  IFS=';' read -ra modes <<< "${MODES:-bf16 bf16 $CK;bf16 int8 $CK;int8 bf16 $CK;int4 bf16 $CK;int4 int8 $CK;auto int8 $CK4}"
  for mode in "${modes[@]}"; do
    set -- $mode
    [ -d $3 ] || continue
    tag="m10_${1}_${2}_$(basename $3)"
    with_mem $tag V retrieve --backend cuda --weights $1 --media-kv $2 --model $3 --video $M/v10m_720p.mp4 \
      --query "slicing onion" --query "a person opens the fridge" --max-new-tokens 20 > "$W/$tag.txt" 2> "$W/$tag.err"
    grep -vE "generate +[0-9]+/" "$W/$tag.err" | tail -14; cp "$W/$tag.err" "$OUT/"
  done
fi
if want Q6; then
  ckpt_ready
  stamp "Q6 1-hour video"
  with_mem h1_19GiB V retrieve --backend cuda --gpu-memory 19GiB --model $CK --video $M/v1h_90p.mp4 \
    --query "slicing onion" --max-new-tokens 20 > "$W/h1_19.txt" 2> "$W/h1_19.err"
  grep -vE "generate +[0-9]+/" "$W/h1_19.err" | tail -14; cp "$W/h1_19.err" "$OUT/"
  with_mem h1_bf16 V retrieve --backend cuda --weights bf16 --media-kv bf16 --model $CK --video $M/v1h_90p.mp4 \
    --query "slicing onion" --max-new-tokens 20 > "$W/h1_bf16.txt" 2> "$W/h1_bf16.err"
  grep -vE "generate +[0-9]+/" "$W/h1_bf16.err" | tail -14; cp "$W/h1_bf16.err" "$OUT/"
fi
if want F; then
  stamp "F front end alone: tiny-a on the 10-minute 720p video"
  with_mem front V retrieve --backend cuda --model $G/tiny-a --video $M/v10m_720p.mp4 --query "slicing onion" \
    --max-new-tokens 2 > "$W/front.txt" 2> "$W/front.err"
  grep -vE "generate +[0-9]+/" "$W/front.err" | tail -8
fi
if want T; then
  ckpt_ready
  stamp "T PyTorch reference, 10-minute 720p (bf16)"
  pcm=$M/v10m.s16le; [ -f $pcm ] || xz -dk $pcm.xz
  with_mem torch10m timeout 240 python3 bench/torch_reference.py --model $CK --video $M/v10m_720p.mp4 --audio-pcm $pcm \
    --query "slicing onion" --max-new-tokens 20 --repeat-question --timings "$OUT/torch10m.json" > "$W/torch10m.log" 2>&1
  tail -3 "$W/torch10m.log"; cat "$OUT/torch10m.json" 2>/dev/null | head -30
fi
stamp "done"
