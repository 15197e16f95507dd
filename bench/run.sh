#!/usr/bin/env bash
# Side-by-side throughput of the ways to get a recording's plaintext, against the
# emulator on 127.0.0.1, in two settings:
#   local    no added latency, no bandwidth cap
#   s3-like  20 ms before each response, 64 MiB/s per connection (one S3 connection)
# For each: (a) the guide's way, curl | openssl enc -d, and curl -o /dev/null (the
# link's ceiling); (b) cp from a cold mount to /dev/null; (c) twilio-media-fs get;
# (s) curl from a cold `serve` to /dev/null.
# Then, locally: (d) ffprobe and `ffmpeg -ss MIDDLE -frames:v 1` of a large Matroska
# file of raw video through a cold mount, with the bytes they made the mount fetch;
# (e) the mount's peak RSS while copying a 1 GiB object, while 16 readers read 16
# different files at once, and while 8 threads read it at random, against --cache-size.
# Prints the median of RUNS runs and the ratio to (a). Usage:
#   bench/run.sh                 # SIZE=256MiB RUNS=3
#   SIZE=1GiB RUNS=5 bench/run.sh
#   PARTS=seeks bench/run.sh    # only (d) and (e)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-256MiB}
RUNS=${RUNS:-3}
cargo build --release --quiet
BIN=$PWD/target/release/twilio-media-fs
WORK=$(mktemp -d)
EMU_PID=
SERVE_PID=
cleanup() {
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
    umount -l "$WORK/mnt" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/mnt"

now() { date +%s.%N; }
median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
mbps() { python3 -c "import sys; print(f'{$1/$2/1e6:.0f}')"; }

start_emulator() {
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
    "$BIN" emulator --listen 127.0.0.1:0 --private-key-out "$WORK/key.pem" "$@" \
        > "$WORK/emu.out" 2>&1 &
    EMU_PID=$!
    for _ in $(seq 100); do grep -q '^export TWILIO_AUTH_TOKEN' "$WORK/emu.out" 2>/dev/null && break; sleep 0.1; done
    eval "$(grep '^export ' "$WORK/emu.out")"
    SID=$("$BIN" ls --json | python3 -c '
import sys, json
rows = [json.loads(l) for l in sys.stdin]
print(max(rows, key=lambda r: r.get("size") or 0)["sid"])')
    BYTES=$("$BIN" ls --json | python3 -c "
import sys, json
print([json.loads(l) for l in sys.stdin if json.loads(l)['sid'] == '$SID'][0]['size'])")
}

# The guide's steps 5.1-5.3, untimed: /Media, the headers, the unwrapped key.
prepare_guide() {
    local auth="$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN"
    URL=$(curl -s -u "$auth" "$TWILIO_MEDIA_FS_API_URL/v1/Recordings/$SID/Media?Ttl=3600" |
        python3 -c 'import sys, json; print(json.load(sys.stdin)["redirect_to"])')
    curl -s -r 0-15 -D "$WORK/h.txt" -o /dev/null "$URL"
    local key iv
    key=$(grep -i '^x-amz-meta-x-amz-key:' "$WORK/h.txt" | cut -d' ' -f2 | tr -d '\r')
    iv=$(grep -i '^x-amz-meta-x-amz-iv:' "$WORK/h.txt" | cut -d' ' -f2 | tr -d '\r')
    CEK=$(echo "$key" | base64 -d | openssl pkeyutl -decrypt -inkey "$WORK/key.pem" \
        -pkeyopt rsa_padding_mode:pkcs1 | xxd -p -c 64)
    IV=$(echo "$iv" | base64 -d | xxd -p -c 64)
}

# A fresh (cold) `serve` on a free port; SERVE_URL is where it listens.
start_serve() {
    "$BIN" serve -k "$WORK/key.pem" --listen 127.0.0.1:0 --no-metadata-cache \
        > "$WORK/serve.out" 2> "$WORK/serve.err" &
    SERVE_PID=$!
    for _ in $(seq 100); do grep -q '^listening on' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
    SERVE_URL=$(sed -n 's/^listening on //p' "$WORK/serve.out" | head -1)
}
stop_serve() { kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true; SERVE_PID=; }

time_it() { local t0; t0=$(now); "$@" > /dev/null; python3 -c "print($(now) - $t0)"; }

run_setting() {
    local name=$1; shift
    start_emulator --synthetic "$SIZE" "$@"
    prepare_guide
    local a=() ceil=() b=() c=() s=()
    for _ in $(seq "$RUNS"); do
        a+=("$(time_it sh -c "curl -s '$URL' | openssl enc -d -aes-256-cbc -K $CEK -iv $IV")")
        ceil+=("$(time_it curl -s -o /dev/null "$URL")")
        "$BIN" mount "$WORK/mnt" -k "$WORK/key.pem"
        b+=("$(time_it cp "$WORK/mnt/recordings/$SID.mka" /dev/null)")
        umount "$WORK/mnt"
        c+=("$(time_it "$BIN" get "$SID" -k "$WORK/key.pem" -o -)")
        start_serve
        s+=("$(time_it curl -s -o /dev/null "${SERVE_URL}recordings/$SID.mka")")
        stop_serve
    done
    local ta tc tb tceil
    ta=$(median "${a[@]}"); tceil=$(median "${ceil[@]}"); tb=$(median "${b[@]}"); tc=$(median "${c[@]}")
    local ts; ts=$(median "${s[@]}")
    printf '%-8s %-34s %8s MB/s  %5s\n' "$name" "(a) curl | openssl enc -d" "$(mbps "$BYTES" "$ta")" "1.00x"
    printf '%-8s %-34s %8s MB/s  %5sx\n' "$name" "    curl -o /dev/null (ceiling)" "$(mbps "$BYTES" "$tceil")" "$(python3 -c "print(f'{$ta/$tceil:.2f}')")"
    printf '%-8s %-34s %8s MB/s  %5sx\n' "$name" "(b) cp from the mount, cold" "$(mbps "$BYTES" "$tb")" "$(python3 -c "print(f'{$ta/$tb:.2f}')")"
    printf '%-8s %-34s %8s MB/s  %5sx\n' "$name" "(c) twilio-media-fs get" "$(mbps "$BYTES" "$tc")" "$(python3 -c "print(f'{$ta/$tc:.2f}')")"
    printf '%-8s %-34s %8s MB/s  %5sx  (%.2fx the mount)\n' "$name" "(s) curl from serve, cold" "$(mbps "$BYTES" "$ts")" "$(python3 -c "print(f'{$ta/$ts:.2f}')")" "$(python3 -c "print($tb/$ts)")"
}

storage_bytes() { curl -s "$TWILIO_MEDIA_FS_API_URL/emulator/stats" | python3 -c 'import sys, json; print(json.load(sys.stdin)["storage_bytes"])'; }
reset_stats() { curl -s -X POST "$TWILIO_MEDIA_FS_API_URL/emulator/stats/reset" > /dev/null; }
mount_pid() { pgrep -f -- "mount $WORK/mnt" | head -1; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

seeks_and_memory() {
    # A Matroska file of raw video, about 345 MB, made once and kept under target/.
    local media=$PWD/target/bench-media
    if [[ ! -s $media/raw-video.mkv ]]; then
        mkdir -p "$media"
        ffmpeg -v error -y -f lavfi -i testsrc2=size=640x480:rate=25 -t 30 -c:v rawvideo \
            -pix_fmt yuv420p "$media/raw-video.mkv"
    fi
    local readers=()
    for _ in $(seq 16); do readers+=(--synthetic 64MiB); done
    start_emulator --data "$media" --synthetic 1GiB "${readers[@]}"
    local raw big
    raw=$("$BIN" ls --json | python3 -c '
import sys, json
for l in sys.stdin:
    r = json.loads(l)
    if r["container_format"] == "mkv" and (r.get("size") or 0) > 100e6: print(r["sid"])')
    local raw_size; raw_size=$(stat -c %s "$media/raw-video.mkv")
    local probe=() seek=() probe_bytes=() seek_bytes=() hprobe=() hprobe_bytes=()
    for _ in $(seq "$RUNS"); do
        "$BIN" mount "$WORK/mnt" -k "$WORK/key.pem"
        reset_stats
        probe+=("$(time_it ffprobe -v error -show_format -show_streams "$WORK/mnt/recordings/$raw.mkv")")
        probe_bytes+=("$(storage_bytes)")
        umount "$WORK/mnt"
        "$BIN" mount "$WORK/mnt" -k "$WORK/key.pem"
        reset_stats
        seek+=("$(time_it ffmpeg -v error -ss 15 -i "$WORK/mnt/recordings/$raw.mkv" -frames:v 1 -f md5 -)")
        seek_bytes+=("$(storage_bytes)")
        umount "$WORK/mnt"
        start_serve
        reset_stats
        hprobe+=("$(time_it ffprobe -v error -show_format -show_streams "${SERVE_URL}recordings/$raw.mkv")")
        hprobe_bytes+=("$(storage_bytes)")
        stop_serve
    done
    local pb sb
    pb=$(median "${probe_bytes[@]}"); sb=$(median "${seek_bytes[@]}")
    printf '%-8s %-34s %8.3f s    %6.2f%% of %s bytes fetched\n' local "(d) ffprobe, cold" "$(median "${probe[@]}")" \
        "$(python3 -c "print(100*$pb/$raw_size)")" "$raw_size"
    printf '%-8s %-34s %8.3f s    %6.2f%% of %s bytes fetched\n' local "(d) ffmpeg -ss 15 -frames:v 1, cold" "$(median "${seek[@]}")" \
        "$(python3 -c "print(100*$sb/$raw_size)")" "$raw_size"
    local hb; hb=$(median "${hprobe_bytes[@]}")
    printf '%-8s %-34s %8.3f s    %6.2f%% of %s bytes fetched\n' local "(d) ffprobe over serve (http), cold" "$(median "${hprobe[@]}")" \
        "$(python3 -c "print(100*$hb/$raw_size)")" "$raw_size"

    big=$("$BIN" ls --json | python3 -c '
import sys, json
print(max((json.loads(l) for l in sys.stdin), key=lambda r: r.get("size") or 0)["sid"])')
    "$BIN" mount "$WORK/mnt" -k "$WORK/key.pem" --cache-size 512MiB
    cp "$WORK/mnt/recordings/$big.mka" /dev/null
    printf '%-8s %-34s %8s MiB  (--cache-size 512 MiB)\n' local "(e) peak RSS, cp of 1 GiB" "$(peak_rss_mib "$(mount_pid)")"
    umount "$WORK/mnt"
    local small
    small=$("$BIN" ls --json | python3 -c '
import sys, json
for l in sys.stdin:
    r = json.loads(l)
    if r.get("size") == 64 << 20: print(r["sid"])')
    "$BIN" mount "$WORK/mnt" -k "$WORK/key.pem" --cache-size 512MiB
    local pids=()
    for sid in $small; do cp "$WORK/mnt/recordings/$sid.mka" /dev/null & pids+=($!); done
    wait "${pids[@]}"
    printf '%-8s %-34s %8s MiB  (--cache-size 512 MiB)\n' local "(e) peak RSS, 16 readers x 64 MiB" "$(peak_rss_mib "$(mount_pid)")"
    umount "$WORK/mnt"
    # Random reads keep nothing in the kernel's way: every window stays in the cache
    # until evicted, so this is the case that fills it (2400 windows through 512 MiB).
    "$BIN" mount "$WORK/mnt" -k "$WORK/key.pem" --cache-size 512MiB
    python3 - "$WORK/mnt/recordings/$big.mka" <<'PY'
import os, sys, random, threading
path = sys.argv[1]; size = os.path.getsize(path)
def reader(seed):
    r = random.Random(seed); fd = os.open(path, os.O_RDONLY)
    for _ in range(300):
        os.pread(fd, 65536, r.randrange(0, size - 65536))
    os.close(fd)
threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
PY
    printf '%-8s %-34s %8s MiB  (--cache-size 512 MiB)\n' local "(e) peak RSS, 8 random readers, 1 GiB" "$(peak_rss_mib "$(mount_pid)")"
    umount "$WORK/mnt"
}

PARTS=${PARTS:-throughput seeks}
if [[ $PARTS == *throughput* ]]; then
    echo "object: synthetic encrypted recording of $SIZE; median of $RUNS runs; ratio = speed vs (a)"
    run_setting local
    run_setting s3-like --latency-ms 20 --bandwidth 64MiB
fi
[[ $PARTS == *seeks* ]] && seeks_and_memory
exit 0
