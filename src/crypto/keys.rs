//! RSA private keys from PEM text and the content keys they unwrap.
//!
//! Accounts rotate keys, so several private keys can be loaded at once; unwrapping tries
//! each in the order given and reports which one worked. Private keys are zeroized by the
//! `rsa` crate on drop, content keys by [`ContentKey`]'s own `Drop`.

use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, Pkcs1v15Encrypt, PrivateKey, PublicKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::CryptoError;

/// Asked for the passphrase of an encrypted key, given the key's name; `None` when there
/// is nobody to ask.
pub type PassphraseSource<'a> = &'a mut dyn FnMut(&str) -> Option<Zeroizing<String>>;

/// The AES key that encrypts one object (the "CEK"). Zeroized on drop; never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub enum ContentKey {
    Aes128([u8; 16]),
    Aes256([u8; 32]),
}

impl ContentKey {
    /// A 16-byte key is AES-128, a 32-byte key AES-256; any other length is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        match bytes.len() {
            16 => Ok(Self::Aes128(bytes.try_into().expect("length checked"))),
            32 => Ok(Self::Aes256(bytes.try_into().expect("length checked"))),
            n => Err(CryptoError::CekLength(n)),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Aes128(k) => k,
            Self::Aes256(k) => k,
        }
    }

    /// "AES-128" or "AES-256", for messages.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Aes128(_) => "AES-128",
            Self::Aes256(_) => "AES-256",
        }
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContentKey({}, redacted)", self.algorithm())
    }
}

struct NamedKey {
    name: String,
    key: PrivateKey,
}

/// The private keys given by the user, tried in order.
#[derive(Default)]
pub struct PrivateKeys {
    keys: Vec<NamedKey>,
}

impl std::fmt::Debug for PrivateKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl PrivateKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one PEM private key (PKCS#1, PKCS#8 or encrypted PKCS#8) and adds it under
    /// `name` (usually its path). `passphrase` is asked only for an encrypted key.
    pub fn add_pem(
        &mut self,
        name: &str,
        pem: &str,
        passphrase: PassphraseSource<'_>,
    ) -> Result<(), CryptoError> {
        let key = parse_pem(name, pem, passphrase)?;
        self.add(name, key);
        Ok(())
    }

    /// Adds an already parsed key (the emulator and tests generate theirs).
    pub fn add(&mut self, name: &str, key: PrivateKey) {
        self.keys.push(NamedKey {
            name: name.to_owned(),
            key,
        });
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.name.as_str())
    }

    /// The public halves, with their names (for checking against what Twilio holds).
    pub fn public_keys(&self) -> impl Iterator<Item = (&str, PublicKey)> {
        self.keys
            .iter()
            .map(|k| (k.name.as_str(), k.key.to_public_key()))
    }

    /// Unwraps a content key (RSA PKCS#1 v1.5) with the first key that can, and says which.
    ///
    /// The `rsa` crate decrypts with implicit rejection (its defence against the Marvin
    /// timing attack): a wrong private key does not fail, it yields a deterministic
    /// random-looking message. Such a message is 16 or 32 bytes long about 1% of the time,
    /// so a length check alone would sometimes accept a wrong key. `verify` is the
    /// authentication the crate asks its caller for: given a candidate key it checks
    /// something only the right key passes, the padding of the object's last block
    /// ([`super::window::check_tail`]). Callers with no ciphertext at hand pass
    /// `|_| Ok(())` and rely on the padding check at the end of the object.
    ///
    /// When no key passes: if some key gave a well-formed AES key that failed `verify`,
    /// [`CryptoError::KeyCheck`] (that key is wrong, or the object is damaged: nothing
    /// here can tell which); otherwise [`CryptoError::WrongKey`].
    pub fn unwrap_cek(
        &self,
        wrapped: &[u8],
        verify: impl Fn(&ContentKey) -> Result<(), CryptoError>,
    ) -> Result<(ContentKey, &str), CryptoError> {
        if self.keys.is_empty() {
            return Err(CryptoError::NoKeys);
        }
        let mut rng = rand::rng();
        let mut tried = Vec::new();
        let mut failed_check = None;
        for k in &self.keys {
            // Blinded decryption: the unwrap timing does not follow the private exponent.
            let cek = match k.key.decrypt_blinded(&mut rng, Pkcs1v15Encrypt, wrapped) {
                Ok(cek) => Zeroizing::new(cek),
                Err(e) => {
                    tried.push(format!("{} ({e})", k.name));
                    continue;
                }
            };
            match ContentKey::from_bytes(&cek) {
                Ok(key) => match verify(&key) {
                    Ok(()) => return Ok((key, &k.name)),
                    Err(e) => {
                        tried.push(format!("{} (its AES key fails the check: {e})", k.name));
                        failed_check.get_or_insert_with(|| CryptoError::KeyCheck {
                            key: k.name.clone(),
                            cause: Box::new(e),
                        });
                    }
                },
                Err(_) => tried.push(format!(
                    "{} (gives {} bytes, not a 16- or 32-byte AES key)",
                    k.name,
                    cek.len()
                )),
            }
        }
        Err(failed_check.unwrap_or(CryptoError::WrongKey {
            tried: tried.join(", "),
        }))
    }

    /// Unwraps the content key of an encrypted call recording: RSAES-OAEP with SHA-256
    /// and MGF1-SHA-256, each key in turn; the content key must be 32 bytes (AES-256).
    ///
    /// Unlike PKCS#1 v1.5 here, OAEP fails outright with a wrong private key (its padding
    /// carries a hash check), so the first key that unwraps is the pair of the public key
    /// and no check against the object is needed. A key wrapped another way (PKCS#1 v1.5,
    /// or OAEP with other hashes) unwraps with no key: [`CryptoError::WrongKey`], naming
    /// every key tried. A key that unwraps to something other than 32 bytes is
    /// [`CryptoError::GcmKeyLength`].
    pub fn unwrap_oaep(&self, wrapped: &[u8]) -> Result<(ContentKey, &str), CryptoError> {
        if self.keys.is_empty() {
            return Err(CryptoError::NoKeys);
        }
        let mut rng = rand::rng();
        let mut tried = Vec::new();
        let mut bad_length = None;
        for k in &self.keys {
            let padding = Oaep::<rsa::sha2::Sha256>::new();
            // Blinded decryption: the unwrap timing does not follow the private exponent.
            match k.key.decrypt_blinded(&mut rng, padding, wrapped) {
                Ok(cek) => {
                    let cek = Zeroizing::new(cek);
                    if cek.len() == 32 {
                        return Ok((ContentKey::from_bytes(&cek)?, &k.name));
                    }
                    tried.push(format!(
                        "{} (gives {} bytes, not a 32-byte AES-256 key)",
                        k.name,
                        cek.len()
                    ));
                    bad_length.get_or_insert(cek.len());
                }
                Err(e) => tried.push(format!("{} ({e})", k.name)),
            }
        }
        Err(match bad_length {
            Some(n) => CryptoError::GcmKeyLength(n),
            None => CryptoError::WrongKey {
                tried: tried.join(", "),
            },
        })
    }
}

fn parse_pem(
    name: &str,
    pem: &str,
    passphrase: PassphraseSource<'_>,
) -> Result<PrivateKey, CryptoError> {
    let format_error = |detail: String| CryptoError::KeyFormat {
        name: name.to_owned(),
        detail,
    };
    let label = pem
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or_else(|| format_error("no -----BEGIN line".into()))?;
    // The PEM decoders want the block alone, without text around it.
    let begin = pem.find("-----BEGIN ").expect("label found");
    let end_marker = format!("-----END {label}-----");
    let end = pem[begin..]
        .find(&end_marker)
        .map(|i| begin + i + end_marker.len())
        .ok_or_else(|| format_error(format!("no {end_marker} line")))?;
    let block = &pem[begin..end];
    match label {
        "RSA PRIVATE KEY" => {
            if block.contains("Proc-Type: 4,ENCRYPTED") {
                return Err(format_error(
                    "legacy OpenSSL-encrypted PKCS#1; convert it with \
                     `openssl pkcs8 -topk8 -in KEY -out KEY8.pem`"
                        .into(),
                ));
            }
            PrivateKey::from_pkcs1_pem(block).map_err(|e| format_error(e.to_string()))
        }
        "PRIVATE KEY" => PrivateKey::from_pkcs8_pem(block).map_err(|e| format_error(e.to_string())),
        "ENCRYPTED PRIVATE KEY" => {
            let pass = passphrase(name).ok_or_else(|| CryptoError::PassphraseRequired {
                name: name.to_owned(),
            })?;
            PrivateKey::from_pkcs8_encrypted_pem(block, pass.as_bytes()).map_err(|e| {
                CryptoError::WrongPassphrase {
                    name: name.to_owned(),
                    detail: e.to_string(),
                }
            })
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(CryptoError::PublicKeyGiven {
            name: name.to_owned(),
        }),
        other => Err(format_error(format!("found `BEGIN {other}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::seal;

    fn no_passphrase(_: &str) -> Option<Zeroizing<String>> {
        None
    }

    #[test]
    fn content_key_lengths() {
        assert!(matches!(
            ContentKey::from_bytes(&[1; 16]),
            Ok(ContentKey::Aes128(_))
        ));
        assert!(matches!(
            ContentKey::from_bytes(&[1; 32]),
            Ok(ContentKey::Aes256(_))
        ));
        for n in [0, 1, 15, 17, 24, 31, 33, 64] {
            assert_eq!(
                ContentKey::from_bytes(&vec![0; n]),
                Err(CryptoError::CekLength(n))
            );
        }
    }

    #[test]
    fn debug_does_not_show_key_bytes() {
        let s = format!("{:?}", ContentKey::Aes128([0xAB; 16]));
        assert!(
            !s.contains("171") && !s.to_lowercase().contains("ab"),
            "{s}"
        );
    }

    #[test]
    fn garbage_pem_is_a_format_error() {
        let mut keys = PrivateKeys::new();
        let err = keys
            .add_pem("k.pem", "hello", &mut no_passphrase)
            .unwrap_err();
        assert!(matches!(err, CryptoError::KeyFormat { .. }), "{err}");
        let err = keys
            .add_pem(
                "k.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                &mut no_passphrase,
            )
            .unwrap_err();
        assert!(matches!(err, CryptoError::KeyFormat { .. }), "{err}");
        let err = keys
            .add_pem(
                "k.pem",
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                &mut no_passphrase,
            )
            .unwrap_err();
        assert!(matches!(err, CryptoError::PublicKeyGiven { .. }), "{err}");
    }

    #[test]
    fn unwrap_tries_each_key_and_names_the_one_that_worked() {
        let a = seal::test_key(1);
        let b = seal::test_key(2);
        let cek = ContentKey::Aes256([7; 32]);
        let wrapped = seal::wrap_cek(&b.to_public_key(), &cek);
        let mut keys = PrivateKeys::new();
        assert_eq!(
            keys.unwrap_cek(&wrapped, |_| Ok(())).unwrap_err(),
            CryptoError::NoKeys
        );
        keys.add("a.pem", a);
        let right = |k: &ContentKey| {
            if *k == cek {
                Ok(())
            } else {
                Err(CryptoError::BadPadding)
            }
        };
        let r = keys.unwrap_cek(&wrapped, right);
        // a.pem is the wrong key: it fails outright, or (about 1% of wrappings) gives a
        // well-formed AES key that the check refuses.
        assert!(
            matches!(&r, Err(CryptoError::WrongKey { tried }) if tried.contains("a.pem"))
                || matches!(&r, Err(CryptoError::KeyCheck { key, .. }) if key == "a.pem"),
            "{r:?}"
        );
        keys.add("b.pem", b);
        let (got, name) = keys.unwrap_cek(&wrapped, right).unwrap();
        assert_eq!(got, cek);
        assert_eq!(name, "b.pem");
    }

    #[test]
    fn a_key_whose_aes_key_fails_the_check_is_named_with_both_causes() {
        // The 1% case of a wrong key made certain: it unwraps to a well-formed AES key
        // that the object's check refuses.
        let a = seal::test_key(1);
        let wrapped = seal::wrap_cek(&a.to_public_key(), &ContentKey::Aes128([5; 16]));
        let mut keys = PrivateKeys::new();
        keys.add("a.pem", a);
        let r = keys.unwrap_cek(&wrapped, |_| Err(CryptoError::BadPadding));
        let Err(CryptoError::KeyCheck { key, cause }) = &r else {
            panic!("{r:?}");
        };
        assert_eq!(
            (key.as_str(), &**cause),
            ("a.pem", &CryptoError::BadPadding)
        );
        let message = r.unwrap_err().to_string();
        assert!(message.contains("a.pem is not the pair"), "{message}");
        assert!(message.contains("or the object is damaged"), "{message}");
        assert!(message.contains("bad PKCS#7 padding"), "{message}");
    }

    #[test]
    fn a_wrapped_key_of_the_wrong_length_is_refused() {
        let a = seal::test_key(1);
        let mut rng = rand::rng();
        let wrapped = a
            .to_public_key()
            .encrypt(&mut rng, Pkcs1v15Encrypt, &[9; 24])
            .unwrap();
        let mut keys = PrivateKeys::new();
        keys.add("a.pem", a);
        let r = keys.unwrap_cek(&wrapped, |_| Ok(()));
        assert!(
            matches!(&r, Err(CryptoError::WrongKey { tried }) if tried.contains("gives 24 bytes")),
            "{r:?}"
        );
    }

    #[test]
    fn oaep_unwrap_tries_each_key_and_names_the_one_that_worked() {
        let a = seal::test_key(1);
        let b = seal::test_key(2);
        let cek = ContentKey::Aes256([7; 32]);
        let wrapped = seal::wrap_cek_oaep(&b.to_public_key(), &cek);
        let mut keys = PrivateKeys::new();
        assert_eq!(keys.unwrap_oaep(&wrapped).unwrap_err(), CryptoError::NoKeys);
        keys.add("a.pem", a);
        let r = keys.unwrap_oaep(&wrapped);
        assert!(
            matches!(&r, Err(CryptoError::WrongKey { tried }) if tried.contains("a.pem")),
            "{r:?}"
        );
        keys.add("b.pem", b);
        let (got, name) = keys.unwrap_oaep(&wrapped).unwrap();
        assert_eq!(got, cek);
        assert_eq!(name, "b.pem");
    }

    /// Only OAEP with SHA-256 and MGF1-SHA-256 is accepted. (No SHA-1 crate is in the
    /// build, so MGF1-SHA-1 stands as MGF1-SHA-512 and OAEP-SHA-224 here.)
    #[test]
    fn oaep_unwrap_refuses_other_paddings() {
        use rsa::sha2::{Sha224, Sha256, Sha512};
        let a = seal::test_key(1);
        let public = a.to_public_key();
        let mut keys = PrivateKeys::new();
        keys.add("a.pem", a);
        let mut rng = rand::rng();
        let cek = [7u8; 32];
        let others = [
            public.encrypt(&mut rng, Pkcs1v15Encrypt, &cek).unwrap(),
            public
                .encrypt(&mut rng, Oaep::<Sha256, Sha512>::new_with_mgf_hash(), &cek)
                .unwrap(),
            public
                .encrypt(&mut rng, Oaep::<Sha224>::new(), &cek)
                .unwrap(),
            public
                .encrypt(
                    &mut rng,
                    Oaep::<Sha256>::new_with_label(b"x".as_slice()),
                    &cek,
                )
                .unwrap(),
        ];
        for (i, wrapped) in others.iter().enumerate() {
            let r = keys.unwrap_oaep(wrapped);
            assert!(
                matches!(&r, Err(CryptoError::WrongKey { tried }) if tried.contains("a.pem")),
                "padding {i}: {r:?}"
            );
        }
        // The right padding, a key of the wrong length.
        let short = public
            .encrypt(&mut rng, Oaep::<Sha256>::new(), &[7; 16])
            .unwrap();
        assert_eq!(
            keys.unwrap_oaep(&short).unwrap_err(),
            CryptoError::GcmKeyLength(16)
        );
    }
}
