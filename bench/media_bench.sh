#!/usr/bin/env bash
# Media front end vs the ffmpeg CLI on a 10-minute 1280x720 H.264 + AAC video (issue 3).
# Ours: every 1 fps frame decoded, RGB24, PIL-bicubic to 384x384, normalised, plus the
# Whisper log-mel of the audio (bench/media_front_bench). CLI: the video decode the
# official pipeline's decord replaces, `ffmpeg -i in.mp4 -vf fps=1 -f null -`, plus the
# official audio extraction, `ffmpeg -i in.mp4 -ac 1 -ar 16000 -f s16le -`.
# Usage: bench/media_bench.sh [BUILD_DIR] [SECONDS]   (defaults: build, 600)
set -euo pipefail
build=${1:-build}
secs=${2:-600}
bench="$build/bench/media_front_bench"
[ -x "$bench" ] || { echo "build $bench first (ninja -C $build media_front_bench)" >&2; exit 1; }
dir=${VIDI_BENCH_TMP:-/tmp/vidi_media_bench}
mkdir -p "$dir"
video="$dir/testsrc2_720p_${secs}s.mp4"
if [ ! -s "$video" ]; then
  echo "generating $video ..." >&2
  ffmpeg -nostdin -hide_banner -v error -y \
    -f lavfi -i "testsrc2=s=1280x720:r=30:d=$secs" -f lavfi -i "sine=f=440:r=44100:d=$secs" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -ac 2 -b:a 128k -shortest "$video.tmp.mp4"
  mv "$video.tmp.mp4" "$video"
fi

now() { date +%s.%N; }
t0=$(now)
ffmpeg -nostdin -hide_banner -v error -i "$video" -vf fps=1 -f null -
t1=$(now)
ffmpeg -nostdin -hide_banner -v error -i "$video" -ac 1 -ar 16000 -f s16le - > /dev/null
t2=$(now)
ours_json=$("$bench" "$video")
t3=$(now)

cli_video=$(echo "$t1 - $t0" | bc -l)
cli_audio=$(echo "$t2 - $t1" | bc -l)
ours=$(echo "$t3 - $t2" | bc -l)
ratio=$(echo "$ours / ($cli_video + $cli_audio)" | bc -l)
echo "ours: $ours_json"
printf 'cli video (fps=1, null): %.2f s\ncli audio (s16le 16k mono): %.2f s\nours (frames+mel): %.2f s\nratio ours/cli: %.3f\n' \
  "$cli_video" "$cli_audio" "$ours" "$ratio"
