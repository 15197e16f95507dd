//! What to do with an object that arrives without its envelope headers.
//!
//! Unencrypted media is legitimate: recordings and compositions stored before the
//! account turned encryption on have no `x-amz-meta-x-amz-key`, and are served as they
//! are. But an object whose envelope headers were lost or stripped (a broken proxy, a
//! hostile server) also arrives without them, and its bytes are ciphertext: served "as
//! it is" it would be garbage with exit status 0. The API cannot tell the two apart:
//! `RecordingSettings` and `CompositionSettings` say whether encryption is on *now*
//! and carry no date (Twilio's OpenAPI: `encryption_enabled`, `encryption_key_sid`,
//! nothing about since when), and a resource says nothing of its own encryption. So
//! the decision is made with what the object itself shows, which is certain:
//!
//! - Twilio stores Video media as Matroska (`mka`, `mkv`, `webm`: an EBML header,
//!   `1A 45 DF A3`) or MP4 (an ISO BMFF box, `ftyp` first). Unencrypted media starts
//!   so; ciphertext starts so by chance once in 2^32. An object with no envelope whose
//!   first bytes are neither ([`looks_like_media`]) is refused as damaged
//!   ([`super::ReadError::NoEnvelope`], EIO on the mount), never served.
//! - An object with no envelope that starts like media is served, with one WARN naming
//!   its SID (once per object and process), `user.twilio.encrypted` = `false` on the
//!   mount and `no` in `ls --encryption`.
//! - `--require-encrypted` refuses it too ([`super::ReadError::NotEncrypted`], EACCES
//!   on the mount, a non-zero exit and no file from `get`).
//!
//! A Voice call recording says in its resource whether it is encrypted
//! (`encryption_details`); one said to be unencrypted must start like a WAV file (a
//! `RIFF` chunk of form `WAVE`), by the same rule.
//!
//! An empty object (nothing to serve) is not refused by the content rule.
//!
//! Pure: no I/O.

/// The EBML magic that every Matroska and WebM file starts with.
pub const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// ISO BMFF box types an MP4 file can start with: `ftyp` is required to come first,
/// the rest are what older muxers put before it.
const MP4_FIRST_BOXES: [&[u8; 4]; 6] = [b"ftyp", b"styp", b"moov", b"free", b"skip", b"mdat"];

/// Whether the first bytes of an object (`head`, at least 8 of them when it has that
/// many; 12 for a WAV) can begin a Matroska/WebM, MP4 or WAV file. `total_len` is the object's length:
/// an empty object passes (there is nothing to serve), a shorter head than 8 bytes of
/// a longer object does not decide and passes too (the caller asks with more).
pub fn looks_like_media(head: &[u8], total_len: u64) -> bool {
    if total_len == 0 {
        return true;
    }
    if head.len() < 8 && (head.len() as u64) < total_len {
        return true;
    }
    if head.starts_with(&EBML_MAGIC) {
        return true;
    }
    // A WAV file (a call recording): a RIFF chunk of form type WAVE.
    if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WAVE" {
        return true;
    }
    match (head.get(..4), head.get(4..8)) {
        (Some(size), Some(kind)) => {
            let size = u32::from_be_bytes(size.try_into().unwrap_or_default());
            // A box is at least its 8-byte header (0: to the end; 1: a 64-bit size).
            (size == 0 || size == 1 || size >= 8) && MP4_FIRST_BOXES.iter().any(|b| &b[..] == kind)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_starts_so_and_ciphertext_does_not() {
        let mp4 = [&[0, 0, 0, 0x20][..], b"ftypisom", &[0; 8]].concat();
        let mkv = [&EBML_MAGIC[..], &[0x9F, 0x42, 0x86, 0x81, 1][..]].concat();
        let accepted: [(&[u8], u64); 7] = [
            (&mkv, 1000),
            (&mp4, 1000),
            (&[0, 0, 0, 1, b'm', b'o', b'o', b'v'], 100),
            (&EBML_MAGIC, 4), // a whole (tiny) object that is an EBML header
            (&[], 0),
            (&EBML_MAGIC[..2], 1000), // not enough to decide: asked again with more
            (b"RIFF\x24\x00\x01\x00WAVEfmt ", 1000),
        ];
        for (head, len) in accepted {
            assert!(looks_like_media(head, len), "{head:02x?} of {len}");
        }
        let refused: [(&[u8], u64); 8] = [
            (&[0x1A, 0x45, 0xDF, 0xA2, 0, 0, 0, 0], 1000), // one bit off
            (&[0, 0, 0, 4, b'f', b't', b'y', b'p'], 1000), // a box shorter than its header
            (&[0, 0, 0, 0x20, b'F', b'T', b'Y', b'P'], 1000),
            (&[0x42; 16], 16),
            (b"hello", 5),
            (&[0xFF], 1),
            (b"<html><body>", 12),
            (b"RIFF\x24\x00\x01\x00AVI LIST", 1000),
        ];
        for (head, len) in refused {
            assert!(!looks_like_media(head, len), "{head:02x?} of {len}");
        }
    }

    /// Ciphertext (AES output: uniform bytes) is refused: of 100 000 pseudo-random
    /// heads, none passes.
    #[test]
    fn random_heads_are_refused() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let head = x.to_le_bytes();
            assert!(!looks_like_media(&head, 1 << 20), "{head:02x?}");
        }
    }
}
