//! twilio-media-fs: a Twilio Video account's encrypted recordings and compositions as
//! ordinary read-only files, decrypted on read.
//!
//! # Layout
//! - [`crypto`]: pure envelope decryption: keys, envelope headers, CBC windows.
//! - [`twilio`]: the Twilio API: credentials, the [`twilio::Api`] trait (listings, one
//!   resource, one room, `/Media` URLs) with its HTTP client and in-memory double, and
//!   the one media kind ([`twilio::MediaKind`]) that says how recordings and
//!   compositions differ.
//! - [`object`]: ranged GETs of one stored object on its pre-signed URL
//!   ([`object::ObjectSource`]), and the in-memory storage double.
//! - [`retry`]: the retry schedule (full-jitter backoff, attempts, time budget).
//! - [`rate`]: the minimum rate: what counts as progress, when a body is too slow (pure).
//! - [`read`]: the read core every front-end calls: open by SID, read at any offset,
//!   the shared window cache, read-ahead, statistics, error kinds.
//! - [`fs`]: the FUSE front-end: tree, attributes, directory handles, errno mapping, and
//!   its kernel glue.
//! - [`compose`]: a room's composition rebuilt with ffmpeg from its encrypted
//!   recordings (`compose`): Twilio's layouts and timeline (pure), the loopback inputs.
//! - [`serve`]: the HTTP front-end (`serve`) over the same tree as the mount: Range and
//!   conditional requests, listings and players, credentials, TLS, connection limits.
//! - [`http_range`]: the `Range` header of HTTP requests (pure).
//! - [`http_body`]: a decrypted file's bytes as a response body (`serve`, `compose`).
//! - [`faults`]: failure injection over the API and storage, for tests.
//! - [`stats`]: the counters of storage fetches.
//! - [`sizes`]: the cache of exact plaintext sizes (SID → lengths, nothing that helps
//!   decrypt), in memory and on disk, so sizes are exact from one mount to the next.
//! - [`emulator`]: a local stand-in for Twilio's API and media storage (tests, demos).
//! - [`keyfile`]: reading `-k KEY.pem` files (refused when others can read them) and
//!   asking for their passphrases.
//! - [`harden`]: no core dumps, no same-user ptrace or /proc reads of this process.
//! - [`names`]: file names from SIDs, checked (pure).
//! - [`human`]: sizes and durations as people read them (pure).
//! - [`app`]: a mount's settings with their one set of defaults, and `build_fs`, the one
//!   place a filesystem is wired from its parts (`mount`, `demo`, tests).
//! - [`cli`]: the command-line definitions (clap) and their value parsers; no dispatch.
//! - [`fstab`]: the mount-helper form `twilio-media-fs SOURCE DIR -o OPTS` (pure).
//! - [`cmd`]: dispatch to one module per subcommand, where flags become configs.
//!
//! # The hops of a read
//! 1. [`fs::fuse`] gets `read(ino, fh, offset, size)` from the kernel and calls
//!    [`fs::TwilioFs::read`], which finds the open [`read::Handle`] and calls
//!    [`read::Handle::read`]: one call into the core.
//! 2. The handle's [`read::Prefetcher`] decides the read-ahead;
//!    [`read::ObjectReader::prefetch`] starts it in the background.
//! 3. [`read::ObjectReader::read`] splits the range into windows and asks the shared
//!    [`read::WindowCache`] for each; a miss runs `fetch_window` once for all who ask.
//! 4. `fetch_window` asks [`object::ObjectSource::get_range`] for ciphertext
//!    `[16⌊a/16⌋ − 16, 16⌈b/16⌉)` (the block before a window is its IV:
//!    [`crypto::window::fetch_range`]); the object client resolves the `/Media` URL
//!    through [`twilio::Api::media_url`] and retries per [`retry`].
//! 5. [`crypto::window::decrypt_window`] decrypts in place; only the window holding the
//!    last block checks and strips the PKCS#7 padding. The object's envelope and
//!    content key were learned once, from its first GET, at `open`.
//! 6. Back in the handle: its [`read::Served`] records the bytes, and windows it now has
//!    whole leave the cache (the kernel's page cache keeps them).
//! 7. An error comes back as a [`read::ReadError`] kind; [`fs::Error::errno`] is the one
//!    place it becomes an errno ([`serve::status::of`] for an HTTP status).
//!
//! Through `serve`, step 1 is [`serve`] walking the same [`fs::TwilioFs`] by name and
//! reading it a step at a time as the client takes the bytes ([`http_body`]).
//!
//! Plaintext stays in memory; nothing decrypted is written to disk by the filesystem.

pub mod app;
pub mod bounded;
pub mod cli;
pub mod cmd;
pub mod compose;
pub mod crypto;
pub mod emulator;
pub mod faults;
pub mod fs;
pub mod fstab;
pub mod harden;
pub mod http_body;
pub mod http_range;
pub mod human;
pub mod keyfile;
pub mod names;
pub mod object;
pub mod rate;
pub mod read;
pub mod retry;
pub mod serve;
pub mod sizes;
pub mod stats;
pub mod twilio;
