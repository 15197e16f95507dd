//! The command line: clap definitions close to the flags, and the value parsers that
//! check them while parsing.
//!
//! It owns what a user types and sees in `--help`, man pages and completions, nothing
//! else: it must not import [`crate::cmd`], which runs the commands and imports these
//! types, nor load keys or credentials (turning flags into the library's configs
//! happens in `cmd`). Flag groups that several subcommands take ([`KeyArgs`],
//! [`ApiArgs`], [`RetryArgs`]) are defined once and flattened into each.
//!
//! Secrets never come from arguments (they show in `ps`): credentials and passphrases
//! come from the environment or files.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::app;
use crate::serve::listen::Bind;

/// The end of `--help` and of the man page: fstab, systemd, files, environment.
const AFTER_LONG_HELP: &str = "\
Mounting from /etc/fstab:
  twilio-media-fs /mnt/twilio fuse.twilio-media-fs ro,_netdev,allow_other,key=/etc/twilio-media-fs/key.pem,credentials=/etc/twilio-media-fs/credentials 0 0

  `mount /mnt/twilio` and `mount -a` run `twilio-media-fs SOURCE MOUNTPOINT -o OPTIONS` \
(through mount.fuse3, with the default PATH: the program must be in /usr/bin, where \
the package puts it, or /usr/local/bin). Options: ro (required: the mount is read-only), allow_other, \
key=PATH[:PATH...], credentials=FILE, cache_size=SIZE, window=SIZE, refresh=DURATION, \
listing_deadline=DURATION, room=RM...|CA...[:...], since=DATE, uid=N, gid=N, api_url=URL, voice_api_url=URL, fsname=NAME, timeout=DURATION, \
retry_budget=DURATION, min_rate=RATE, metadata_cache=DIR, no_metadata_cache, exact_sizes, \
require_encrypted, each as the \
`mount` flag of the same name. Generic options (_netdev, nofail, noauto, user, \
x-systemd.*, nodev, nosuid, noatime...) are ignored; any other is refused.

systemd:
  systemctl enable --now twilio-media-fs@$(systemd-escape --path /mnt/twilio)

  The template unit mounts after the network is online, restarts on failure and \
unmounts on stop; it reads /etc/twilio-media-fs/credentials and \
/etc/twilio-media-fs/key.pem, and more flags from /etc/twilio-media-fs/INSTANCE.env.

Files:
  ~/.config/twilio-media-fs/config.toml  credentials: account_sid + auth_token, or api_key + api_secret
  /etc/twilio-media-fs/credentials       the same format, for fstab and systemd (mode 0600)
  ~/.cache/twilio-media-fs/sizes         exact file sizes learned, for the next mounts (--metadata-cache;
                                         /var/cache/twilio-media-fs/sizes for root)
  MOUNTPOINT/.stats                      what a mount is doing, as JSON (not listed by ls)

Environment:
  TWILIO_API_KEY, TWILIO_API_SECRET, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN  credentials
  TWILIO_MEDIA_FS_API_URL, TWILIO_MEDIA_FS_ACCOUNTS_URL  other API endpoints (the emulator)
  TWILIO_MEDIA_FS_KEY_PASSPHRASE  the passphrase of encrypted private keys
  RUST_LOG  the log filter (overrides -v)";

/// Flag defaults as `--help` shows them, written from the library's own defaults
/// ([`crate::app`], [`crate::retry::RetryPolicy`]) so that the two cannot disagree.
static DEFAULT_CACHE_SIZE: LazyLock<String> =
    LazyLock::new(|| format_size(app::DEFAULT_CACHE_SIZE));
static DEFAULT_WINDOW: LazyLock<String> = LazyLock::new(|| format_size(app::DEFAULT_WINDOW));
static DEFAULT_REFRESH: LazyLock<String> = LazyLock::new(|| format_duration(app::DEFAULT_REFRESH));
static DEFAULT_LISTING_DEADLINE: LazyLock<String> =
    LazyLock::new(|| format_duration(app::DEFAULT_LISTING_DEADLINE));
static DEFAULT_RETRY_BUDGET: LazyLock<String> =
    LazyLock::new(|| format_duration(crate::retry::RetryPolicy::default().total_budget));
static DEFAULT_MIN_RATE: LazyLock<String> =
    LazyLock::new(|| format_size(crate::retry::RetryPolicy::default().min_rate.bytes_per_sec));

#[derive(Debug, Parser)]
#[command(
    name = "twilio-media-fs",
    version,
    about = "Twilio Video recordings and compositions, decrypted on read",
    long_about = "Twilio Video recordings and compositions, decrypted on read.\n\n\
        Twilio's encrypted storage keeps each recording AES-CBC encrypted under a one-time \
        content key, wrapped with your account's RSA public key. This tool decrypts it with \
        your private key: one downloaded file with `decrypt-file`, objects by SID with `get`, \
        or the whole account with `mount`, which fetches and decrypts only the ranges that \
        are read.",
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decrypt an encrypted object downloaded from Twilio's storage.
    ///
    /// Replaces `openssl rsautl -decrypt` + `openssl enc -d -aes-256-cbc` of Twilio's
    /// guide: give it the file, your private key(s) and the response headers that came
    /// with the download (`curl -D headers.txt` or `wget -S`), or the two header values.
    /// A Voice call recording (AES-256-GCM, its key RSA-OAEP-wrapped) takes its
    /// resource's `encryption_details` instead: --recording FILE, or --cek and --iv; its
    /// GCM tag is checked, and a file that fails it leaves no output.
    #[command(after_help = "Examples:\n  \
        curl -s -D headers.txt -o RT123.mka.enc \"$MEDIA_URL\"\n  \
        twilio-media-fs decrypt-file RT123.mka.enc -k private.pem --headers headers.txt -o RT123.mka\n\n  \
        twilio-media-fs decrypt-file RT123.mka.enc -k private.pem \\\n      \
        --key-header \"$X_AMZ_KEY\" --iv \"$X_AMZ_IV\" -o - | ffprobe -\n\n  \
        curl -s -u \"$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN\" -o RE123.json \"$RECORDING_URL.json\"\n  \
        twilio-media-fs decrypt-file RE123.wav.enc -k private.pem --recording RE123.json -o RE123.wav")]
    DecryptFile(DecryptFileArgs),

    /// List recordings, compositions, rooms or Voice call recordings of the account.
    #[command(after_help = "Examples:\n  \
        twilio-media-fs ls\n  \
        twilio-media-fs ls compositions --room RMxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  \
        twilio-media-fs ls recordings --status completed --json | jq .sid")]
    Ls(LsArgs),

    /// Download and decrypt recordings, compositions or call recordings by SID.
    ///
    /// Fetches each object as several ranged requests in parallel, decrypts as it goes
    /// (constant memory), retries what fails, and writes each file atomically.
    #[command(after_help = "Examples:\n  \
        twilio-media-fs get RTxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx -k private.pem\n  \
        twilio-media-fs get RTxx… CJxx… -k new.pem -k old.pem -o downloads/\n  \
        twilio-media-fs get CJxx… -k private.pem -o - | ffprobe -")]
    Get(GetArgs),

    /// Rebuild a room's composition from its encrypted recordings, with ffmpeg.
    ///
    /// Twilio cannot compose encrypted recordings; this does it on your machine. It
    /// finds the room's tracks, lines them up in time (each Recording's offset plus its
    /// Matroska start time), mixes the audio, tiles the video in Twilio's grid or your
    /// --layout, and writes one MP4 or WebM file. The tracks are decrypted on the fly
    /// and handed to ffmpeg over loopback HTTP: no decrypted track touches the disk.
    /// Needs ffmpeg and ffprobe on PATH (Debian: apt-get install ffmpeg).
    #[command(after_help = "Examples:\n  \
        twilio-media-fs compose RMxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx -k private.pem -o room.mp4\n  \
        twilio-media-fs compose RMxx… -k private.pem --plan\n  \
        twilio-media-fs compose RMxx… -k private.pem --format webm --no-trim --resolution 1280x720 -o room.webm\n  \
        twilio-media-fs compose RMxx… -k private.pem --audio-only --exclude-audio 'bot-*' -o room.m4a\n  \
        twilio-media-fs compose RMxx… -k private.pem -o room.mp4 \\\n      \
        --layout '{\"main\": {\"max_rows\": 1, \"video_sources\": [\"*\"], \"reuse\": \"show_newest\"}}'")]
    Compose(ComposeArgs),

    /// Mount the account as a read-only filesystem, decrypted on read.
    ///
    /// recordings/RTxx.mka|mkv, compositions/CJxx.mp4|webm and rooms/RMxx/, and the
    /// Voice call recordings voice/RExx.wav and calls/CAxx/, appear as ordinary files: only the ranges read are fetched and decrypted, kept in a
    /// bounded in-memory cache; nothing decrypted is written to disk. Returns once the
    /// mount is ready (or says why it is not); `umount MOUNTPOINT` ends it.
    ///
    /// `cat MOUNTPOINT/.stats` shows what the mount is doing (JSON: cache hits and misses,
    /// bytes fetched and served, retries, errors, open files, fetches in flight).
    #[command(after_help = "Examples:\n  \
        twilio-media-fs mount /mnt/twilio -k private.pem\n  \
        twilio-media-fs mount /mnt/twilio -k new.pem -k old.pem --cache-size 1GiB --room RMxx…\n  \
        cat /mnt/twilio/.stats\n  \
        umount /mnt/twilio\n\n\
        From /etc/fstab (mount /mnt/twilio, mount -a; see `man twilio-media-fs`):\n  \
        twilio-media-fs /mnt/twilio fuse.twilio-media-fs ro,_netdev,allow_other,key=/etc/twilio-media-fs/key.pem,credentials=/etc/twilio-media-fs/credentials 0 0")]
    Mount(MountArgs),

    /// Serve the account over HTTP: the mount's tree for players, browsers and
    /// machines without FUSE.
    ///
    /// /recordings/RTxx.mka, /compositions/CJxx.mp4, /rooms/RMxx/, /voice/ and /calls/,
    /// decrypted on read with the same cache, prefetcher and retry budget as `mount`:
    /// GET and HEAD with Range (206/416), ETag, Last-Modified and conditional requests
    /// (304). Directories are HTML pages with players (or JSON: `?format=json`, or
    /// `Accept: application/json`); FILE?play is a page with one file's player. GET
    /// /.stats is what the read core is doing; GET /healthz answers `ok` without
    /// credentials. Prints `listening on URL` per address once ready; runs until
    /// SIGINT/SIGTERM.
    ///
    /// Loopback addresses and Unix sockets need no credentials. Any other address is
    /// refused unless a bearer token (--token-file, or TWILIO_MEDIA_FS_SERVE_TOKEN) or
    /// an htpasswd file (--htpasswd, bcrypt entries) is set; use --tls-cert/--tls-key,
    /// or a TLS proxy in front, so that they do not cross the network in clear.
    #[command(after_help = "Examples:\n  \
        twilio-media-fs serve -k private.pem\n  \
        vlc http://127.0.0.1:8080/recordings/RTxx….mka\n  \
        ffprobe http://127.0.0.1:8080/compositions/CJxx….mp4\n  \
        curl -r 0-999 http://127.0.0.1:8080/recordings/RTxx….mka | xxd | head\n  \
        curl -H 'Accept: application/json' http://127.0.0.1:8080/rooms/\n  \
        htpasswd -cB /etc/twilio-media-fs/htpasswd alice\n  \
        twilio-media-fs serve -k private.pem --listen 0.0.0.0:8443 \\\n      \
        --htpasswd /etc/twilio-media-fs/htpasswd --tls-cert cert.pem --tls-key key.pem")]
    Serve(ServeArgs),

    /// Check the setup, one line per check: credentials, encryption settings, the public
    /// key, that the private keys are its pair, a decryption, FUSE.
    ///
    /// Each line says OK, or what is wrong and how to fix it; the exit status is 1 when a
    /// check fails. Twilio never returns a public key's material, so the key pair is
    /// proved on the newest encrypted recording and composition: their content keys must
    /// unwrap with one of the private keys given.
    #[command(after_help = "Examples:\n  \
        twilio-media-fs doctor -k private.pem\n  \
        twilio-media-fs doctor -k /etc/twilio-media-fs/key.pem --credentials /etc/twilio-media-fs/credentials\n  \
        twilio-media-fs doctor -k private.pem --listen 0.0.0.0:8443 --htpasswd htpasswd --tls-cert cert.pem --tls-key key.pem")]
    Doctor(DoctorArgs),

    /// Write the man pages or shell completions (for packaging).
    #[command(hide = true)]
    Generate(GenerateArgs),

    /// Mount a local demo account (the emulator, sample media, a fresh key) as `mount`
    /// does, with its defaults: try the filesystem with no Twilio account. Ctrl-C unmounts.
    Demo(DemoArgs),

    /// Serve a local stand-in for video.twilio.com and its media storage.
    ///
    /// Serves the embedded sample recordings and compositions (plus --data files and
    /// --synthetic objects), encrypted as Twilio stores them, behind the same REST API.
    /// Point the other commands at it with TWILIO_MEDIA_FS_API_URL. Storage listens on a
    /// port of its own: `curl -X POST URL/emulator/storage/outage?secs=N` makes it
    /// refuse and reset connections for N seconds. Runs until Ctrl-C.
    #[command(after_help = "Examples:\n  \
        twilio-media-fs emulator --listen 127.0.0.1:8080 --private-key-out emu.pem\n  \
        twilio-media-fs emulator --listen 127.0.0.1:8080 --public-key account.pub.pem \\\n      \
        --synthetic 1GiB --drop-every 7 --latency-ms 50 --bandwidth 8MiB")]
    Emulator(EmulatorArgs),
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,

    /// Directory of extra media: each *.mka/*.mkv becomes a recording, each
    /// *.mp4/*.webm a composition, encrypted on start. NAME.mka.enc (or .mkv.enc) with
    /// NAME.mka.headers (`curl -D` form) is served as it is: encrypted elsewhere. A
    /// subdirectory ROOM/ becomes a room of that name, each PARTICIPANT-audio.mka and
    /// PARTICIPANT-video.mkv in it (PARTICIPANT-audio-2.mka for a reconnect) a track of
    /// that participant, starting at its Matroska start time (what `compose` reads).
    #[arg(long = "data", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Lifetime of pre-signed storage URLs, in seconds (a smaller Ttl from the client wins).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub ttl: u64,

    /// Every Nth storage GET answers 500.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub fail_every: Option<u64>,

    /// Every Nth storage body is cut half way (connection closed early).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub drop_every: Option<u64>,

    /// Every Nth storage body stops half way for --stall-ms, then goes on (a response
    /// slower than a client's timeout).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_every: Option<u64>,

    /// How long a stalled body stops, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub stall_ms: u64,

    /// Every Nth API call answers 429 (Twilio error 20429, Retry-After: 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub throttle_every: Option<u64>,

    /// Delay added before every response, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Cap on each response body, in bytes per second (suffixes: KiB, MiB, GiB).
    #[arg(long, value_name = "BYTES_PER_SEC", value_parser = parse_size)]
    pub bandwidth: Option<u64>,

    /// Point `/Media`'s redirects at another storage server: URL/storage/SID?Expires=…
    /// &Signature=… (the emulator's own storage still answers at its address). For
    /// serving the same objects from a server the project did not write: bench/run.sh
    /// copies them into nginx this way.
    #[arg(long, value_name = "URL", value_parser = parse_storage_url)]
    pub storage_url: Option<String>,

    /// Add a synthetic encrypted recording of this plaintext size (e.g. 256MiB, 1GiB),
    /// computed on the fly. Repeat for several.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub synthetic: Vec<u64>,

    /// Add N small recordings (for paging and big listings).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub extra_recordings: u64,

    /// Add N tiny encrypted call recordings (for the Voice API's paging).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub extra_call_recordings: u64,

    /// Behave as a restricted API key that may read recordings, compositions and rooms
    /// only: the Recording/Composition settings and the public keys answer 403 (Twilio
    /// error 20403). What `mount`, `ls` and `get` must work with, and `doctor` warn about.
    #[arg(long)]
    pub restricted_key: bool,

    /// Behave as a broken or malicious Twilio (issue 16), for trying a client by hand:
    /// one or more modes, comma-separated or repeated. Each touches only the requests
    /// it names; see the README's table.
    #[arg(long, value_name = "MODE", value_delimiter = ',')]
    pub hostile: Vec<crate::emulator::hostile::Hostile>,

    /// RSA public key (PEM, SPKI or PKCS#1) to encrypt for. Repeat: the first encrypts
    /// everything, the second one extra recording (a rotated key). Without it, a fresh
    /// 2048-bit key pair is generated.
    #[arg(long = "public-key", value_name = "PUB.pem")]
    pub public_keys: Vec<PathBuf>,

    /// Write the generated private key here (PKCS#8 PEM, mode 0600), to decrypt with.
    #[arg(long, value_name = "FILE", conflicts_with = "public_keys")]
    pub private_key_out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(mut_args = KeyArgs::mut_key(|key| key.required(true)))]
pub struct DecryptFileArgs {
    /// The encrypted file as downloaded (`-` reads standard input).
    #[arg(value_name = "ENCRYPTED")]
    pub input: PathBuf,

    #[command(flatten)]
    pub keys: KeyArgs,

    /// Response headers saved with the download (`curl -D FILE`, `wget -S 2>FILE`).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["key_header", "iv", "cek", "recording"],
        required_unless_present_any = ["key_header", "cek", "recording"]
    )]
    pub headers: Option<PathBuf>,

    /// The value of the x-amz-meta-x-amz-key header (base64), instead of --headers.
    #[arg(long, value_name = "B64", requires = "iv", conflicts_with_all = ["cek", "recording"])]
    pub key_header: Option<String>,

    /// With --key-header: the x-amz-meta-x-amz-iv header (base64, 16 bytes). With
    /// --cek: the call recording's `encryption_details.iv` (base64, 12 bytes).
    #[arg(long, value_name = "B64", conflicts_with = "recording")]
    pub iv: Option<String>,

    /// A Voice call recording (AES-256-GCM): its `encryption_details.encrypted_cek`
    /// (base64), with --iv. The 16-byte tag at the end of the file is checked: a file
    /// that fails it is refused and nothing is written.
    #[arg(
        long,
        value_name = "B64",
        requires = "iv",
        conflicts_with = "recording"
    )]
    pub cek: Option<String>,

    /// A Voice call recording (AES-256-GCM): a file holding its Recording resource as
    /// JSON (`GET …/Recordings/RE….json`, or the recording status callback's
    /// `encryption_details`), instead of --cek and --iv.
    #[arg(long, value_name = "JSON")]
    pub recording: Option<PathBuf>,

    /// The plaintext length (x-amz-meta-x-amz-unencrypted-content-length), checked
    /// against the padding when given; overrides the headers' value.
    #[arg(long, value_name = "N")]
    pub length: Option<u64>,

    /// Where to write the plaintext (`-` for standard output). A file is written under
    /// a temporary name and renamed when complete, so a failure never leaves a partial
    /// file under OUT. It is created readable by you only (mode 0600): it is plaintext.
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
}

/// The private keys to decrypt with: `-k KEY.pem` (repeatable) and
/// `--insecure-key-permissions`. A subcommand that flattens it may say what the keys are
/// for in its own words ([`KeyArgs::mut_key`]); the flags stay the same.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// RSA private key (PEM: PKCS#1, PKCS#8 or encrypted PKCS#8). Repeat for several
    /// keys; each is tried in turn. The passphrase of an encrypted key comes from
    /// TWILIO_MEDIA_FS_KEY_PASSPHRASE or a prompt. The file must be readable by you
    /// only (chmod 600), as ssh requires of its keys.
    #[arg(id = KEYS_ID, short = 'k', long = "key", value_name = "KEY.pem")]
    pub paths: Vec<PathBuf>,

    /// Use private key files that group or others can read or write. Refused by
    /// default, as ssh does: `chmod 600 KEY.pem` is the fix.
    #[arg(id = "insecure_key_permissions", long = "insecure-key-permissions")]
    pub insecure_permissions: bool,
}

/// The id of `-k/--key`.
const KEYS_ID: &str = "keys";

impl KeyArgs {
    /// For `#[command(mut_args = ..)]` on a subcommand that flattens [`KeyArgs`]: changes
    /// `-k/--key` (its help, whether it is required) and leaves it where it is among the
    /// flags (`mut_arg` would move it last).
    fn mut_key(change: impl Fn(clap::Arg) -> clap::Arg) -> impl FnMut(clap::Arg) -> clap::Arg {
        move |arg| {
            if arg.get_id() == KEYS_ID {
                change(arg)
            } else {
                arg
            }
        }
    }
}

/// How to reach Twilio. Credentials never come from arguments: they come from
/// TWILIO_API_KEY + TWILIO_API_SECRET (with TWILIO_ACCOUNT_SID), or TWILIO_ACCOUNT_SID +
/// TWILIO_AUTH_TOKEN, or ~/.config/twilio-media-fs/config.toml.
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The Twilio Video API (another region, or a local emulator).
    #[arg(long, value_name = "URL", env = "TWILIO_MEDIA_FS_API_URL", default_value = crate::twilio::DEFAULT_API_URL)]
    pub api_url: String,

    /// The Voice API of call recordings (2010-04-01). Default: beside --api-url
    /// (video.twilio.com pairs with api.twilio.com; any other host serves both).
    #[arg(long, value_name = "URL", env = "TWILIO_MEDIA_FS_VOICE_API_URL")]
    pub voice_api_url: Option<String>,

    /// Read the credentials from this file only (the config file's format: account_sid
    /// and auth_token, or api_key and api_secret), not from the environment. For fstab
    /// and systemd; keep it mode 0600.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    #[command(flatten)]
    pub retry: RetryArgs,
}

/// How long one request may take, and how long to keep retrying failing ones.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Longest one HTTP request may take, body included (500ms, 10s, 1m). A request
    /// that takes longer is abandoned and tried again, a download resuming where it
    /// stopped.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// How long to keep retrying a failing request (5xx, 429, refused or reset
    /// connections, cut or stalled bodies, timeouts) before giving up: a read from the
    /// mount then fails with EIO. Every read of the mount answers within this budget
    /// plus --timeout plus 1 s.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = DEFAULT_RETRY_BUDGET.as_str(),
        value_parser = parse_duration
    )]
    pub retry_budget: Duration,

    /// The slowest a download may go and still count as moving, in bytes per second
    /// (32KiB, 1MiB; 0: no minimum), averaged over 5 s. A storage body slower than this
    /// is cut and tried again, and only a download moving at least this fast starts
    /// --retry-budget again: storage that dribbles fails within the budget instead of
    /// holding a read, a read-ahead or a `get` for ever. It is per request: on a link
    /// slower than this times the requests in flight (up to 32 for a mount's
    /// read-ahead, --parallel for `get`), lower it.
    #[arg(
        long,
        value_name = "RATE",
        default_value = DEFAULT_MIN_RATE.as_str(),
        value_parser = parse_size
    )]
    pub min_rate: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListWhat {
    Recordings,
    Compositions,
    Rooms,
    /// Voice call recordings (`RE…`, the account's 2010-04-01 API; needs the account SID).
    Voice,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// What to list.
    #[arg(value_enum, default_value = "recordings")]
    pub what: ListWhat,

    /// Only this room (RM…), or for `voice` this call (CA…); repeat for several.
    #[arg(long = "room", value_name = "RM")]
    pub rooms: Vec<String>,

    /// Only this status (recordings: processing, completed, deleted, failed;
    /// compositions also enqueued; rooms: in-progress, completed, failed; rooms default
    /// to completed).
    #[arg(long)]
    pub status: Option<String>,

    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Add an ENCRYPTED column (recordings and compositions; with --json, an
    /// "encrypted" field): `yes`, `no` (stored unencrypted: media from before the
    /// account turned encryption on), `damaged` (no encryption headers and not media:
    /// the mount and `get` refuse it), `unknown` (the media could not be fetched), `-`
    /// (not completed). Costs, per completed item, one /Media request and a ranged GET
    /// of 16 bytes; without it nothing but the listing is requested.
    #[arg(long)]
    pub encryption: bool,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
#[command(mut_args = KeyArgs::mut_key(|key| key.help(
    "RSA private key(s), as for decrypt-file; not needed for unencrypted media"
)))]
pub struct GetArgs {
    /// Recording (RT…) or composition (CJ…) SIDs.
    #[arg(value_name = "SID", required = true)]
    pub sids: Vec<String>,

    /// Where to write: a file (one SID), a directory (SID.ext in it), or `-` for
    /// standard output. Default: SID.ext in the current directory. Files appear under
    /// their name only when complete, readable by you only (0600).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub keys: KeyArgs,

    /// Ranged requests in flight at once per object (2 MiB each).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub parallel: usize,

    /// Refuse media stored unencrypted (no encryption headers): exit non-zero and
    /// write no file. Without it, unencrypted media (stored before the account turned
    /// encryption on) is written as it is, with a warning. An object without its
    /// encryption headers that is not Matroska or MP4 is refused either way.
    #[arg(long)]
    pub require_encrypted: bool,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
#[command(mut_args = KeyArgs::mut_key(|key| key.help(
    "RSA private key(s), as for decrypt-file; not needed for unencrypted recordings"
)))]
pub struct ComposeArgs {
    /// The room (RM…).
    #[arg(value_name = "ROOM")]
    pub room: String,

    /// The file to write. It appears under this name only when ffmpeg finished, readable
    /// by you only (0600). Default: ROOM.mp4 (or .webm) in the current directory.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub keys: KeyArgs,

    /// mp4: H.264 and AAC; webm: VP8 and Opus. Default: from the output's extension
    /// (.webm), else mp4.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<crate::compose::Format>,

    /// Width and height of the video, even, 16 to 1920 each, at most 921600 pixels
    /// (Twilio's limits).
    #[arg(long, value_name = "WxH", default_value = "640x480", value_parser = parse_resolution)]
    pub resolution: (u32, u32),

    /// Cut the spans in which no selected track has media (the default, as Twilio).
    #[arg(long, overrides_with = "no_trim")]
    pub trim: bool,

    /// Keep the whole room's timeline: silence and black where nobody published.
    #[arg(long)]
    pub no_trim: bool,

    /// Audio only: no video track in the output.
    #[arg(long)]
    pub audio_only: bool,

    /// Audio tracks to mix, by track name or SID (RT…, MT…, PA…), `*` as a wildcard.
    /// Repeat for several. Default: all.
    #[arg(long = "audio-sources", value_name = "PATTERN", default_value = "*")]
    pub audio_sources: Vec<String>,

    /// Audio tracks to leave out (as --audio-sources).
    #[arg(long = "exclude-audio", value_name = "PATTERN")]
    pub exclude_audio: Vec<String>,

    /// Video tracks to show (as --audio-sources). Default: all.
    #[arg(long = "video-sources", value_name = "PATTERN", default_value = "*")]
    pub video_sources: Vec<String>,

    /// Video tracks to leave out (as --audio-sources).
    #[arg(long = "exclude-video", value_name = "PATTERN")]
    pub exclude_video: Vec<String>,

    /// Twilio's video_layout JSON, or @FILE to read it from a file: regions with x_pos,
    /// y_pos, z_pos, width, height, max_rows, max_columns, cells_excluded, reuse
    /// (none, show_oldest, show_newest), video_sources, video_sources_excluded.
    /// Default: one grid of every video source.
    #[arg(long, value_name = "JSON|@FILE")]
    pub layout: Option<String>,

    /// Print the plan (tracks, where they lie on the output's timeline, the cells) and
    /// the ffmpeg command line, and stop: nothing is written.
    #[arg(long)]
    pub plan: bool,

    /// Memory for decrypted windows while ffmpeg reads (KiB, MiB, GiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub cache_size: u64,

    /// Refuse recordings stored unencrypted.
    #[arg(long)]
    pub require_encrypted: bool,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// `WxH` within Twilio's Composition limits.
pub fn parse_resolution(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT (640x480)"))?;
    let n = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{text:?} is not WIDTHxHEIGHT (640x480)"))
    };
    let (w, h) = (n(w)?, n(h)?);
    if !(16..=1920).contains(&w) || !(16..=1920).contains(&h) {
        return Err(format!("{text}: width and height must be 16 to 1920"));
    }
    if w % 2 == 1 || h % 2 == 1 {
        return Err(format!("{text}: width and height must be even"));
    }
    if u64::from(w) * u64::from(h) > 921_600 {
        return Err(format!("{text}: at most 921600 pixels (1280x720)"));
    }
    Ok((w, h))
}

#[derive(Debug, Args)]
#[command(mut_args = KeyArgs::mut_key(|key| key.help(
    "RSA private key(s), as for decrypt-file; repeat when the account rotated keys"
)))]
pub struct MountArgs {
    /// An existing empty directory.
    pub mountpoint: PathBuf,

    #[command(flatten)]
    pub keys: KeyArgs,

    /// Stay attached to the terminal and log to stderr (default: run in the background).
    #[arg(short, long)]
    pub foreground: bool,

    /// Let other users read the mount (needs user_allow_other in /etc/fuse.conf
    /// unless root). Off by default: the mount is private to you.
    #[arg(long)]
    pub allow_other: bool,

    /// Name shown as the mount's source in /proc/mounts, `mount` and `df` (an fstab
    /// line's first field, so that `mount -a` knows it is mounted).
    #[arg(long, value_name = "NAME", default_value = "twilio-media-fs")]
    pub fsname: String,

    /// Owner shown for files and directories (default: you).
    #[arg(long, value_name = "N")]
    pub uid: Option<u32>,

    /// Group shown for files and directories (default: your group).
    #[arg(long, value_name = "N")]
    pub gid: Option<u32>,

    #[command(flatten)]
    pub fs: FsArgs,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// Where `serve` listens and who may read: the flags `serve` takes and `doctor` checks.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to listen: ADDR:PORT (port 0 picks a free one) or unix:/PATH (a socket
    /// only you can use, mode 0600). Repeat for several. An address other than
    /// loopback needs --token-file or --htpasswd.
    /// [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<Bind>,

    /// A file whose first line is the bearer token clients must send
    /// (`Authorization: Bearer TOKEN`), at least 32 characters (`openssl rand -hex
    /// 32`). Or set TWILIO_MEDIA_FS_SERVE_TOKEN. Never on the command line.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// An htpasswd file of users and bcrypt hashes (`htpasswd -cB FILE USER`): clients
    /// log in with HTTP basic auth (browsers ask; VLC and curl take
    /// http://USER:PASSWORD@HOST/…). With --token-file too, either works.
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,

    /// Serve HTTPS with this certificate chain (PEM) on the TCP addresses (a Unix
    /// socket stays plain HTTP); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ListenArgs {
    /// The addresses to listen on: those given, else 127.0.0.1:8080.
    pub fn addresses(&self) -> Vec<Bind> {
        if self.listen.is_empty() {
            vec![Bind::Tcp(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                8080,
            )))]
        } else {
            self.listen.clone()
        }
    }

    /// Whether any of these flags was given (`doctor` checks them only then).
    pub fn given(&self) -> bool {
        !self.listen.is_empty()
            || self.token_file.is_some()
            || self.htpasswd.is_some()
            || self.tls_cert.is_some()
    }
}

/// What the account looks like and how it is read: the flags `mount` and `serve` share
/// (one tree, one read core, the same defaults).
#[derive(Debug, Args)]
pub struct FsArgs {
    /// Memory for decrypted windows, shared by all open files (KiB, MiB, GiB).
    #[arg(
        long,
        value_name = "SIZE",
        default_value = DEFAULT_CACHE_SIZE.as_str(),
        value_parser = parse_size
    )]
    pub cache_size: u64,

    /// Bytes decrypted per window: a read fetches whole windows.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = DEFAULT_WINDOW.as_str(),
        value_parser = parse_window
    )]
    pub window: u64,

    /// List directories again after this long (30s, 5m, 1h; a plain number is seconds).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = DEFAULT_REFRESH.as_str(),
        value_parser = parse_duration
    )]
    pub refresh: Duration,

    /// Give up a listing that takes longer than this, all its pages together (an API
    /// whose pages trickle in, or never end): the directory keeps its previous listing
    /// (a directory never listed answers EIO) and the next refresh tries again.
    /// Meanwhile names already listed answer at once; a lookup or readdir that must
    /// wait for a listing answers within --retry-budget + --timeout + 1 s.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = DEFAULT_LISTING_DEADLINE.as_str(),
        value_parser = parse_timeout
    )]
    pub listing_deadline: Duration,

    /// Only this room's media (RM…), or this call's recordings (CA…); repeat for
    /// several. With rooms only, voice/ is empty; with calls only, the Video directories
    /// are.
    #[arg(long = "room", value_name = "RM")]
    pub rooms: Vec<String>,

    /// Only media created on or after this date (2026-01-31 or RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub since: Option<String>,

    /// Where to keep the exact size of every file opened (or sized), so that later
    /// mounts show exact sizes at once, with no fetch: a file `sizes` of SIDs and
    /// lengths only, nothing that helps decrypt (mode 0600; the directory is created
    /// 0700). [default: $CACHE_DIRECTORY (systemd's CacheDirectory=), else
    /// $XDG_CACHE_HOME/twilio-media-fs, else, for root, /var/cache/twilio-media-fs,
    /// else ~/.cache/twilio-media-fs]
    #[arg(long, value_name = "DIR")]
    pub metadata_cache: Option<PathBuf>,

    /// Neither read nor write the size cache: a file shows its exact size only once
    /// this mount has opened (or sized) it.
    #[arg(long, conflicts_with = "metadata_cache")]
    pub no_metadata_cache: bool,

    /// After each listing, size in the background (a few files at a time) every file
    /// whose exact size is not known yet, so that `ls -l`, `stat` and backup tools see
    /// exact sizes without opening anything. Costs, per file, one /Media request and
    /// one ranged GET of 16 bytes (no RSA) when the storage sends the plaintext
    /// length, else a second GET of 32 bytes and the key unwrap; each file is sized
    /// once, and never again on later mounts with the size cache.
    #[arg(long)]
    pub exact_sizes: bool,

    /// Refuse to open media stored unencrypted (no encryption headers): open and read
    /// fail with EACCES (permission denied), with a warning naming the SID;
    /// `user.twilio.encrypted` still tells `false`. Without it, unencrypted media
    /// (stored before the account turned encryption on) is served as it is, with one
    /// warning per file. An object without its encryption headers that is not Matroska
    /// or MP4 (ciphertext whose headers were lost) is refused either way, with EIO.
    #[arg(long)]
    pub require_encrypted: bool,
}

#[derive(Debug, Args)]
#[command(mut_args = KeyArgs::mut_key(|key| key.help(
    "RSA private key(s), as for decrypt-file; repeat when the account rotated keys"
)))]
pub struct ServeArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    #[command(flatten)]
    pub listen: ListenArgs,

    /// Connections served at once; more are answered 503 and closed.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,

    /// A request's headers must arrive within this (a slow sender is cut off), and an
    /// idle keep-alive connection is closed after it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub header_timeout: Duration,

    /// A client that takes no data for this long is cut off, so that it holds no open
    /// file, cache window or storage fetch.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    pub send_timeout: Duration,

    #[command(flatten)]
    pub fs: FsArgs,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
#[command(mut_args = KeyArgs::mut_key(|key| key.help(
    "RSA private key(s) to check against the account's public key; repeat for several"
)))]
pub struct DoctorArgs {
    #[command(flatten)]
    pub keys: KeyArgs,

    /// The Twilio Accounts API, which holds the public keys. Default: beside --api-url
    /// (https://accounts.twilio.com for https://video.twilio.com; a host that does not
    /// start with `video.`, such as the emulator, serves both).
    #[arg(long, value_name = "URL", env = "TWILIO_MEDIA_FS_ACCOUNTS_URL")]
    pub accounts_url: Option<String>,

    /// `serve`'s setup, checked when any of these is given: each address can be
    /// listened on, credentials load (and are set beyond loopback), the TLS files fit.
    #[command(flatten)]
    pub serve: ListenArgs,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// twilio-media-fs.1 and one page per subcommand.
    Man,
    /// bash (twilio-media-fs.bash), zsh (_twilio-media-fs), fish (twilio-media-fs.fish).
    Completions,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum)]
    pub what: Generated,

    /// The directory to write into (created if missing).
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to mount (created if missing, removed afterwards) [default: ./twilio-demo]
    pub mountpoint: Option<PathBuf>,
}

/// An `http://` or `https://` URL without query or fragment (its trailing `/` dropped),
/// for `emulator --storage-url`.
pub fn parse_storage_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?}: expected http://HOST[:PORT][/PATH]"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?}: the storage URL takes no query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Parses a byte size: a plain number, or one with a suffix: `KiB`/`MiB`/`GiB`/`TiB`
/// (or `K`/`M`/`G`/`T`, also binary), `KB`/`MB`/`GB`/`TB` (decimal), `B`. Case does
/// not matter; a space before the suffix is allowed.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "{text:?} is not a size: expected a number with an optional suffix such as 64MiB or 1GiB"
        ));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is too large"))?;
    let unit: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "{text:?}: unknown size suffix {other:?} (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"
            ));
        }
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub fn parse_window(text: &str) -> Result<u64, String> {
    let n = parse_size(text)?;
    if !(16..=(64 << 20)).contains(&n) || n % 16 != 0 {
        return Err("a multiple of 16 bytes between 16 and 64MiB".into());
    }
    Ok(n)
}

/// A size as [`parse_size`] reads it back, in the largest binary unit that divides it:
/// `512MiB`, `1GiB`, `1000`.
pub fn format_size(n: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.trailing_zeros() >= shift {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// Parses a duration: a number with `ms`, `s`, `m` or `h` (a plain number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 30s, 5m or 1h"))?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("{text:?}: use ms, s, m or h")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// A duration as [`parse_duration`] reads it back: whole seconds as `60s`, anything
/// else in milliseconds.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A duration that is not zero (a zero timeout would fail every request).
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be more than zero".into()),
        d => Ok(d),
    }
}

pub fn parse_date(text: &str) -> Result<String, String> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    crate::twilio::parse_date(&full)
        .map(|_| full.clone())
        .ok_or_else(|| format!("{text:?} is not a date such as 2026-01-31 or 2026-01-31T12:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn storage_urls() {
        let ok = |t: &str| parse_storage_url(t).unwrap();
        assert_eq!(ok("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(ok("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(
            ok("https://s3.example/bucket/"),
            "https://s3.example/bucket"
        );
        // Non-ASCII hosts come out as ASCII (a Location header must be).
        assert_eq!(ok("http://bücher.example"), "http://xn--bcher-kva.example");
        for bad in [
            "",
            "127.0.0.1:8080",
            "ftp://x",
            "file:///tmp",
            "http://x/?a=1",
            "http://x/#f",
        ] {
            assert!(parse_storage_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert!(parse_duration(&format!("{}h", u64::MAX / 1000)).is_err());
        assert!(parse_timeout("0s").is_err());
        assert_eq!(parse_timeout("1s"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn sizes_and_durations_format_as_they_parse() {
        for n in [
            0,
            1,
            1000,
            1 << 10,
            3 << 20,
            512 << 20,
            1 << 30,
            5 << 40,
            (1 << 20) + 16,
        ] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{n}");
        }
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        for d in [
            Duration::ZERO,
            Duration::from_secs(60),
            Duration::from_millis(1500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
        }
        assert_eq!(format_duration(Duration::from_secs(60)), "60s");
    }

    /// A command line without timeout flags configures the client as the library would.
    #[test]
    fn api_flag_defaults_are_the_client_defaults() {
        let Command::Ls(args) = Cli::try_parse_from(["twilio-media-fs", "ls"])
            .unwrap()
            .command
        else {
            panic!("ls");
        };
        let library = crate::twilio::ClientConfig::new(crate::twilio::Credentials::auth_token(
            "AC00000000000000000000000000000000",
            zeroize::Zeroizing::new("token".into()),
        ));
        assert_eq!(args.api.retry.timeout, library.request_timeout);
        assert_eq!(args.api.retry.retry_budget, library.retry.total_budget);
        assert_eq!(
            args.api.retry.min_rate,
            library.retry.min_rate.bytes_per_sec
        );
    }

    #[test]
    fn timeout_and_retry_budget_flags() {
        let cli = Cli::try_parse_from([
            "twilio-media-fs",
            "mount",
            "/mnt",
            "--timeout",
            "500ms",
            "--retry-budget",
            "5s",
            "--min-rate",
            "1MiB",
        ])
        .unwrap();
        let Command::Mount(args) = cli.command else {
            panic!("mount");
        };
        assert_eq!(args.api.retry.timeout, Duration::from_millis(500));
        assert_eq!(args.api.retry.retry_budget, Duration::from_secs(5));
        assert_eq!(args.api.retry.min_rate, 1 << 20);
        assert!(Cli::try_parse_from(["twilio-media-fs", "ls", "--min-rate", "fast"]).is_err());
        assert!(Cli::try_parse_from(["twilio-media-fs", "ls", "--timeout", "0"]).is_err());
    }
}
