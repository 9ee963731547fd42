#!/usr/bin/env bash
# The engine's numerics against the PyTorch reference, for choosing the GPU's default dtype
# (issue 17): the CUDA engine in bf16 and in fp16 (--dtype) against bench/torch_reference.py in
# float32 and in float16 (the official inference's dtype), at full size (random Vidi1.5-9B
# checkpoint from `vidi make-checkpoint`, the 1-minute 720p video of bench/gpu_e2e.sh):
#   - prompt_logits: relative error and top-1 agreement per prompt row;
#   - forced_logits: the same over teacher-forced decoding steps (the prompt's last row, then
#     one row per forced id: the incremental path with the caches and the recorded step);
# and tiny-a on CUDA in fp16 and bf16 against the golden file. Ends with a table.
# COMPUTES="16bit fp8" also runs every engine case with --compute fp8 (issue 20: the encode's
# GEMMs in FP8), tagged _fp8.
# The checkpoint is written in the background while tiny-a runs; on a card of 120 GB or more both
# references run at once (float32 ~40 GB of GPU memory, float16 ~20 GB) while the engine runs in
# the foreground, on a smaller one after the engine, one at a time.
# Inputs travel in .dev (bench/gpu_common.sh). Usage there: OUT=/some/dir bash bench/gpu_numerics.sh
set -uo pipefail
source bench/gpu_common.sh
export PYTHONUNBUFFERED=1
t_start=$(date +%s)
VIDEO=$M/v1m_720p.mp4
# The reference reads 16 kHz mono PCM: carried (gzipped), or made here by the bundled ffmpeg
# (tools/device_bundle.sh with BUNDLE_EXTRA=/usr/bin/ffmpeg; tools/make_bench_media.sh).
pcm=$M/v1m.s16le
if [ ! -f $pcm ]; then
  if [ -f $pcm.gz ]; then gunzip -k $pcm.gz
  else sh .dev/vidi-run ffmpeg -hide_banner -loglevel error -i $VIDEO -vn -ac 1 -ar 16000 -acodec pcm_s16le -f s16le $pcm
  fi
fi
QUERY="slicing onion"
COMPUTES=${COMPUTES:-16bit}
tag_of() { [ "$2" = 16bit ] && echo "$1" || echo "${1}_$2"; }  # tag_of eng_bf16 fp8 -> eng_bf16_fp8
# 48 teacher-forced ids spread over the vocabulary (the same for the engine and the references).
FORCED=$(python3 -c "print(','.join(str(3 + (i * 7919) % 255000) for i in range(1, 49)))")

stamp "device"; nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
V --version > /dev/null  # unpacks the bundle
if [ ! -f $CK/config.json ]; then
  ( t0=$(date +%s); V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > $W/make_ckpt.log 2>&1
    echo "make rc=$? seconds=$(( $(date +%s) - t0 ))" >> $W/make_ckpt.log ) &
  mk=$!
fi

stamp "tiny-a on CUDA against the golden file, bf16 and fp16"
G_ST=$G/tiny-a_synth.golden.safetensors
g_forced=$(python3 -c "from safetensors.numpy import load_file; print(','.join(str(int(x)) for x in load_file('$G_ST')['forced_ids']))")
for c in $COMPUTES; do for dt in bf16 fp16; do
  t=$(tag_of tiny_$dt $c)
  V dump -q --backend cuda --dtype $dt --compute $c --model $G/tiny-a --video $G/synth.mp4 \
    --query "a moving colour pattern" --frames 0,11 --forced-ids "$g_forced" --max-new-tokens 16 --out $W/$t.safetensors
  echo "-- tiny-a, CUDA $dt, compute $c vs golden (float64):"
  python3 bench/compare_dump.py $W/$t.safetensors $G_ST image_tokens audio_tokens prompt_logits forced_logits \
    generated_ids prompt_ids
done; done

if [ -n "${mk:-}" ]; then wait $mk; tail -1 $W/make_ckpt.log; fi

R() {
  local dt=$1
  ( timeout 300 python3 bench/torch_reference.py --model $CK --video $VIDEO --audio-pcm $pcm --query "$QUERY" \
      --max-new-tokens 8 --dtype $dt --forced-ids "$FORCED" --dump $W/torch_$dt.safetensors > $W/torch_$dt.log 2>&1
    echo "torch $dt rc=$?" >> $W/torch_$dt.log ) &
}
run_engines() {
  stamp "engine, bf16 and fp16"
  engines=()
  for c in $COMPUTES; do for dt in bf16 fp16; do
    t=$(tag_of eng_$dt $c); engines+=($t)
    # 16-bit weights and media K/V whatever the references leave free (the planner would pick int8)
    with_mem $t V dump -q --backend cuda --dtype $dt --compute $c --weights bf16 --media-kv bf16 --model $CK \
      --video $VIDEO --query "$QUERY" --forced-ids "$FORCED" --max-new-tokens 8 --out $W/$t.safetensors
  done; done
}
# Both references beside the engine take up to ~80 GB at once: on a smaller card (an H100's 80 GB,
# where an fp8 engine case and the float32 reference once ran out of memory) the engine runs
# first and the references one after the other.
total_mib=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
if [ "${total_mib:-0}" -ge 120000 ]; then
  stamp "PyTorch references (background): float32 and float16"
  R float32; r32=$!
  R float16; r16=$!
  run_engines
  wait $r32 $r16
else
  run_engines
  stamp "PyTorch references, one after the other ($total_mib MiB card): float32, float16"
  R float32; wait $!
  R float16; wait $!
fi
for dt in float32 float16; do tail -2 $W/torch_$dt.log; done

stamp "all pairs"
for e in "${engines[@]}" torch_float16; do
  for r in torch_float32 torch_float16; do
    [ $e = $r ] && continue
    echo "-- $e vs $r"
    python3 bench/compare_dump.py $W/$e.safetensors $W/$r.safetensors prompt_ids prompt_logits forced_logits \
      generated_ids
  done
done

stamp "table"
echo "Full size (random Vidi1.5-9B, 1-minute 720p video, \"$QUERY\"), 48 teacher-forced steps:"
for r in torch_float32 torch_float16; do
  echo
  echo "against PyTorch ${r#torch_}:"
  echo "| run | prompt_logits rel | prompt top-1 | forced_logits rel | forced top-1 |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for e in "${engines[@]}" torch_float16; do
    [ $e = $r ] && continue
    python3 bench/compare_dump.py --row "$e" $W/$e.safetensors $W/$r.safetensors
  done
done
echo
echo "tiny-a on CUDA vs golden (prompt_logits / forced_logits rel):"
for c in $COMPUTES; do for dt in bf16 fp16; do
  python3 bench/compare_dump.py --row "tiny-a $dt $c" $W/$(tag_of tiny_$dt $c).safetensors $G_ST
done; done
stamp "done in $(( $(date +%s) - t_start )) s"
