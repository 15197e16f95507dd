#!/usr/bin/env bash
# Regenerates the small sample media the emulator serves (committed; under 3 MB in all).
# Each mimics what Twilio stores: one track per recording (audio .mka, video .mkv),
# compositions with audio and video (.mp4 H.264/AAC, .webm VP8/Opus).
# 10 seconds each, a keyframe every second, so that `ffmpeg -ss 5` has something to seek to.
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
D=10
VIDEO="testsrc2=size=320x240:rate=15:duration=$D"
AUDIO="sine=frequency=440:sample_rate=48000:duration=$D"
ff -f lavfi -i "$AUDIO" -c:a libopus -b:a 24k -ac 1 audio-opus.mka
ff -f lavfi -i "sine=frequency=300:sample_rate=8000:duration=$D" -c:a pcm_mulaw -ac 1 audio-pcmu.mka
ff -f lavfi -i "$VIDEO" -c:v libvpx -b:v 150k -g 15 -deadline good -cpu-used 4 video-vp8.mkv
ff -f lavfi -i "$VIDEO" -c:v libx264 -preset veryfast -b:v 150k -g 15 -pix_fmt yuv420p video-h264.mkv
ff -f lavfi -i "testsrc2=size=640x360:rate=15:duration=$D" -f lavfi -i "$AUDIO" \
   -c:v libx264 -preset veryfast -b:v 250k -g 15 -pix_fmt yuv420p -c:a aac -b:a 48k -shortest \
   -movflags +faststart composition.mp4
ff -f lavfi -i "testsrc2=size=640x360:rate=15:duration=$D" -f lavfi -i "$AUDIO" \
   -c:v libvpx -b:v 250k -g 15 -deadline good -cpu-used 4 -c:a libopus -b:a 32k -shortest composition.webm
ls -l
