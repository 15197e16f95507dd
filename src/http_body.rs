//! Bytes `[start, end)` of a decrypted file as an HTTP response body: read from the
//! read core a step at a time, as the client takes them.
//!
//! Every server of decrypted media uses this one stream (`serve`, and `compose`'s
//! loopback inputs), so that both end a response the same way when a read fails: the
//! stream yields an error, the server breaks the connection off, and the client sees
//! a transfer cut short of its `Content-Length`, never a complete-looking file. A read
//! that returns nothing before `end` is such a failure too. It owns no I/O of its own.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

/// Plaintext bytes read from the core per step of a response.
pub const STEP: u64 = 256 << 10;

/// The stream of `[start, end)`, `read(offset, len)` giving each step. `on_failure` is
/// told what went wrong (a line naming the SID) before the stream ends with it.
pub fn chunks<R, F, E>(
    start: u64,
    end: u64,
    read: R,
    on_failure: impl Fn(&str) + Send + Sync + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static
where
    R: Fn(u64, u64) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Bytes, E>> + Send,
    E: Display,
{
    let read = Arc::new(read);
    let on_failure = Arc::new(on_failure);
    futures_util::stream::try_unfold(start, move |at| {
        let read = read.clone();
        let on_failure = on_failure.clone();
        async move {
            if at >= end {
                return Ok(None);
            }
            let failure = match read(at, STEP.min(end - at)).await {
                Ok(data) if !data.is_empty() => {
                    let next = at + data.len() as u64;
                    // A copy: the read core's bytes are a view of a whole cached window,
                    // which a slow client would otherwise keep alive (outside the cache's
                    // budget) for as long as this step waits in the socket's queue.
                    return Ok(Some((Bytes::copy_from_slice(&data), next)));
                }
                Ok(_) => format!("the file ended at byte {at}, before its {end}"),
                Err(e) => e.to_string(),
            };
            on_failure(&failure);
            Err(std::io::Error::other(failure))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn source(len: u64) -> impl Fn(u64, u64) -> std::future::Ready<Result<Bytes, String>> {
        move |at, n| {
            let n = n.min(len.saturating_sub(at));
            std::future::ready(Ok(Bytes::from(vec![(at % 251) as u8; n as usize])))
        }
    }

    #[tokio::test]
    async fn the_range_in_steps() {
        let got: Vec<_> = chunks(10, 10 + 2 * STEP + 5, source(u64::MAX), |_| {})
            .collect()
            .await;
        let sizes: Vec<usize> = got.iter().map(|c| c.as_ref().unwrap().len()).collect();
        assert_eq!(sizes, [STEP as usize, STEP as usize, 5]);
    }

    #[tokio::test]
    async fn a_short_read_is_an_error() {
        let seen = Arc::new(std::sync::Mutex::new(String::new()));
        let s = seen.clone();
        let got: Vec<_> = chunks(0, 100, source(60), move |e| *s.lock().unwrap() = e.into())
            .collect()
            .await;
        assert_eq!(got.len(), 2);
        assert!(got[1].is_err());
        assert!(seen.lock().unwrap().contains("ended at byte 60"));
    }
}
