#!/usr/bin/env bash
# Regenerates the "meeting" room's recordings (samples/meeting/, committed; ~250 KB):
# one Matroska file per track, as Twilio stores a group room's per-track recordings.
# The ground truth (spans, offsets, start times) is src/emulator/meeting.rs: change both.
#
# Each participant has its own sine tone and its own solid colour, so that a test can
# find everyone in a composition by frequency and by colour. Room timeline (seconds):
#   alice  OPUS 400 Hz + VP8 red     2 -> 19
#   bob    OPUS 700 Hz + VP8 green   4 -> 8, reconnects 10 -> 17 (a second media-server
#          segment: Recording offset = room offset + 8000 ms, Matroska start 2.0)
#   carol  OPUS 1100 Hz + VP8 blue   5 -> 14, 320x240 until 9 then 640x360, in one file
#   dave   PCMU 1700 Hz (audio only) 6 -> 12
# As Twilio does, a file's start time (ffprobe format=start_time) is its start on the
# room timeline minus (its offset - the room's offset): `-output_ts_offset`.
# 15 fps, a keyframe every second, VP8 libvpx good/cpu-used 4, Opus mono 24 kbit/s CBR.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p meeting
cd meeting
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
VP8=(-c:v libvpx -b:v 60k -g 15 -keyint_min 15 -deadline good -cpu-used 4 -pix_fmt yuv420p)

# opus NAME HZ DURATION START
opus() {
  ff -f lavfi -i "sine=frequency=$2:sample_rate=48000:duration=$3" \
     -c:a libopus -b:a 24k -vbr off -ac 1 -ar 48000 -output_ts_offset "$4" "$1.mka"
}
# vp8 NAME COLOUR SIZE DURATION START
vp8() {
  ff -f lavfi -i "color=c=$2:size=$3:rate=15:duration=$4" "${VP8[@]}" \
     -output_ts_offset "$5" "$1.mkv"
}

opus alice-audio 400 17 2
vp8 alice-video 0xFF0000 320x240 17 2
opus bob-audio 700 4 4
vp8 bob-video 0x00FF00 320x240 4 4
opus bob-audio-2 700 7 2
vp8 bob-video-2 0x00FF00 320x240 7 2
opus carol-audio 1100 9 5
# Carol's camera changes resolution at 9 s: two encodes joined without re-encoding.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff -f lavfi -i "color=c=0x0000FF:size=320x240:rate=15:duration=4" "${VP8[@]}" "$tmp/a.mkv"
ff -f lavfi -i "color=c=0x0000FF:size=640x360:rate=15:duration=5" "${VP8[@]}" "$tmp/b.mkv"
printf "file '%s'\nfile '%s'\n" "$tmp/a.mkv" "$tmp/b.mkv" > "$tmp/list.txt"
ff -f concat -safe 0 -i "$tmp/list.txt" -c copy -output_ts_offset 5 carol-video.mkv
ff -f lavfi -i "sine=frequency=1700:sample_rate=8000:duration=6" \
   -c:a pcm_mulaw -ac 1 -ar 8000 -output_ts_offset 6 dave-audio.mka
ls -l
