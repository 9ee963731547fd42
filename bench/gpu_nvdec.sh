#!/usr/bin/env bash
# NVDEC against FFmpeg's CPU decoders on the GPU machine (issue 20), in one call of about two
# to three minutes on the H200:
#   0. the conversion kernel against the host reference (test_cuda CudaYuvRgb.*: bit-exact);
#   1. the frames stage time and the process's CPU seconds (VIDI_PROFILE's "frames:" line, and
#      the whole process's user+sys from the shell) for the 10-minute 720p H.264 and the
#      10-minute 1080p HEVC video, --decoder cpu vs nvdec (and nvdec with a lane per NVDEC
#      engine), and the difference of their pixel values and image tokens (0 expected);
#   2. short clips that take the other paths (a display matrix, HEVC Main 10 in BT.2020, full
#      range, VP9 with an odd height, AV1, a stream that changes size midway): the same
#      comparison; MPEG-2 must fall back to the CPU with a notice.
# The tiny-a checkpoint: its towers take next to no time, so the frames stage is the decoding.
# Inputs in .dev (bench/gpu_common.sh): bundle.tar.xz + vidi-run (with test_cuda), tref/tiny-a,
# media/ from `tools/make_bench_media.sh v10m_720p v10m_1080p_hevc nv_clips` (~8 MB in all).
# Usage there: OUT=/some/dir [STEPS="0 1 2"] bash bench/gpu_nvdec.sh
set -uo pipefail
source bench/gpu_common.sh
STEPS=${STEPS:-0 1 2}
BACKEND=${BACKEND:-cuda}  # (cpu: a dry run of the script on a machine without a GPU)

stamp "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nproc
ldconfig -p | grep -E "libnvcuvid|libcuda\.so\.1" | head -3

# dump TAG DECODER VIDEO FRAMES [flags...]: one `vidi dump` on the CUDA backend with
# VIDI_PROFILE=1; prints its frames line, any fallback notice or error, and the shell's times.
dump() {
  local tag=$1 dec=$2 video=$3 frames=$4; shift 4
  local TIMEFORMAT="[$tag] process: wall %R s, user %U s, sys %S s"
  time (VIDI_PROFILE=1 timeout 100 sh .dev/vidi-run vidi dump --backend "$BACKEND" --decoder "$dec" --model $G/tiny-a --video "$video" --query "a person" \
          --frames "$frames" --max-new-tokens 1 --out "$W/$tag.safetensors" "$@" > "$W/$tag.log" 2>&1
        echo "[$tag] rc=$?")
  grep -E "vidi: (frames:|video '|error)" "$W/$tag.log" | sed "s/^/[$tag] /"
}
# same TAG_A TAG_B FRAMES: the pixel values of the sampled frames and the image tokens of two
# dumps (0 differing bytes expected: the frames and the towers' input are the same).
same() {
  local names=("image_tokens")
  for f in ${3//,/ }; do names+=("pixel_values_frame$f"); done
  python3 bench/compare_dump.py "$W/$1.safetensors" "$W/$2.safetensors" "${names[@]}" | sed "s/^/[$1 vs $2] /"
}

if want 0; then
stamp "0. conversion kernel vs the host reference"
timeout 120 sh .dev/vidi-run test_cuda --gtest_filter='CudaYuvRgb.*' 2>&1 | grep -E "OK|FAILED|Failure|PASSED" | head
fi

if want 1; then
for v in v10m_720p v10m_1080p_hevc; do
  stamp "1. $v: CPU decoders vs NVDEC"
  F=0,1,299,599
  dump "${v}_cpu" cpu $M/$v.mp4 $F
  dump "${v}_nvdec" nvdec $M/$v.mp4 $F
  dump "${v}_nvdec7" nvdec $M/$v.mp4 $F --decode-lanes 7  # the H200's seven NVDEC engines
  same "${v}_nvdec" "${v}_cpu" $F
  same "${v}_nvdec7" "${v}_cpu" $F
done
fi

if want 2; then
stamp "2. clips on NVDEC's other paths"
for c in nv_rotated.mp4 nv_hevc10.mp4 nv_full.mp4 nv_vp9odd.webm nv_av1.mp4 nv_resize.ts; do
  t=${c%.*}
  F=0,5,9
  dump "${t}_cpu" cpu $M/$c $F
  dump "${t}_auto" auto $M/$c $F
  same "${t}_auto" "${t}_cpu" $F
done
dump nv_mpeg2_auto auto $M/nv_mpeg2.mpg 0  # expected: "frames decoded on the CPU: NVDEC's mpeg2video ..."
dump nv_mpeg2_nvdec nvdec $M/nv_mpeg2.mpg 0  # expected: rc=1, "decoder nvdec cannot take it"
fi
stamp "done"
