//! A local stand-in for `video.twilio.com` (and the public keys of `accounts.twilio.com`)
//! and for the S3 bucket behind `/Media`, used by the `emulator` and `demo` commands and
//! by the tests.
//!
//! This module owns the configuration ([`EmulatorConfig`]), the shared state
//! ([`Emulator`]: catalog, signing secret, counters), the router and [`spawn`] for tests.
//! It serves media encrypted exactly as Twilio stores it (S3 Encryption Client v1
//! envelope), with knobs for the faults real clients meet (5xx, bodies cut short or
//! stalled, 429, expired URLs, latency, per-connection bandwidth, storage outages that
//! refuse and reset connections), and a restricted API key that may read media and
//! rooms but not the settings or public keys (403). Storage listens on its own port, as
//! S3 is another host than the API: an outage takes storage down and leaves the API up.
//! It must never be needed by the filesystem itself: nothing outside tests, `emulator`
//! and `demo` depends on it. It holds no private key: it encrypts for public keys only.
//!
//! # Layout
//! - [`catalog`]: the media objects, rooms, SIDs and their JSON.
//! - [`matroska`]: the codec and time span of a Matroska file (rooms of `data_dir`).
//! - [`meeting`]: the ground truth of the meeting room (who published what, when).
//! - [`api`]: the Twilio REST handlers (`/v1/...`), auth, throttling, paging.
//! - [`storage`]: pre-signed storage URLs, ranged GETs, storage faults.
//! - [`synthetic`]: large objects computed on the fly.
//! - [`voice`]: the Voice API of 2010-04-01 (`/2010-04-01/...`): call recordings.
//! - [`wav`]: the WAV files of the call recordings.
//! - [`outage`]: the storage listener that can refuse and reset connections.
//! - [`hostile`]: the hostile modes (issue 16), what each answers instead.

pub mod api;
pub mod catalog;
pub mod hostile;
pub mod matroska;
pub mod meeting;
pub mod outage;
pub mod storage;
pub mod synthetic;
pub mod voice;
pub mod wav;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use self::catalog::Catalog;
use self::hostile::{Hostile, Modes};
use self::outage::{OutageListener, OutageSwitch};
use crate::twilio::MediaKind;

/// What the emulator serves and how badly it behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Extra media: every `*.mka`/`*.mkv` file becomes a recording, every
    /// `*.mp4`/`*.webm` file a composition, every `*.wav` file an encrypted call
    /// recording. Every subdirectory `<room>/` becomes a room of that name, and each
    /// `<participant>-<audio|video>[-<n>].mka|mkv` in it a recording of that participant
    /// (track `<participant>-<audio|video>`, codec from the file's CodecID).
    pub data_dir: Option<PathBuf>,
    /// Lifetime of pre-signed storage URLs; a smaller `Ttl` query parameter wins.
    pub ttl: Duration,
    /// Every Nth storage GET answers 500.
    pub fail_every: Option<u64>,
    /// Every Nth storage body is cut half way (connection closed).
    pub drop_every: Option<u64>,
    /// Every Nth storage body stops half way for [`Self::stall`], then goes on: a
    /// response slower than a client's timeout.
    pub stall_every: Option<u64>,
    /// How long a stalled body stops.
    pub stall: Duration,
    /// Every Nth API call answers 429 (Twilio code 20429, `Retry-After: 1`).
    pub throttle_every: Option<u64>,
    /// Added before each response (API and storage).
    pub latency: Duration,
    /// Bytes per second per response body.
    pub bandwidth: Option<u64>,
    /// Where `/Media` redirects to instead of the emulator's own storage (no trailing
    /// slash): another server holding the same objects under `/storage/SID`.
    pub storage_url: Option<String>,
    /// Plaintext sizes of synthetic encrypted recordings, generated on the fly.
    pub synthetic: Vec<u64>,
    /// How many more small completed recordings to list (paging tests, big listings).
    pub extra_recordings: u64,
    /// How many more tiny encrypted call recordings to list (two to a call), for the
    /// 2010-04-01 API's paging.
    pub extra_call_recordings: u64,
    /// `public_keys[0]` encrypts every object; a second key encrypts one extra
    /// recording (a rotated key).
    pub public_keys: Vec<rsa::PublicKey>,
    /// The accepted Basic-auth pairs.
    pub credentials: EmulatorCredentials,
    /// What `RecordingSettings` and `CompositionSettings` say (the media is encrypted
    /// all the same, as after a user turned encryption off).
    pub encryption_enabled: bool,
    /// Every credential behaves as a restricted API key that may read recordings,
    /// compositions and rooms only: the settings and the Accounts API's public keys
    /// answer 403 (Twilio code 20403).
    pub restricted_key: bool,
    /// Hostile modes ([`Hostile`]): what a broken or malicious Twilio would do. None by
    /// default.
    pub hostile: Vec<Hostile>,
}

impl Default for EmulatorConfig {
    /// No keys (set `public_keys` before [`Emulator::new`]), a one-hour TTL, no faults.
    fn default() -> Self {
        Self {
            data_dir: None,
            ttl: Duration::from_secs(3600),
            fail_every: None,
            drop_every: None,
            stall_every: None,
            stall: Duration::from_secs(5),
            throttle_every: None,
            latency: Duration::ZERO,
            bandwidth: None,
            storage_url: None,
            synthetic: Vec::new(),
            extra_recordings: 0,
            extra_call_recordings: 0,
            public_keys: Vec::new(),
            credentials: EmulatorCredentials::default(),
            encryption_enabled: true,
            restricted_key: false,
            hostile: Vec::new(),
        }
    }
}

/// The credentials the emulator accepts: account SID + auth token, or API key + secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorCredentials {
    pub account_sid: String,
    pub auth_token: String,
    pub api_key: String,
    pub api_secret: String,
}

impl Default for EmulatorCredentials {
    /// Fixed, obviously fake values: they only ever open the emulator.
    fn default() -> Self {
        Self {
            account_sid: "AC000000000000000000000000000000e1".into(),
            auth_token: "emulator-auth-token".into(),
            api_key: "SK000000000000000000000000000000e1".into(),
            api_secret: "emulator-api-secret".into(),
        }
    }
}

/// Recording or composition: the crate's one [`MediaKind`], by the name the tests
/// know it.
pub use crate::twilio::MediaKind as ObjectKind;

/// What the emulator serves, as tests see it.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub sid: String,
    pub kind: MediaKind,
    /// `mka`, `mkv`, `mp4`, `webm`, or `wav` for call recordings.
    pub extension: String,
    /// `completed`, `processing`, `deleted`, …: only `completed` objects have media.
    pub status: String,
    /// The room; for a call recording, the call (`CA…`).
    pub room_sid: String,
    /// Plaintext length, when the object has media.
    pub size: Option<u64>,
    /// The plaintext, for stored objects (`None` for synthetic ones and those without
    /// media: use [`Emulator::plaintext`]).
    pub plaintext: Option<bytes::Bytes>,
    pub synthetic: bool,
    /// Stored with an encryption envelope (for a call recording: sealed with
    /// AES-256-GCM, its envelope in `encryption_details`).
    pub encrypted: bool,
    /// Which of `public_keys` wrapped its content key.
    pub key_index: Option<usize>,
    /// Whether `x-amz-meta-x-amz-unencrypted-content-length` is sent.
    pub length_header: bool,
}

/// Request and fault counters, served as JSON at `/emulator/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every `/v1` request, including refused ones.
    pub api_requests: u64,
    /// `/Media` requests (also counted in `api_requests`).
    pub media_requests: u64,
    /// Storage requests (GET and HEAD).
    pub storage_requests: u64,
    /// Body bytes sent by storage.
    pub storage_bytes: u64,
    /// Faults injected: 500s, cut and stalled bodies, and 429s.
    pub faults_injected: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub dropped_bodies: u64,
    pub stalled_bodies: u64,
    /// Storage outages begun (connections refused and reset).
    pub storage_outages: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// 403 answers of the API: a restricted key asked for what it may not read.
    pub forbidden: u64,
    /// 403 answers from storage (expired, bad signature, HEAD).
    pub access_denied: u64,
    /// Storage requests that carried an `Authorization` header (credentials sent where
    /// they do not belong: none should).
    #[serde(default)]
    pub storage_with_credentials: u64,
}

#[derive(Default)]
struct Counters {
    api_requests: AtomicU64,
    media_requests: AtomicU64,
    storage_requests: AtomicU64,
    storage_bytes: AtomicU64,
    storage_bodies: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    dropped_bodies: AtomicU64,
    stalled_bodies: AtomicU64,
    unauthorized: AtomicU64,
    forbidden: AtomicU64,
    access_denied: AtomicU64,
    storage_with_credentials: AtomicU64,
}

impl Counters {
    fn all(&self) -> [&AtomicU64; 13] {
        [
            &self.api_requests,
            &self.media_requests,
            &self.storage_requests,
            &self.storage_bytes,
            &self.storage_bodies,
            &self.throttled,
            &self.server_errors,
            &self.dropped_bodies,
            &self.stalled_bodies,
            &self.unauthorized,
            &self.forbidden,
            &self.access_denied,
            &self.storage_with_credentials,
        ]
    }
}

/// Adds one to a counter and returns the new value (1 for the first event).
fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

/// Whether event number `n` (1-based) is one of every `every`th.
fn nth(every: Option<u64>, n: u64) -> bool {
    matches!(every, Some(k) if k > 0 && n.is_multiple_of(k))
}

/// The emulator's shared state: configuration, catalog, URL-signing secret, counters.
pub struct Emulator {
    config: EmulatorConfig,
    catalog: Catalog,
    /// Signs storage URLs; random per process, so URLs die with the process.
    secret: [u8; 32],
    counters: Counters,
    /// Takes the storage listener down and up.
    outage: OutageSwitch,
    /// The storage listener's port, once bound.
    storage_port: OnceLock<u16>,
    /// The hostile modes asked for.
    hostile: Modes,
    /// Listings begun, for [`Hostile::NewSids`].
    listings: AtomicU64,
}

impl Emulator {
    /// Builds the catalog: encrypts the embedded samples and the `data_dir` files.
    pub fn new(config: EmulatorConfig) -> anyhow::Result<Arc<Emulator>> {
        anyhow::ensure!(
            !config.public_keys.is_empty(),
            "the emulator needs at least one RSA public key to encrypt its media for"
        );
        let catalog = Catalog::build(&config)?;
        Ok(Arc::new(Emulator {
            hostile: Modes::new(&config.hostile),
            listings: AtomicU64::new(0),
            config,
            catalog,
            secret: rand::rng().random(),
            counters: Counters::default(),
            outage: OutageSwitch::default(),
            storage_port: OnceLock::new(),
        }))
    }

    /// Serves HTTP/1.1 on `listener` until `shutdown` completes: the API there, and the
    /// storage on a port of its own on the same address.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let storage = self.bind_storage(listener.local_addr()?.ip()).await?;
        self.serve_both(listener, storage, shutdown).await
    }

    /// Binds the storage listener on `ip` (any free port) and remembers its port for
    /// the URLs `/Media` hands out.
    async fn bind_storage(&self, ip: std::net::IpAddr) -> anyhow::Result<OutageListener> {
        let ip = self.hostile.storage_ip(ip);
        let storage = tokio::net::TcpListener::bind((ip, 0))
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {ip} for storage: {e}"))?;
        let port = storage.local_addr()?.port();
        anyhow::ensure!(
            self.storage_port.set(port).is_ok(),
            "this emulator is already serving"
        );
        Ok(OutageListener::new(storage, &self.outage)?)
    }

    async fn serve_both(
        self: Arc<Self>,
        api: tokio::net::TcpListener,
        storage: OutageListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|&s| s).await;
        };
        let api = axum::serve(api, self.router()).with_graceful_shutdown(until(stopped.clone()));
        let storage =
            axum::serve(storage, self.storage_router()).with_graceful_shutdown(until(stopped));
        tokio::try_join!(api.into_future(), storage.into_future())?;
        Ok(())
    }

    /// The storage routes alone, for the storage listener.
    fn storage_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/storage/{id}",
                get(storage::get_object).head(storage::head_object),
            )
            .with_state(self.clone())
    }

    /// Starts (`true`) or ends (`false`) a storage outage: while it lasts, connections
    /// to storage are refused, and those open when it starts are reset. The API stays up.
    pub fn set_storage_down(&self, down: bool) {
        self.outage.set_down(down);
    }

    /// A storage outage of `duration`, starting now (on the current runtime).
    pub fn storage_outage(self: &Arc<Self>, duration: Duration) {
        self.set_storage_down(true);
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            this.set_storage_down(false);
        });
    }

    /// Whether storage is down now.
    pub fn storage_down(&self) -> bool {
        self.outage.is_down()
    }

    /// The routes: `/v1` behind auth and throttling, `/storage`, `/emulator/stats`.
    pub fn router(self: &Arc<Self>) -> Router {
        let mut v1 = Router::new();
        for kind in MediaKind::VIDEO {
            v1 = v1.merge(api::media_routes(kind));
        }
        // The Voice API (api.twilio.com), on the same origin.
        let v1 = v1
            .merge(voice::routes())
            .route("/v1/Rooms", get(api::list_rooms))
            .route("/v1/Rooms/{room}", get(api::get_room))
            .route(
                "/v1/Rooms/{room}/Recordings",
                get(api::list_room_recordings),
            )
            .route(
                "/v1/Rooms/{room}/Recordings/{sid}",
                get(api::get_room_recording),
            )
            .route(
                "/v1/Rooms/{room}/Recordings/{sid}/Media",
                get(api::room_recording_media),
            )
            // The Accounts API (accounts.twilio.com), on the same origin.
            .route("/v1/Credentials/PublicKeys", get(api::list_public_keys))
            .route("/v1/Credentials/PublicKeys/{sid}", get(api::get_public_key))
            .fallback(api::not_found)
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                api::guard,
            ));
        Router::new()
            .merge(v1)
            .route(
                "/storage/{id}",
                get(storage::get_object).head(storage::head_object),
            )
            .route("/emulator/stats", get(api::stats))
            .route("/emulator/stats/reset", post(api::reset_stats))
            .route("/emulator/storage/outage", post(api::storage_outage))
            .with_state(self.clone())
    }

    /// The Video recordings and compositions in the catalog, media or not (what the
    /// tests written for Video iterate over: call recordings are
    /// [`Self::call_recordings`]).
    pub fn objects(&self) -> Vec<ObjectInfo> {
        let mut all = self.catalog.object_infos();
        all.retain(|o| o.kind.is_video());
        all
    }

    /// The Voice call recordings in the catalog (`RE…`); `room_sid` is the call's SID.
    /// Their plaintext WAV is [`Self::plaintext`], as for Video.
    pub fn call_recordings(&self) -> Vec<ObjectInfo> {
        let mut all = self.catalog.object_infos();
        all.retain(|o| o.kind == MediaKind::Voice);
        all
    }

    /// The plaintext an object decrypts to (synthetic ones are decrypted here, which is
    /// slow for big ones: for tests). `None` for unknown SIDs and objects without media.
    pub fn plaintext(&self, sid: &str) -> Option<Vec<u8>> {
        self.catalog.plaintext(sid)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let throttled = get(&c.throttled);
        let server_errors = get(&c.server_errors);
        let dropped_bodies = get(&c.dropped_bodies);
        let stalled_bodies = get(&c.stalled_bodies);
        Stats {
            api_requests: get(&c.api_requests),
            media_requests: get(&c.media_requests),
            storage_requests: get(&c.storage_requests),
            storage_bytes: get(&c.storage_bytes),
            faults_injected: throttled + server_errors + dropped_bodies + stalled_bodies,
            throttled,
            server_errors,
            dropped_bodies,
            stalled_bodies,
            storage_outages: self.outage.outages(),
            unauthorized: get(&c.unauthorized),
            forbidden: get(&c.forbidden),
            access_denied: get(&c.access_denied),
            storage_with_credentials: get(&c.storage_with_credentials),
        }
    }

    /// Zeroes every counter (the every-Nth fault schedules start again too).
    pub fn reset_stats(&self) {
        for counter in self.counters.all() {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    async fn delay(&self) {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
    }
}

/// An emulator running on the current tokio runtime; dropping it stops the server.
pub struct RunningEmulator {
    /// `http://127.0.0.1:PORT`: the API.
    pub url: String,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT2`: the storage that `/Media` URLs point to.
    pub storage_url: String,
    pub emulator: Arc<Emulator>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningEmulator {
    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Graceful shutdown waits for open keep-alive connections; do not wait for them.
        self.task.abort();
    }
}

/// Builds an emulator, binds `127.0.0.1:0` and serves it on the current runtime.
pub async fn spawn(config: EmulatorConfig) -> anyhow::Result<RunningEmulator> {
    let emulator = Emulator::new(config)?;
    spawn_emulator(emulator, "127.0.0.1:0".parse().expect("literal address")).await
}

/// Serves an existing emulator on `addr` (port 0 picks one) on the current runtime.
pub async fn spawn_emulator(
    emulator: Arc<Emulator>,
    addr: SocketAddr,
) -> anyhow::Result<RunningEmulator> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let storage = emulator.bind_storage(addr.ip()).await?;
    let storage_url = format!("http://{}", storage.addr());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(emulator.clone().serve_both(listener, storage, async move {
        let _ = rx.await;
    }));
    Ok(RunningEmulator {
        url: format!("http://{addr}"),
        addr,
        storage_url,
        emulator,
        shutdown: Some(tx),
        task,
    })
}
