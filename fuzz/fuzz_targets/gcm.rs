//! AES-256-GCM of encrypted call recordings with arbitrary keys, IVs, objects, offsets,
//! window sizes and orders.
//!
//! Properties checked, for every input:
//! - nothing panics (plaintext_len, apply_ctr, TagCheck, GcmStream);
//! - apply_ctr refuses an offset that is not a multiple of 16 and otherwise gives the
//!   same bytes as decrypting the whole object from offset 0, whatever the length;
//! - TagCheck, fed every window in an arbitrary order (some twice) and the tag at an
//!   arbitrary point, says `Unknown` until it has all of them, then `Verified` exactly
//!   when GcmStream (fed in arbitrary chunks) accepts the object; a sealed object is
//!   verified, a damaged one is not; a window of the wrong length makes it `Failed`;
//! - GcmStream's plaintext is the whole-object decryption and it never releases the
//!   last 16 bytes before `finish`.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_media_fs::crypto::gcm::{self, GcmStream, TagCheck, Verdict, apply_ctr};
use twilio_media_fs::crypto::{ContentKey, CryptoError, seal};

#[derive(Debug, Arbitrary)]
enum Body {
    /// A real object: `plain` sealed with the key and IV.
    Sealed { plain: Vec<u8> },
    /// The same, with one byte changed.
    Damaged { plain: Vec<u8>, at: u16, xor: u8 },
    /// Any bytes at all.
    Raw { stored: Vec<u8> },
}

#[derive(Debug, Arbitrary)]
struct Input {
    key: [u8; 32],
    iv: [u8; 12],
    body: Body,
    /// Window size in blocks (1 + this, mod 300).
    window_blocks: u16,
    /// Windows to record first (mod the window count); the rest follow in order.
    order: Vec<u16>,
    /// After how many records the tag is set.
    tag_at: u16,
    /// A record that does not fit the object: (window, length).
    misfit: Option<(u64, u16)>,
    /// Stream chunk sizes, cycled.
    chunks: Vec<u8>,
    /// apply_ctr reads: (offset, length).
    reads: Vec<(u32, u16)>,
}

fuzz_target!(|input: Input| {
    let key = ContentKey::Aes256(input.key);
    let iv = input.iv;
    let (stored, sealed) = match &input.body {
        Body::Sealed { plain } => (seal::seal_gcm_with(&key, &iv, plain), Some(plain.clone())),
        Body::Damaged { plain, at, xor } => {
            let mut s = seal::seal_gcm_with(&key, &iv, plain);
            let i = *at as usize % s.len();
            s[i] ^= xor;
            (s, (*xor == 0).then(|| plain.clone()))
        }
        Body::Raw { stored } => (stored.clone(), None),
    };
    let stored_len = stored.len() as u64;

    // Streaming, in arbitrary chunks.
    let mut stream = GcmStream::new(key.clone(), iv).expect("AES-256");
    let mut out = Vec::new();
    let mut rest = &stored[..];
    let mut sizes = input.chunks.iter().cycle();
    while !rest.is_empty() {
        let n = sizes
            .next()
            .map_or(rest.len(), |&s| (s as usize).clamp(1, rest.len()));
        stream.update(&rest[..n], &mut out).expect("short object");
        rest = &rest[n..];
        let seen = stored.len() - rest.len();
        assert!(out.len() <= seen.saturating_sub(16), "the tag is held back");
    }
    let streamed = stream.finish(&mut out);

    let Ok(plain_len) = gcm::plaintext_len(stored_len) else {
        assert!(stored_len < 16);
        assert_eq!(streamed, Err(CryptoError::GcmTooShort(stored_len)));
        return;
    };
    let ct = &stored[..plain_len as usize];
    let mut whole = ct.to_vec();
    apply_ctr(&key, &iv, 0, &mut whole).expect("offset 0");
    match &streamed {
        Ok(n) => {
            assert_eq!(*n, plain_len);
            assert_eq!(out, whole, "stream vs whole");
        }
        Err(e) => assert_eq!(*e, CryptoError::TagMismatch),
    }
    if let Some(p) = &sealed {
        assert_eq!(&whole, p);
        assert!(streamed.is_ok(), "a sealed object is refused");
    }
    if matches!(input.body, Body::Damaged { xor, .. } if xor != 0) {
        assert!(streamed.is_err(), "a damaged object is accepted");
    }

    for &(offset, len) in input.reads.iter().take(16) {
        let offset = offset as u64 % (plain_len + 17);
        let a = offset.min(plain_len) as usize;
        let b = (a + len as usize).min(ct.len());
        let mut buf = ct[a..b].to_vec();
        let r = apply_ctr(&key, &iv, offset, &mut buf);
        if offset % 16 != 0 {
            assert!(r.is_err(), "unaligned offset {offset} accepted");
        } else {
            r.expect("aligned offset");
            if offset <= plain_len {
                assert_eq!(buf, whole[a..b], "apply_ctr at {offset}");
            }
        }
    }

    // The tag, window by window.
    let window = (input.window_blocks as u64 % 300 + 1) * 16;
    let windows = plain_len.div_ceil(window);
    let tc = TagCheck::new(&key, &iv, plain_len, window);
    let mut order: Vec<u64> = input
        .order
        .iter()
        .take(64)
        .filter(|_| windows > 0)
        .map(|&w| w as u64 % windows)
        .collect();
    order.extend(0..windows);
    let tag_at = input.tag_at as usize % (order.len() + 1);
    let tag: [u8; 16] = stored[plain_len as usize..].try_into().unwrap();
    let mut seen = vec![false; windows as usize];
    for (i, &w) in order.iter().enumerate() {
        if i == tag_at {
            tc.set_tag(tag);
        }
        let complete = i >= tag_at && seen.iter().all(|&s| s);
        if !complete {
            assert_eq!(tc.verdict(), Verdict::Unknown, "before everything is seen");
        }
        let a = (w * window) as usize;
        let b = (a + window as usize).min(plain_len as usize);
        tc.record(w, &ct[a..b]);
        seen[w as usize] = true;
    }
    if tag_at == order.len() {
        tc.set_tag(tag);
    }
    let expected = if streamed.is_ok() {
        Verdict::Verified
    } else {
        Verdict::Failed
    };
    assert_eq!(tc.verdict(), expected, "TagCheck vs GcmStream");

    // A window that does not fit the object, given to a fresh check.
    if let Some((w, len)) = input.misfit {
        let len = (len as usize).min(ct.len());
        let fits = w < windows && (plain_len - w * window).min(window) == len as u64;
        if !fits {
            let tc = TagCheck::new(&key, &iv, plain_len, window);
            tc.record(w, &ct[..len]);
            assert_eq!(
                tc.verdict(),
                Verdict::Failed,
                "misfit ({w}, {len}) accepted"
            );
        }
    }
});
