//! twilio-media-fs: a Twilio Video account's encrypted recordings and compositions as
//! ordinary read-only files, decrypted on read.
//!
//! # Layout
//! - [`crypto`]: pure envelope decryption: keys, envelope headers, CBC windows.
//! - [`cache`]: the memory-only, byte-bounded LRU of decrypted windows.
//! - [`keyfile`]: reading `-k KEY.pem` files (refused when others can read them) and
//!   asking for their passphrases.
//! - [`harden`]: no core dumps, no same-user ptrace or /proc reads of this process.
//! - [`names`]: file names from SIDs, checked (pure).
//! - [`cli`]: the command-line definitions (clap) and their value parsers; no dispatch.
//! - [`fstab`]: the mount-helper form `twilio-media-fs SOURCE DIR -o OPTS` (pure).
//! - [`cmd`]: dispatch to one module per subcommand, where flags become configs.
//! - [`retry`]: the retry schedule (full-jitter backoff, attempts, time budget).
//! - [`twilio`]: the Twilio Video REST client: credentials, listings, `/Media` URLs.
//! - [`object`]: ranged GETs of one stored object on its pre-signed URL.
//! - [`reader`]: one object's read path: windows, envelope, key check.
//! - [`prefetch`]: sequential detection and read-ahead sizing per open handle.
//! - [`fs`]: the filesystem (tree, attributes, reads, `.stats`) and its FUSE glue.
//! - [`app`]: a mount's settings with their one set of defaults, and `build_fs`, the one
//!   place a filesystem is wired from a client, keys and settings (`mount`, `demo`, tests).
//! - [`stats`]: the counters of storage fetches a mount shows in `.stats`.
//! - [`emulator`]: a local stand-in for Twilio's API and media storage (tests, demos).
//!
//! # The read path in five lines
//! 1. The object's envelope (`x-amz-meta-x-amz-key`, `-iv`, `-unencrypted-content-length`)
//!    arrives with the first ranged GET.
//! 2. The content key is unwrapped once with the account's RSA private key.
//! 3. Plaintext `[a, b)` needs ciphertext `[16⌊a/16⌋ − 16, 16⌈b/16⌉)`: the block before a
//!    window is its IV ([`crypto::window::fetch_range`]).
//! 4. The window is decrypted in place; only the window holding the last block checks
//!    and strips the PKCS#7 padding.
//! 5. Plaintext stays in memory; nothing decrypted is written to disk by the filesystem.

pub mod app;
pub mod cache;
pub mod cli;
pub mod cmd;
pub mod crypto;
pub mod emulator;
pub mod fs;
pub mod fstab;
pub mod harden;
pub mod keyfile;
pub mod names;
pub mod object;
pub mod prefetch;
pub mod reader;
pub mod retry;
pub mod served;
pub mod stats;
pub mod twilio;
