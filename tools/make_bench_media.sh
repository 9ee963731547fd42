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
#   nv_clips    10 s clips for NVDEC's conformance (bench/gpu_nvdec.sh, ~2 MB in all): a display
#               matrix, HEVC Main 10 in BT.2020, full-range H.264, VP9 with an odd height, AV1,
#               MPEG-2 (which NVDEC must refuse), a stream that changes size midway (MPEG-TS)
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
clip() {  # name size codec-and-options...: 10 s of testsrc with a tone
  local name=$1 size=$2; shift 2
  [ -f "$out/$name" ] && return
  echo "making $out/$name" >&2
  ff -f lavfi -i "testsrc=s=$size:r=30:d=10" -f lavfi -i "sine=f=440:sample_rate=44100:d=10" \
     -g 60 -c:a aac -ac 1 -b:a 16k "$@" -shortest "$out/$name.tmp.${name##*.}"
  mv "$out/$name.tmp.${name##*.}" "$out/$name"
}
if sel nv_clips; then
  clip nv_rotated.mp4 640x360 -c:v libx264 -crf 35 -pix_fmt yuv420p -metadata:s:v:0 rotate=270
  clip nv_hevc10.mp4 640x360 -c:v libx265 -crf 35 -pix_fmt yuv420p10le -tag:v hvc1 -x265-params log-level=error \
    -colorspace bt2020nc -color_primaries bt2020 -color_trc smpte2084
  clip nv_full.mp4 640x360 -c:v libx264 -crf 35 -pix_fmt yuvj420p
  clip nv_vp9odd.webm 642x362 -vf scale=642:361 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -crf 45 -b:v 0 \
    -pix_fmt yuv420p -c:a libopus
  clip nv_av1.mp4 640x360 -c:v libsvtav1 -preset 12 -crf 50 -pix_fmt yuv420p -svtav1-params verbosity=0
  clip nv_mpeg2.mpg 320x180 -c:v mpeg2video -q:v 8 -c:a mp2 -b:a 64k
  if [ ! -f "$out/nv_resize.ts" ]; then  # two pieces joined: the second one's frames are smaller
    ff -f lavfi -i testsrc=s=640x360:r=30:d=5 -c:v libx264 -crf 35 -g 60 -pix_fmt yuv420p "$out/nv_a.ts"
    ff -f lavfi -i testsrc=s=480x270:r=30:d=5,hue=h=90 -c:v libx264 -crf 35 -g 60 -pix_fmt yuv420p \
       -output_ts_offset 5 "$out/nv_b.ts"
    cat "$out/nv_a.ts" "$out/nv_b.ts" > "$out/nv_resize.ts" && rm "$out/nv_a.ts" "$out/nv_b.ts"
  fi
fi
ls -la "$out"
