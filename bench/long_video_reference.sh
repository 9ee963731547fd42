#!/bin/bash
# Run on the GPU machine with .dev/tref carried (tiny-a, long_310s.mp4, its s16le.gz).
# Tiny-a PyTorch float32 reference on a generated 310 s video (token-budget + 11-piece audio).
set -uo pipefail
export PYTHONUNBUFFERED=1
G=.dev/tref; W=/tmp/w; mkdir -p $W
gunzip -kf $G/long_310s.s16le.gz
python3 bench/torch_reference.py --model $G/tiny-a --video $G/long_310s.mp4 --audio-pcm $G/long_310s.s16le \
  --query "a moving colour pattern" --max-new-tokens 4 --dtype float32 --dump-media --dump $W/full.safetensors 2>&1 | tail -3
python3 - <<'PY'
import os
from safetensors.numpy import load_file, save_file
d = load_file("/tmp/w/full.safetensors")
print({k: v.shape for k, v in d.items()})
F, h, w = (int(x) for x in d["image_token_grid"])
per = h * w
keep = {k: d[k] for k in ("prompt_ids", "prompt_logits", "audio_tokens", "image_token_grid", "mel_frames")}
keep["image_tokens_frame0"] = d["image_tokens"][:per].copy()
keep["image_tokens_frame_last"] = d["image_tokens"][(F - 1) * per:].copy()
save_file(keep, os.environ["OUT"] + "/long_310s_tiny-a_torch.safetensors")
PY
