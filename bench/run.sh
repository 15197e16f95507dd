#!/usr/bin/env bash
# The project's benchmark: every figure twice, once with the emulator as storage and once
# with nginx (a server this project did not write) serving the same encrypted objects, in
# two settings:
#   local    no added latency, no bandwidth cap
#   s3-like  20 ms before each response, 64 MiB/s per connection (one S3 connection).
#            The emulator does it itself (--latency-ms 20 --bandwidth 64MiB); nginx with
#            its own limit_rate and the echo module's echo_sleep (libnginx-mod-http-echo).
# With nginx, the emulator still answers the API (also 20 ms late when S3-like) and its
# /Media redirects to nginx (--storage-url); nginx serves the objects from files copied
# out of the emulator, with their x-amz-meta-* headers from a generated config.
#
# throughput (256 MiB synthetic recording; SIZE to change):
#   (a) the guide's way, curl | openssl enc -d; the link: curl -o /dev/null (one
#   connection) and curl --parallel of 1 MiB ranges over 32 connections (the ceiling);
#   (b) cp from a cold mount; (c) twilio-media-fs get; (s) curl from a cold `serve`.
# waste (S3-like, a 1.15 GB Matroska file of raw video, 100 s at 11.5 MB/s): bytes the
#   mount fetched / bytes it served to the kernel (its .stats), cold mount each, for
#   ffmpeg -ss 60 -t 5, mediainfo, and a player: three far seeks, each followed by 5 s of
#   reads paced at the file's bitrate (python, 256 KiB preads on one descriptor).
# seeks (local): ffprobe and ffmpeg -ss 15 -frames:v 1 of a 345 MB raw-video mkv through a
#   cold mount and ffprobe over a cold `serve`: share of the file fetched.
# memory (local): the mount's peak RSS: cp of 1 GiB, 16 readers of 16 files, 8 random
#   readers, against --cache-size 512MiB.
# Prints medians of RUNS runs (default 5) and ratios within the run. Usage:
#   bench/run.sh                                   # everything, both storage servers
#   PARTS="throughput waste" STORAGE=nginx RUNS=3 bench/run.sh
#   SIZE=1GiB PARTS=throughput bench/run.sh
# Needs: curl, openssl, python3, ffmpeg, mediainfo, nginx, libnginx-mod-http-echo.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZE=${SIZE:-256MiB}
RUNS=${RUNS:-5}
PARTS=${PARTS:-throughput waste seeks memory}
STORAGE=${STORAGE:-emulator nginx}
ECHO_MODULE=${ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}
for tool in curl openssl python3 ffmpeg ffprobe mediainfo nginx xxd; do
    command -v "$tool" > /dev/null || { echo "bench/run.sh needs $tool" >&2; exit 1; }
done
[[ $STORAGE != *nginx* || -e $ECHO_MODULE ]] ||
    { echo "bench/run.sh needs nginx's echo module ($ECHO_MODULE): apt-get install libnginx-mod-http-echo" >&2; exit 1; }
cargo build --release --quiet
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET/release/twilio-media-fs
WORK=$(mktemp -d)
EMU_PID=
SERVE_PID=
NGINX_PID=
cleanup() {
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
    umount -l "$WORK/mnt" 2>/dev/null || true
    sleep 0.2
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/mnt"
chmod 711 "$WORK" # nginx's workers (nobody) read the objects under it

now() { date +%s.%N; }
median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
calc() { python3 -c "print($1)"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
time_it() { local t0; t0=$(now); "$@" > /dev/null; calc "$(now) - $t0"; }

# Results, printed side by side at the end: ROW[key] = "label", VAL[key|storage] = text.
declare -A VAL
ROWS=()
row() { local key=$1 label=$2; [[ " ${ROWS[*]} " == *" $key "* ]] || ROWS+=("$key"); LABEL[$key]=$label; }
declare -A LABEL
put() { VAL["$1|$2"]=$3; printf '  %-10s %-58s %s\n' "$2" "${LABEL[$1]}" "$3" >&2; }

stop_stack() {
    [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null && wait "$EMU_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null || true
    EMU_PID= NGINX_PID=
    rm -rf "$WORK/nginx"
}

# start_stack STORAGE SETTING EMULATOR-ARGS...: the emulator with these objects, and for
# STORAGE=nginx an nginx serving copies of them; SETTING local or s3-like.
start_stack() {
    local storage=$1 setting=$2; shift 2
    stop_stack
    local extra=() ngport=
    [[ $setting == s3-like ]] && extra+=(--latency-ms 20)
    if [[ $storage == nginx ]]; then
        ngport=$(free_port)
        extra+=(--storage-url "http://127.0.0.1:$ngport")
    elif [[ $setting == s3-like ]]; then
        extra+=(--bandwidth 64MiB)
    fi
    "$BIN" emulator --listen 127.0.0.1:0 --private-key-out "$WORK/key.pem" "${extra[@]}" "$@" \
        > "$WORK/emu.out" 2>&1 &
    EMU_PID=$!
    for _ in $(seq 600); do grep -q '^export TWILIO_AUTH_TOKEN' "$WORK/emu.out" 2>/dev/null && break; sleep 0.1; done
    eval "$(grep '^export ' "$WORK/emu.out")"
    "$BIN" ls --json > "$WORK/ls.json"
    [[ $storage == nginx ]] && start_nginx "$ngport" "$setting"
    return 0
}

# Copies every object out of the emulator's own storage (body and headers, as Twilio's
# storage would hand them over), and serves them with nginx on PORT.
start_nginx() {
    local port=$1 setting=$2 ng=$WORK/nginx auth="$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN"
    mkdir -p "$ng/objects" "$ng/headers" "$ng/tmp"
    python3 -c '
import sys, json
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("size") and r["sid"][:2] in ("RT", "CJ"): print(r["sid"])' "$WORK/ls.json" |
    while read -r sid _; do
        local coll=Recordings
        [[ $sid == CJ* ]] && coll=Compositions
        local url
        url=$(curl -s -u "$auth" "$TWILIO_MEDIA_FS_API_URL/v1/$coll/$sid/Media?Ttl=3600" |
            python3 -c 'import sys, json; print(json.load(sys.stdin).get("redirect_to", ""))')
        [[ -n $url ]] || continue
        # The same signed path at the emulator's own storage.
        curl -sf -D "$ng/headers/$sid" -o "$ng/objects/$sid" \
            "${TWILIO_MEDIA_FS_API_URL}${url#http://127.0.0.1:$port}"
    done
    python3 - "$ng" "$port" "$setting" "$ECHO_MODULE" > "$ng/nginx.conf" <<'PY'
import os, sys
ng, port, setting, echo = sys.argv[1:]
maps = {}
for sid in sorted(os.listdir(f"{ng}/headers")):
    for line in open(f"{ng}/headers/{sid}", encoding="latin-1"):
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name.startswith("x-amz-meta-"):
            maps.setdefault(name, {})[sid] = value.strip()
q = lambda v: "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
s3 = setting == "s3-like"
print(f"load_module {echo};" if s3 else "")
print(f"""daemon off; worker_processes 2; pid {ng}/nginx.pid; error_log {ng}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 120s;
  default_type application/octet-stream;
  client_body_temp_path {ng}/tmp; proxy_temp_path {ng}/tmp; fastcgi_temp_path {ng}/tmp;
  uwsgi_temp_path {ng}/tmp; scgi_temp_path {ng}/tmp;""")
vars = {}
for i, (name, per) in enumerate(sorted(maps.items())):
    var = f"$amz{i}"
    vars[name] = var
    print(f"  map $uri {var} {{ default ''; " + " ".join(f"/{sid} {q(v)};" for sid, v in per.items()) + " }")
headers = " ".join(f"add_header {name} {var};" for name, var in vars.items())
print(f"  server {{ listen 127.0.0.1:{port}; root {ng}/objects;")
if s3:
    # 20 ms before each response, then the file at 64 MiB/s per connection.
    print("    location /storage/ { echo_sleep 0.02; echo_exec @object; }")
    print(f"    location @object {{ rewrite ^/storage/(.*)$ /$1 break; limit_rate 64m; {headers} }}")
else:
    print(f"    location /storage/ {{ rewrite ^/storage/(.*)$ /$1 break; {headers} }}")
print("  }\n}")
PY
    nginx -c "$ng/nginx.conf" -p "$ng" &
    NGINX_PID=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
}

# The largest object, or the first Matroska video object larger than 100 MB ("mkv").
pick() {
    python3 - "$WORK/ls.json" "$1" <<'PY'
import sys, json
rows = [json.loads(l) for l in open(sys.argv[1])]
if sys.argv[2] == "mkv":
    rows = [r for r in rows if r.get("container_format") == "mkv"]
r = max(rows, key=lambda r: r.get("size") or 0)
print(r["sid"], r["size"], r["container_format"])
PY
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
    # The link's ceiling: the stored object in 1 MiB ranges over 32 connections.
    local stored; stored=$(grep -i '^content-range:' "$WORK/h.txt" | sed 's|.*/||' | tr -d '\r')
    python3 - "$URL" "$stored" > "$WORK/parallel.cfg" <<'PY'
import sys
url, size = sys.argv[1], int(sys.argv[2])
print("\nnext\n".join(f'url = "{url}"\nrange = {off}-{min(off + (1 << 20), size) - 1}\noutput = /dev/null'
                      for off in range(0, size, 1 << 20)))
PY
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
mount_cold() { "$BIN" mount "$WORK/mnt" -k "$WORK/key.pem" --no-metadata-cache "$@"; }
stat_of() { python3 -c "import json,sys; print(json.load(open('$WORK/mnt/.stats'))['$1'])"; }

throughput() {
    local storage=$1 setting=$2
    start_stack "$storage" "$setting" --synthetic "$SIZE"
    read -r SID BYTES _ < <(pick any)
    prepare_guide
    local a=() one=() par=() b=() c=() s=()
    for _ in $(seq "$RUNS"); do
        a+=("$(time_it sh -c "curl -s '$URL' | openssl enc -d -aes-256-cbc -K $CEK -iv $IV")")
        one+=("$(time_it curl -s -o /dev/null "$URL")")
        par+=("$(time_it curl -s --parallel --parallel-max 32 -K "$WORK/parallel.cfg" 2> /dev/null)")
        mount_cold
        b+=("$(time_it cp "$WORK/mnt/recordings/$SID.mka" /dev/null)")
        umount "$WORK/mnt"
        c+=("$(time_it "$BIN" get "$SID" -k "$WORK/key.pem" -o -)")
        start_serve
        s+=("$(time_it curl -s -o /dev/null "${SERVE_URL}recordings/$SID.mka")")
        stop_serve
    done
    local ta; ta=$(median "${a[@]}")
    show() {
        local key=$1 label=$2 t; t=$(median "${@:3}")
        row "$setting $key" "$setting  $label"
        put "$setting $key" "$storage" "$(python3 -c "print(f'{$BYTES/$t/1e6:6.0f} MB/s {$ta/$t:5.2f}x')")"
    }
    show a "(a) curl | openssl enc -d (the guide)" "${a[@]}"
    show one "    curl -o /dev/null, one connection" "${one[@]}"
    show par "    curl --parallel, 32 x 1 MiB ranges (ceiling)" "${par[@]}"
    show b "(b) cp from a cold mount" "${b[@]}"
    show c "(c) twilio-media-fs get" "${c[@]}"
    show s "(s) curl from a cold serve" "${s[@]}"
}

# A 1.15 GB Matroska file of raw video (100 s, 640x480 yuv420p at 25 fps), made once.
RAW1G=$TARGET/bench-media/1g/raw-video-1g.mkv
RAW345=$TARGET/bench-media/raw-video.mkv
make_media() {
    mkdir -p "$(dirname "$RAW1G")"
    if [[ ! -s $RAW1G ]]; then
        ffmpeg -v error -y -f lavfi -i testsrc2=size=640x480:rate=25 -t 100 \
            -c:v rawvideo -pix_fmt yuv420p -f matroska "$RAW1G.part"
        mv "$RAW1G.part" "$RAW1G"
    fi
    [[ -s $RAW345 ]] || ffmpeg -v error -y -f lavfi -i testsrc2=size=640x480:rate=25 -t 30 \
        -c:v rawvideo -pix_fmt yuv420p "$RAW345"
}

# Three far seeks, each followed by 5 s of 256 KiB reads paced at BYTES_PER_SEC.
PLAYER='
import os, sys, time
path, rate = sys.argv[1], float(sys.argv[2])
size = os.path.getsize(path); fd = os.open(path, os.O_RDONLY); chunk = 256 << 10
os.pread(fd, 1 << 20, 0)  # the header, as a player reads it first
for at in (0.2, 0.75, 0.45):
    off = int(size * at) // 4096 * 4096; t0 = time.monotonic(); n = 0
    while n < rate * 5:
        os.pread(fd, chunk, off + n); n += chunk
        late = t0 + n / rate - time.monotonic()
        if late > 0: time.sleep(late)
os.close(fd)'

waste() {
    local storage=$1
    make_media
    start_stack "$storage" s3-like --data "$(dirname "$RAW1G")"
    read -r sid size _ < <(pick mkv)
    local f=$WORK/mnt/recordings/$sid.mkv rate
    rate=$(python3 -c "print($size / 100)")
    declare -A w
    local name
    for _ in $(seq "$RUNS"); do
        for name in ffmpeg mediainfo player; do
            mount_cold
            case $name in
                ffmpeg) ffmpeg -v error -ss 60 -i "$f" -t 5 -f null - ;;
                mediainfo) mediainfo "$f" > /dev/null ;;
                player) python3 -c "$PLAYER" "$f" "$rate" ;;
            esac
            w[$name]+=" $(calc "$(stat_of bytes_fetched) / max(1, $(stat_of bytes_served))")"
            w[$name-mb]+=" $(calc "$(stat_of bytes_fetched) / 1e6")"
            umount "$WORK/mnt"
        done
    done
    local label
    for name in ffmpeg mediainfo player; do
        case $name in
            ffmpeg) label="ffmpeg -ss 60 -i F -t 5 -f null -" ;;
            mediainfo) label="mediainfo F" ;;
            player) label="player: 3 far seeks, 5 s each at the bitrate" ;;
        esac
        # shellcheck disable=SC2086
        row "waste $name" "s3-like  waste, $label"
        # shellcheck disable=SC2086
        put "waste $name" "$storage" "$(python3 -c "print(f'{$(median ${w[$name]}):5.2f} fetched/served ({$(median ${w[$name-mb]}):.0f} MB)')")"
    done
}

seeks() {
    local storage=$1
    make_media
    start_stack "$storage" local --data "$(dirname "$RAW345")"
    read -r sid size _ < <(pick mkv)
    local f=$WORK/mnt/recordings/$sid.mkv probe=() probe_b=() seek=() seek_b=() http=() http_b=()
    for _ in $(seq "$RUNS"); do
        mount_cold
        probe+=("$(time_it ffprobe -v error -show_format -show_streams "$f")")
        probe_b+=("$(stat_of bytes_fetched)")
        umount "$WORK/mnt"
        mount_cold
        seek+=("$(time_it ffmpeg -v error -ss 15 -i "$f" -frames:v 1 -f md5 -)")
        seek_b+=("$(stat_of bytes_fetched)")
        umount "$WORK/mnt"
        start_serve
        http+=("$(time_it ffprobe -v error -show_format -show_streams "${SERVE_URL}recordings/$sid.mkv")")
        http_b+=("$(curl -s "${SERVE_URL}.stats" | python3 -c 'import sys, json; print(json.load(sys.stdin)["bytes_fetched"])')")
        stop_serve
    done
    show() {
        row "seeks $1" "local    $2"
        put "seeks $1" "$storage" "$(python3 -c "print(f'{100*$(median "${@:4}")/$size:5.2f}% of $size B fetched, {$(median $3):.3f} s')")"
    }
    show probe "(d) ffprobe, cold mount" "${probe[*]}" "${probe_b[@]}"
    show seek "(d) ffmpeg -ss 15 -frames:v 1, cold mount" "${seek[*]}" "${seek_b[@]}"
    show http "(d) ffprobe over a cold serve" "${http[*]}" "${http_b[@]}"
}

peak_rss_mib() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
mount_pid() { pgrep -f -- "mount $WORK/mnt" | head -1; }
memory() {
    local storage=$1 readers=()
    for _ in $(seq 16); do readers+=(--synthetic 64MiB); done
    start_stack "$storage" local --synthetic 1GiB "${readers[@]}"
    local big small
    read -r big _ < <(pick any)
    small=$(python3 -c '
import sys, json
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("size") == 64 << 20: print(r["sid"])' "$WORK/ls.json")
    mount_cold --cache-size 512MiB
    cp "$WORK/mnt/recordings/$big.mka" /dev/null
    row "rss cp" "local    (e) peak RSS, cp of 1 GiB (--cache-size 512MiB)"
    put "rss cp" "$storage" "$(peak_rss_mib "$(mount_pid)") MiB"
    umount "$WORK/mnt"
    mount_cold --cache-size 512MiB
    local pids=()
    for sid in $small; do cp "$WORK/mnt/recordings/$sid.mka" /dev/null & pids+=($!); done
    wait "${pids[@]}"
    row "rss 16" "local    (e) peak RSS, 16 readers x 64 MiB (--cache-size 512MiB)"
    put "rss 16" "$storage" "$(peak_rss_mib "$(mount_pid)") MiB"
    umount "$WORK/mnt"
    # Random reads keep nothing in the kernel's way: every window stays in the cache
    # until evicted, so this is the case that fills it (2400 windows through 512 MiB).
    mount_cold --cache-size 512MiB
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
    row "rss random" "local    (e) peak RSS, 8 random readers of 1 GiB (--cache-size 512MiB)"
    put "rss random" "$storage" "$(peak_rss_mib "$(mount_pid)") MiB"
    umount "$WORK/mnt"
}

# Sourced (`source bench/run.sh`), it only defines the above: start_stack and the parts.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0
echo "median of $RUNS runs; ratios are to (a) in the same run; storage: $STORAGE; parts: $PARTS" >&2
for part in $PARTS; do
    for storage in $STORAGE; do
        case $part in
            throughput) throughput "$storage" local; throughput "$storage" s3-like ;;
            waste) waste "$storage" ;;
            seeks) seeks "$storage" ;;
            memory) memory "$storage" ;;
            *) echo "unknown part $part (throughput, waste, seeks, memory)" >&2; exit 2 ;;
        esac
    done
done
stop_stack

read -ra storages <<< "$STORAGE"
printf '\n%-70s' "median of $RUNS runs, SIZE=$SIZE"
for st in "${storages[@]}"; do printf ' | %-36s' "$st storage"; done
echo
for key in "${ROWS[@]}"; do
    printf '%-70s' "${LABEL[$key]}"
    for st in "${storages[@]}"; do printf ' | %-36s' "${VAL["$key|$st"]:--}"; done
    echo
done
