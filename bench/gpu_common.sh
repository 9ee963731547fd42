# Shared by the GPU-machine scripts (bench/gpu_e2e.sh, bench/gpu_quant.sh); sourced, not run.
# Inputs travel in .dev (git-ignored): bundle.tar.xz + vidi-run (tools/device_bundle.sh),
# media/ (videos made with the ffmpeg CLI), tref/ (tiny-a and its golden file).
OUT=${OUT:-/tmp/vidi-out}
W=/tmp/vidi-work   # large files stay here; only the logs come back
mkdir -p "$OUT" "$W"
exec 3>&1          # with_mem reports here even when the command's own output is redirected
V() { sh .dev/vidi-run vidi "$@"; }
M=.dev/media
G=.dev/tref
CK=$PWD/.ckpt-9b   # on the machine's disk (64 GB)
stamp() { echo "=== $(date +%T) $*"; }
want() { [[ " $STEPS " == *" $1 "* ]]; }
# Peak GPU memory and wall time of a command: nvidia-smi sampled every 100 ms.
with_mem() {
  local tag=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$W/mem_$tag.txt" &
  local poll=$!
  local t0=$(date +%s%N)
  "$@"
  local rc=$?
  local t1=$(date +%s%N)
  kill $poll 2>/dev/null; wait $poll 2>/dev/null
  echo "[$tag] rc=$rc wall_ms=$(( (t1 - t0) / 1000000 )) peak_gpu_mib=$(sort -n "$W/mem_$tag.txt" | tail -1)" >&3
}
# A tiny checkpoint through the CUDA backend against its golden file: the retrieval prompt of
# synth.mp4 with the golden forced ids, then a text-only turn.
# Usage: cuda_parity TAG MODEL_DIR GOLDEN_FILE ["TEXT-ONLY QUESTION"]: the golden file's own
# question (its text_prompt_ids), tiny-a's by default; the tiny Vidi-7B's is "Describe the scene.".
# DUMP_ARGS (e.g. "--decoder cpu") goes to the video's dump.
cuda_parity() {
  local tag=$1 model=$2 golden=$3 question=${4:-Describe a kitchen scene.} forced
  forced=$(python3 -c "from safetensors.numpy import load_file; print(','.join(str(int(x)) for x in load_file('$golden')['forced_ids']))")
  V dump -q --backend cuda ${DUMP_ARGS:-} --model "$model" --video $G/synth.mp4 --query "a moving colour pattern" \
    --frames 0,11 --forced-ids "$forced" --max-new-tokens 16 --out "$W/${tag}_synth_cuda.safetensors"
  python3 bench/compare_dump.py "$W/${tag}_synth_cuda.safetensors" "$golden" \
    image_tokens audio_tokens prompt_logits forced_logits generated_ids prompt_ids
  V dump -q --backend cuda --model "$model" --question "$question" --max-new-tokens 16 \
    --out "$W/${tag}_text_cuda.safetensors"
  python3 bench/compare_dump.py "$W/${tag}_text_cuda.safetensors" "$golden" text_prompt_logits text_generated_ids
}
