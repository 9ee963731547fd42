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
