#!/usr/bin/env bash
# Where a bf16 pipeline's error comes from, at full size (random Vidi1.5-9B checkpoint,
# 1-minute 720p video): the engine and PyTorch reference variants, each against the others.
#   eng         the engine (CUDA, bf16)
#   f32 / bf16  bench/torch_reference.py in float32 / bfloat16
#   bf16res32   bfloat16 with the decoder's residual streams in float32 (--residual float32)
#   *_media     the reference's decoder on the engine's own media tokens (--media-from):
#               the decoder's share of the difference, the towers' taken out
#   bf16_kv2k   bfloat16 with the media tokens through the decoder 2048 rows at a time, not
#               8192; bf16_vb8: 8 frames a SigLIP batch, not 32. The same computation in the
#               same dtype with other GEMM shapes (so other summation orders): how far apart
#               two equally valid bf16 runs land. eng_fb4: the engine with 4 frames a SigLIP
#               batch, not 16 (the same question for the engine).
# Inputs travel in .dev (bench/gpu_common.sh).
# Usage there: OUT=dir [RUNS="f32 bf16 ... eng_fb4"] bash bench/gpu_precision.sh   (RUNS: the optional runs)
set -uo pipefail
source bench/gpu_common.sh
pcm=$M/v1m.s16le; [ -f $pcm ] || gunzip -k $pcm.gz
V --version > /dev/null  # unpacks the bundle
[ -d $CK ] || V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > $W/make_ckpt.log 2>&1
RUNS=${RUNS:-f32 bf16 bf16res32 f32_media bf16_media bf16_kv2k bf16_vb8 eng_fb4}
E() {
  local tag=$1; shift
  V dump -q --backend cuda --model $CK --video $M/v1m_720p.mp4 --query "slicing onion" --max-new-tokens 8 \
    --out $W/$tag.safetensors "$@"
}
stamp "engine"
E eng
[[ " $RUNS " == *" eng_fb4 "* ]] && E eng_fb4 --frame-batch 4
R() {
  local tag=$1; shift
  [[ " $RUNS " == *" $tag "* ]] || return 0
  timeout 150 python3 bench/torch_reference.py --model $CK --video $M/v1m_720p.mp4 --audio-pcm $pcm \
    --query "slicing onion" --max-new-tokens 8 --dump $W/$tag.safetensors "$@" > $W/$tag.log 2>&1
  echo "$tag rc=$?"
}
stamp "PyTorch variants"
R f32 --dtype float32
R bf16 --dtype bfloat16
R bf16res32 --dtype bfloat16 --residual float32
R f32_media --dtype float32 --media-from $W/eng.safetensors
R bf16_media --dtype bfloat16 --media-from $W/eng.safetensors
R bf16_kv2k --dtype bfloat16 --kv-chunk 2048
R bf16_vb8 --dtype bfloat16 --vision-batch 8
stamp "prompt_logits, relative"
C() {
  [ -f $W/$1.safetensors ] && [ -f $W/$2.safetensors ] || return 0
  echo "-- $1 vs $2"; python3 bench/compare_dump.py $W/$1.safetensors $W/$2.safetensors prompt_logits | grep prompt
}
C eng f32; C bf16 f32; C bf16res32 f32; C eng bf16; C eng bf16res32; C bf16res32 bf16
C f32_media f32; C eng f32_media; C bf16_media f32_media; C eng bf16_media
C bf16_kv2k bf16; C bf16_vb8 bf16; C bf16_kv2k f32; C bf16_vb8 f32; C eng bf16_kv2k; C eng bf16_vb8
C eng_fb4 eng; C eng_fb4 bf16
