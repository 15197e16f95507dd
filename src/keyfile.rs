//! Private-key files named with `-k`: checks their permissions, reads them, and asks for
//! passphrases.
//!
//! Like ssh, a key file that group or others may read or write (`mode & 077 != 0`) is
//! refused: anyone else on the machine who can read it can decrypt every recording of
//! the account. `--insecure-key-permissions` overrides the check (with a warning). The
//! mode is read from the opened file, so the checked file is the one read.
//!
//! The passphrase of an encrypted PKCS#8 key comes from `TWILIO_MEDIA_FS_KEY_PASSPHRASE`
//! or, when there is a terminal, from a prompt that does not echo. Parsing is left to
//! [`crate::crypto`]; this module only does the I/O around it, and never puts key bytes
//! in a message.

use std::io::{IsTerminal, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use zeroize::Zeroizing;

use crate::crypto::PrivateKeys;

/// The environment variable that holds the passphrase of encrypted private keys.
pub const PASSPHRASE_ENV: &str = "TWILIO_MEDIA_FS_KEY_PASSPHRASE";

/// The flag that accepts key files others can read.
pub const INSECURE_FLAG: &str = "--insecure-key-permissions";

/// Whether key files that group or others can access are used anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPermissions {
    /// Refuse them (the default).
    Strict,
    /// Use them, with a warning (`--insecure-key-permissions`).
    Insecure,
}

impl KeyPermissions {
    /// From the `--insecure-key-permissions` flag.
    pub fn from_flag(insecure: bool) -> Self {
        if insecure {
            Self::Insecure
        } else {
            Self::Strict
        }
    }
}

/// Loads every key file, in order; the first one that cannot be read, is too open or
/// cannot be parsed is an error.
pub fn load(paths: &[PathBuf], permissions: KeyPermissions) -> anyhow::Result<PrivateKeys> {
    let mut keys = PrivateKeys::new();
    for path in paths {
        let pem = read_key_file(path, permissions)?;
        let name = path.display().to_string();
        keys.add_pem(&name, &pem, &mut ask_passphrase)?;
    }
    Ok(keys)
}

/// Reads one key file after checking its mode.
fn read_key_file(path: &Path, permissions: KeyPermissions) -> anyhow::Result<Zeroizing<String>> {
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    let mode = meta.permissions().mode();
    if let Some(problem) = permission_problem(path, mode) {
        match permissions {
            KeyPermissions::Strict => anyhow::bail!("{problem}"),
            KeyPermissions::Insecure => tracing::warn!(
                "private key {} is accessible by group or others (mode {:04o}); using it \
                 because of {INSECURE_FLAG}: run `chmod 600 {}`",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
        }
    }
    // Sized up front so that reading does not leave reallocated copies of the key behind.
    let mut pem = Zeroizing::new(String::with_capacity(meta.len() as usize + 1));
    file.read_to_string(&mut pem)
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    Ok(pem)
}

/// Why a key file with this `mode` (as `st_mode`) must not be used, or `None` when only
/// its owner can read or write it.
pub fn permission_problem(path: &Path, mode: u32) -> Option<String> {
    (mode & 0o077 != 0).then(|| {
        format!(
            "private key {p} is accessible by group or others (mode {m:04o}): anyone who can \
             read it can decrypt the account's media. Run `chmod 600 {p}`, or pass \
             {INSECURE_FLAG} to use it anyway",
            p = path.display(),
            m = mode & 0o7777,
        )
    })
}

fn ask_passphrase(name: &str) -> Option<Zeroizing<String>> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Some(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("Passphrase for {name}: "))
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owner_bits_pass() {
        let p = Path::new("/k/key.pem");
        for ok in [0o100600, 0o100400, 0o100200, 0o100000, 0o100700] {
            assert_eq!(permission_problem(p, ok), None, "{ok:o}");
        }
        for bad in [
            0o100644, 0o100640, 0o100604, 0o100660, 0o100610, 0o100601, 0o100666,
        ] {
            let msg = permission_problem(p, bad).expect("refused");
            assert!(msg.contains("chmod 600 /k/key.pem"), "{msg}");
            assert!(msg.contains(INSECURE_FLAG), "{msg}");
            assert!(msg.contains(&format!("{:04o}", bad & 0o7777)), "{msg}");
        }
    }
}
