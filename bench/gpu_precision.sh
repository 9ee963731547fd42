#!/usr/bin/env bash
# Where a bf16 pipeline's error comes from, at full size (random Vidi1.5-9B checkpoint,
# 1-minute 720p video): the engine and PyTorch reference variants, each against the others.
#   eng         the engine (CUDA, bf16)
#   f32 / bf16  bench/torch_reference.py in float32 / bfloat16
#   bf16res32   bfloat16 with the decoder's residual streams in float32 (--residual float32)
#   *_media     the reference's decoder on the engine's own media tokens (--media-from):
#               the decoder's share of the difference, the towers' taken out
# Inputs travel in .dev (bench/gpu_common.sh). Usage there: OUT=dir bash bench/gpu_precision.sh
set -uo pipefail
source bench/gpu_common.sh
pcm=$M/v1m.s16le; [ -f $pcm ] || gunzip -k $pcm.gz
V --version > /dev/null  # unpacks the bundle
[ -d $CK ] || V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > $W/make_ckpt.log 2>&1
stamp "engine"
V dump -q --backend cuda --model $CK --video $M/v1m_720p.mp4 --query "slicing onion" --max-new-tokens 8 \
  --out $W/eng.safetensors
R() {
  local tag=$1; shift
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
stamp "prompt_logits, relative"
C() { echo "-- $1 vs $2"; python3 bench/compare_dump.py $W/$1.safetensors $W/$2.safetensors prompt_logits | grep prompt; }
C eng f32; C bf16 f32; C bf16res32 f32; C eng bf16; C eng bf16res32; C bf16res32 bf16
C f32_media f32; C eng f32_media; C bf16_media f32_media; C eng bf16_media
