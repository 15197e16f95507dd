//! Window decryption with arbitrary keys, ciphertexts, offsets and lengths.
//!
//! Properties checked, for every input:
//! - nothing panics (fetch_range, decrypt_window, check_tail, StreamDecryptor);
//! - a plaintext range served the way the reader serves it (fetch_range, decrypt the
//!   fetched blocks, trim) equals the same range of a whole-object decryption, for any
//!   range, whole blocks or not, and whatever the ciphertext: no window ever returns a
//!   byte the whole object would not;
//! - when the whole object's padding is bad, every window that holds the last block is
//!   an error, as is check_tail and the streaming decryptor;
//! - check_tail gives the exact plaintext length, and refuses a length header that
//!   disagrees;
//! - the streaming decryptor, fed in arbitrary chunks, gives the whole-object result.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use twilio_media_fs::crypto::window::{
    check_tail, ciphertext_len, decrypt_blocks, decrypt_window, fetch_range,
};
use twilio_media_fs::crypto::{ContentKey, StreamDecryptor, seal};

#[derive(Debug, Arbitrary)]
enum Body {
    /// A real object: `plain` encrypted with the key, as Twilio stores it.
    Sealed { plain: Vec<u8> },
    /// The same, with one byte changed (damaged in storage or in transit).
    Damaged { plain: Vec<u8>, at: u16, xor: u8 },
    /// Any bytes at all (cut down to whole blocks, or not).
    Raw { cipher: Vec<u8>, whole_blocks: bool },
}

#[derive(Debug, Arbitrary)]
struct Input {
    aes256: bool,
    key: [u8; 32],
    iv: [u8; 16],
    body: Body,
    /// Plaintext ranges to read: (start, length).
    reads: Vec<(u64, u64)>,
    /// How the stream decryptor is fed: chunk sizes, cycled.
    chunks: Vec<u8>,
    /// A length header to check against (None: missing).
    header_len: Option<u64>,
}

fn key(input: &Input) -> ContentKey {
    if input.aes256 {
        ContentKey::Aes256(input.key)
    } else {
        ContentKey::Aes128(input.key[..16].try_into().unwrap())
    }
}

fuzz_target!(|input: Input| {
    let key = key(&input);
    let iv = input.iv;
    let (cipher, plain) = match &input.body {
        Body::Sealed { plain } => (seal::encrypt(&key, &iv, plain), Some(plain.clone())),
        Body::Damaged { plain, at, xor } => {
            let mut c = seal::encrypt(&key, &iv, plain);
            let i = *at as usize % c.len();
            c[i] ^= xor;
            (c, if *xor == 0 { Some(plain.clone()) } else { None })
        }
        Body::Raw {
            cipher,
            whole_blocks,
        } => {
            let mut c = cipher.clone();
            if *whole_blocks {
                c.truncate(c.len() / 16 * 16);
            }
            (c, None)
        }
    };
    let total_c = cipher.len() as u64;
    if let Some(p) = &plain {
        assert_eq!(ciphertext_len(p.len() as u64), total_c);
    }

    // The reference: the whole object decrypted at once.
    let mut whole = cipher.clone();
    let whole = decrypt_window(&key, &iv, &mut whole, true).map(|n| {
        whole.truncate(n);
        whole
    });
    if !total_c.is_multiple_of(16) || total_c == 0 {
        assert!(whole.is_err(), "{total_c} bytes of ciphertext decrypted");
    }
    if let Some(p) = &plain {
        assert_eq!(
            whole.as_ref().ok(),
            Some(p),
            "a sealed object decrypts to its plaintext"
        );
    }
    // The blocks decrypted without any padding check: what a window in the middle holds.
    let raw = total_c.is_multiple_of(16).then(|| {
        let mut b = cipher.clone();
        decrypt_blocks(&key, &iv, &mut b).expect("whole blocks");
        b
    });

    // Streaming, in arbitrary chunks.
    let mut stream = StreamDecryptor::new(key.clone(), iv);
    let mut out = Vec::new();
    let mut rest = &cipher[..];
    let mut sizes = input.chunks.iter().cycle();
    let mut fed = Ok(());
    while !rest.is_empty() && fed.is_ok() {
        let n = sizes
            .next()
            .map_or(rest.len(), |&s| (s as usize).clamp(1, rest.len()));
        fed = stream.update(&rest[..n], &mut out);
        rest = &rest[n..];
    }
    let streamed = fed.and_then(|()| stream.finish(&mut out)).map(|_| out);
    assert_eq!(
        streamed.as_ref().ok(),
        whole.as_ref().ok(),
        "stream vs whole"
    );

    if total_c == 0 || !total_c.is_multiple_of(16) {
        // Not AES-CBC: a reader checks the length before any window; fetch_range must
        // still not panic.
        for &(start, len) in input.reads.iter().take(8) {
            let _ = fetch_range(start, start.saturating_add(len), total_c);
        }
        return;
    }
    let raw = raw.expect("whole blocks");

    // The exact length from the tail, as when the length header is missing.
    let n = cipher.len();
    let prev: [u8; 16] = if n == 16 {
        iv
    } else {
        cipher[n - 32..n - 16].try_into().unwrap()
    };
    let last: [u8; 16] = cipher[n - 16..].try_into().unwrap();
    let tail = check_tail(&key, &prev, &last, total_c, None);
    assert_eq!(
        tail.as_ref().ok().copied(),
        whole.as_ref().ok().map(|w| w.len() as u64)
    );
    if let Some(h) = input.header_len {
        let checked = check_tail(&key, &prev, &last, total_c, Some(h));
        match &whole {
            Ok(w) if w.len() as u64 == h => assert_eq!(checked, Ok(h)),
            _ => assert!(checked.is_err(), "length header {h} accepted"),
        }
    }

    for &(start, len) in input.reads.iter().take(16) {
        // Reads start inside the object (the reader answers EOF past it); lengths are free.
        let start = start % (total_c + 1);
        let end = start.saturating_add(len);
        let r = fetch_range(start, end, total_c);
        assert!(r.fetch_start <= r.block_start && r.block_start <= start);
        assert!(r.fetch_end <= total_c && r.fetch_end > r.block_start);
        assert_eq!(r.block_start % 16, 0);
        assert_eq!(r.fetch_end % 16, 0);
        assert_eq!(r.leading_iv_block, r.block_start > 0);
        assert_eq!(r.fetch_start, r.block_start.saturating_sub(16));
        assert_eq!(r.is_last, r.fetch_end == total_c);
        if end > total_c.saturating_sub(16) {
            assert!(r.is_last, "a range reaching the last block fetches it");
        }
        let fetched = &cipher[r.fetch_start as usize..r.fetch_end as usize];
        let (prev, body) = if r.leading_iv_block {
            (
                <[u8; 16]>::try_from(&fetched[..16]).unwrap(),
                &fetched[16..],
            )
        } else {
            (iv, fetched)
        };
        let mut buf = body.to_vec();
        let got = decrypt_window(&key, &prev, &mut buf, r.is_last);
        let b0 = r.block_start as usize;
        match (&whole, got) {
            (Ok(w), Ok(m)) => {
                buf.truncate(m);
                assert_eq!(&buf[..], &w[b0.min(w.len())..(b0 + m).min(w.len())]);
                assert!(b0 + m <= w.len());
                let from = (start - r.block_start) as usize;
                let to = ((end - r.block_start) as usize).min(buf.len());
                let served = buf.get(from..to).unwrap_or_default();
                let want = w
                    .get(start as usize..(end.min(w.len() as u64)) as usize)
                    .unwrap_or_default();
                assert_eq!(
                    served, want,
                    "window [{start}, {end}) differs from the whole object"
                );
            }
            (Ok(_), Err(e)) => panic!("window [{start}, {end}) failed ({e}) on a valid object"),
            (Err(_), Ok(m)) => {
                assert!(!r.is_last, "a window holding bad padding was accepted");
                assert_eq!(m, buf.len());
                assert_eq!(
                    &buf[..],
                    &raw[b0..b0 + m],
                    "a middle window is the raw blocks"
                );
            }
            (Err(_), Err(_)) => assert!(r.is_last),
        }
    }
});
