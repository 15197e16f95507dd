//! Private-key files named with `-k`: reads them and asks for passphrases.
//!
//! The passphrase of an encrypted PKCS#8 key comes from `TWILIO_MEDIA_FS_KEY_PASSPHRASE`
//! or, when there is a terminal, from a prompt that does not echo. Parsing is left to
//! [`crate::crypto`]; this module only does the I/O around it.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use zeroize::Zeroizing;

use crate::crypto::PrivateKeys;

/// The environment variable that holds the passphrase of encrypted private keys.
pub const PASSPHRASE_ENV: &str = "TWILIO_MEDIA_FS_KEY_PASSPHRASE";

/// Loads every key file, in order; the first one that cannot be read or parsed is an error.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<PrivateKeys> {
    let mut keys = PrivateKeys::new();
    for path in paths {
        let pem = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read private key {}", path.display()))?,
        );
        let name = path.display().to_string();
        keys.add_pem(&name, &pem, &mut ask_passphrase)?;
    }
    Ok(keys)
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
