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

# Wall and CPU (user + sys) seconds of each command; CPU time is the steadier number on
# a shared machine, wall time is what a user waits.
timed() {  # timed NAME CMD...: runs CMD, appends "NAME wall cpu" to $dir/times
  /usr/bin/time -f "$1 %e %U %S" -a -o "$dir/times" "${@:2}"
}
rm -f "$dir/times"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
timed cli_video ffmpeg -nostdin -hide_banner -v error -i "$video" -vf fps=1 -f null -
timed cli_audio sh -c "ffmpeg -nostdin -hide_banner -v error -i '$video' -ac 1 -ar 16000 -f s16le - > /dev/null"
timed ours "$bench" "$video" > "$dir/ours.json"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ours: $(cat "$dir/ours.json")"
awk '{ wall[$1] = $2; cpu[$1] = $3 + $4 }
  END {
    printf "cli video (fps=1, null):    wall %7.2f s  cpu %7.2f s\n", wall["cli_video"], cpu["cli_video"]
    printf "cli audio (s16le 16k mono): wall %7.2f s  cpu %7.2f s\n", wall["cli_audio"], cpu["cli_audio"]
    printf "ours (frames + mel):        wall %7.2f s  cpu %7.2f s\n", wall["ours"], cpu["ours"]
    printf "ratio ours/cli: wall %.3f, cpu %.3f\n", wall["ours"] / (wall["cli_video"] + wall["cli_audio"]),
      cpu["ours"] / (cpu["cli_video"] + cpu["cli_audio"])
  }' "$dir/times"
