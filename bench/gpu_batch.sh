#!/usr/bin/env bash
# Many questions about one video on the GPU machine (issue 19; results in bench/RESULTS.md):
#   0. test_cuda's row-invariance, path and step-graph cases, test_backend's attention and
#      cross-attention on CUDA (every op of a batched step gives a row the bits it gets alone;
#      the tensor-core cross-attention against the double reference), and test_runtime's
#      batched generation on CUDA (tiny-a: every row equals generate() alone, ids and margins,
#      bit for bit);
#   1. tiny-a on CUDA against the golden files (bench/gpu_e2e.sh step 1: unchanged parity),
#      then 16 questions as a batch vs one by one (ids), quick;
#   2. the full-size random checkpoint $CK (made only when `vidi inspect` refuses it);
#   3. batch_bench on the 10-minute 720p video, 16 questions of 20 tokens: one question, the
#      16 one by one, the 16 as one batch (total times, the decoding step at batch 1 and 16,
#      ids of the batch vs one by one), peak memory;
#   4. vidi serve: 16 concurrent clients asking different questions of one registered video
#      vs the same requests one by one (total time, latency, ids), then 16 concurrent streamed
#      chat completions (time to the first token) (bench/serve_batch.py).
#   5. where the batched step's time goes: batch_bench at 1 and at $QUESTIONS questions with
#      VIDI_PROFILE=1 and the graphs off (each op's section timed by CUDA events; the report
#      after each answer sums the device time per part: attention, cross-attention, MLP, ...).
# Inputs travel in .dev (bench/gpu_common.sh says what is there); the bundle must hold vidi,
# test_cuda and batch_bench (tools/device_bundle.sh).
# Usage there: OUT=/some/dir [STEPS="0 1 2 3 4"] [QUESTIONS=16] [TOKENS=20] bash bench/gpu_batch.sh
set -uo pipefail
source bench/gpu_common.sh
STEPS=${STEPS:-0 1 2 3 4}
QUESTIONS=${QUESTIONS:-16}
TOKENS=${TOKENS:-20}
B() { sh .dev/vidi-run batch_bench "$@"; }

stamp "device"; nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader
V --version > /dev/null  # unpacks the bundle

if want 0; then
stamp "0. test_cuda (row invariance, paths, step graphs), test_backend's attention on CUDA, test_runtime's batches on CUDA"
timeout 300 sh .dev/vidi-run test_cuda --gtest_filter='*RowInvariance*:*Paths*:*StepGraph*' 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|FAILED|tests ran|Failure" | head -20
timeout 300 sh .dev/vidi-run test_backend --gtest_filter='*/Attention.*/cuda_*:*/Rope.*/cuda_*' 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|FAILED|tests ran|Failure" | head -20
mkdir -p /tmp/vidi-shared && ln -sfn "$PWD/$G" /tmp/vidi-shared/golden  # the tests' ../shared/golden
VIDI_SHARED_DIR=/tmp/vidi-shared timeout 300 sh .dev/vidi-run test_runtime --gtest_filter='*BatchGenerate*:*Golden*' 2>&1 |
  grep -E "^\[  (PASSED|FAILED)|FAILED|OK \].*cuda|tests ran|Failure" | head -20
fi

if want 1; then
stamp "1. tiny-a on CUDA: golden parity, then $QUESTIONS questions as a batch vs one by one"
STEPS=1 bash bench/gpu_e2e.sh 2>&1 | grep -vE "^=== .*(device|done)"
B --backend cuda --model $G/tiny-a --video $G/synth.mp4 --questions "$QUESTIONS" --tokens 16 \
  --json "$OUT/batch_tiny.json" 2>&1 | grep -v "^vidi: "
echo "rc=${PIPESTATUS[0]}"
fi

if want 2; then
stamp "2. full-size checkpoint"
if ! V inspect $CK > "$W/inspect.txt" 2>&1; then
  t0=$(date +%s)
  V make-checkpoint --preset vidi1.5-9b --out $CK --seed 1 > "$W/make_ckpt.log" 2>&1
  echo "make-checkpoint rc=$? seconds=$(( $(date +%s) - t0 ))"
fi
V inspect $CK | tail -2
fi

if want 3; then
stamp "3. batch_bench, 10-minute 720p, $QUESTIONS questions of $TOKENS tokens"
with_mem batch10m B --backend cuda --model $CK --video $M/v10m_720p.mp4 --questions "$QUESTIONS" --tokens "$TOKENS" \
  --json "$OUT/batch_10m.json" > "$W/batch10m.txt" 2> "$W/batch10m.err"
cat "$W/batch10m.txt"; grep -E "error" "$W/batch10m.err" | head -5
fi

if want 4; then
stamp "4. vidi serve: $QUESTIONS concurrent clients vs one by one, 10-minute 720p"
with_mem serve10m timeout 240 python3 bench/serve_batch.py --vidi "sh .dev/vidi-run vidi" --backend cuda \
  --model $CK --video $M/v10m_720p.mp4 --questions "$QUESTIONS" --tokens "$TOKENS" --json "$OUT/serve_10m.json"
grep -E "error|batch" /tmp/vidi-serve-batch.log | grep -v " -> 200" | head -5
fi

if want 5; then
for n in 1 "$QUESTIONS"; do
  stamp "5. profile: $n question(s) of $TOKENS tokens (VIDI_PROFILE=1, VIDI_CUDA_GRAPHS=0)"
  VIDI_PROFILE=1 VIDI_CUDA_GRAPHS=0 B --backend cuda --model $CK --video $M/v10m_720p.mp4 --questions "$n" \
    --tokens "$TOKENS" > "$W/profile$n.txt" 2> "$W/profile$n.err"
  cat "$W/profile$n.txt"; grep -vE "^\[" "$W/profile$n.err" | tail -40
done
fi

stamp "done"
