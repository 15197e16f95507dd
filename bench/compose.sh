#!/usr/bin/env bash
# How fast `compose` rebuilds a long room: generates, with ffmpeg, a 10-minute room of 4
# participants (each an Opus tone and a 320x240 VP8 test pattern at 15 fps, joining
# at 0, 20, 40 and 60 s, one of them reconnecting half way), serves it encrypted from
# the emulator (a room of --data), and composes it RUNS times into a 640x480 MP4.
# Prints the wall time of each run, the median, and the speed in times real time; the
# tool's peak memory as it reports it. Usage:
#   bench/compose.sh               # MINUTES=10 RUNS=3
#   MINUTES=2 RUNS=1 bench/compose.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-10}
RUNS=${RUNS:-3}
FORMAT=${FORMAT:-mp4}
cargo build --release --quiet
BIN=$PWD/target/release/twilio-media-fs
WORK=$(mktemp -d)
EMU_PID=
cleanup() {
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
ROOM="$WORK/data/bench-room"
mkdir -p "$ROOM"
LEN=$((MINUTES * 60))
echo "generating a ${MINUTES}-minute room of 4 participants with ffmpeg..."
i=0
for who in ann ben cat dan; do
    start=$((i * 20))
    dur=$((LEN - start))
    hz=$((300 + 250 * i))
    if [ "$who" = dan ]; then
        # Dan reconnects: two files per track, 5 s apart.
        first=$((dur / 2 - 5))
        parts=("$start:$first:" "$((start + first + 5)):$((dur - first - 5)):-2")
    else
        parts=("$start:$dur:")
    fi
    for part in "${parts[@]}"; do
        IFS=: read -r at len suffix <<< "$part"
        ff -f lavfi -i "sine=frequency=$hz:sample_rate=48000:duration=$len" \
            -c:a libopus -b:a 24k -ac 1 -output_ts_offset "$at" "$ROOM/$who-audio$suffix.mka"
        ff -f lavfi -i "testsrc2=size=320x240:rate=15:duration=$len" \
            -c:v libvpx -b:v 200k -g 30 -deadline realtime -cpu-used 8 \
            -output_ts_offset "$at" "$ROOM/$who-video$suffix.mkv"
    done
    i=$((i + 1))
done
du -sh "$ROOM"

"$BIN" emulator --listen 127.0.0.1:0 --data "$WORK/data" --private-key-out "$WORK/key.pem" \
    > "$WORK/emu.out" 2>&1 &
EMU_PID=$!
for _ in $(seq 100); do grep -q '^export TWILIO_AUTH_TOKEN' "$WORK/emu.out" 2>/dev/null && break; sleep 0.1; done
eval "$(grep '^export ' "$WORK/emu.out")"
SID=$("$BIN" ls rooms --json | python3 -c '
import sys, json
print([r["sid"] for r in map(json.loads, sys.stdin) if r.get("unique_name") == "bench-room" or r.get("name") == "bench-room"][0])')
"$BIN" compose "$SID" -k "$WORK/key.pem" --plan | sed -n '1,/^tile/p' | head -20

times=()
for run in $(seq "$RUNS"); do
    t0=$(date +%s.%N)
    "$BIN" compose "$SID" -k "$WORK/key.pem" -o "$WORK/room.$FORMAT" 2> "$WORK/compose.err"
    t1=$(date +%s.%N)
    t=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
    times+=("$t")
    echo "run $run: $t s; $(tail -1 "$WORK/compose.err")"
done
DUR=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$WORK/room.$FORMAT")
python3 - "$DUR" "${times[@]}" <<'PY'
import statistics, sys
dur = float(sys.argv[1]); times = [float(t) for t in sys.argv[2:]]
m = statistics.median(times)
print(f"composed {dur:.1f} s of room: median {m:.1f} s over {len(times)} runs, {dur / m:.2f}x real time")
PY
