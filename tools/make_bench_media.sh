#!/usr/bin/env bash
# Videos for the GPU benchmarks (bench/gpu_*.sh), made with the ffmpeg CLI into .dev/media
# (git-ignored; it travels to the GPU machine with `carry`, 64 MiB in all with the bundle, so
# the pictures are testsrc's, which compress to ~0.7 MB a minute at 720p). A sine tone for
# sound: nothing third-party. Each is made once; delete a file to remake it. The 16 kHz PCM
# that bench/torch_reference.py reads is made on the GPU machine by the bundled ffmpeg.
#   tools/make_bench_media.sh [NAME ...]     (default: all)
#   v1m_720p    1 min  1280x720 30 fps H.264 + AAC           (parity, precision)
#   v10m_720p   10 min 1280x720 30 fps H.264 + AAC           (speed, batching)
#   v10m_1080p_hevc 10 min 1920x1080 30 fps HEVC + AAC       (NVDEC)
#   v1h_720p    1 h    1280x720 5 fps H.264 + AAC            (an hour under 19 GiB)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.dev/media
mkdir -p "$out"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
make_one() {
  local name=$1 secs=$2 size=$3 fps=$4 codec=$5
  local f=$out/$name.mp4
  [ -f "$f" ] || {
    echo "making $f" >&2
    ff -f lavfi -i "testsrc=s=$size:r=$fps:d=$secs" -f lavfi -i "sine=f=440:sample_rate=44100:d=$secs" \
       -c:v "$codec" -preset veryfast -crf 45 -g $((fps * 10)) -pix_fmt yuv420p \
       $([ "$codec" = libx265 ] && echo "-tag:v hvc1 -x265-params log-level=error") \
       -c:a aac -ac 1 -b:a 16k -shortest "$f.tmp.mp4"
    mv "$f.tmp.mp4" "$f"
  }
}
all=("$@")
sel() { [ ${#all[@]} -eq 0 ] || [[ " ${all[*]} " == *" $1 "* ]]; }
sel v1m_720p && make_one v1m_720p 60 1280x720 30 libx264
sel v10m_720p && make_one v10m_720p 600 1280x720 30 libx264
sel v10m_1080p_hevc && make_one v10m_1080p_hevc 600 1920x1080 30 libx265
sel v1h_720p && make_one v1h_720p 3600 1280x720 5 libx264
ls -la "$out"
