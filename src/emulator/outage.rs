//! Storage outages at the TCP level: a listener that goes away and comes back.
//!
//! A real storage outage is not a polite 5xx: new connections are refused and the open
//! ones die. [`OutageListener`] is the storage side's [`axum::serve::Listener`]; while
//! the [`OutageSwitch`] says "down" it holds no socket at all, so a connect gets
//! `ECONNREFUSED` from the kernel, and every connection accepted before the outage began
//! is reset (RST: `SO_LINGER` 0, then closed) the moment it starts, idle keep-alive
//! connections included. When the switch says "up" the listener binds the same address
//! again.
//!
//! This file owns that switch, the listener and the connection wrapper; it must not know
//! what is served over them (that is the router's).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Whether storage is down, and how many outages have begun (connections accepted in
/// an earlier epoch are reset when a new one begins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct State {
    down: bool,
    epoch: u64,
}

/// Turns the storage listener off and on.
#[derive(Debug)]
pub struct OutageSwitch {
    tx: watch::Sender<State>,
}

impl Default for OutageSwitch {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(State::default()),
        }
    }
}

impl OutageSwitch {
    /// Starts (`true`) or ends (`false`) an outage. Starting one resets every open
    /// connection; starting one while down changes nothing.
    pub fn set_down(&self, down: bool) {
        self.tx.send_if_modified(|s| {
            if s.down == down {
                return false;
            }
            s.down = down;
            if down {
                s.epoch += 1;
            }
            true
        });
    }

    /// Whether storage is down now.
    pub fn is_down(&self) -> bool {
        self.tx.borrow().down
    }

    /// How many outages have begun.
    pub fn outages(&self) -> u64 {
        self.tx.borrow().epoch
    }

    fn subscribe(&self) -> watch::Receiver<State> {
        self.tx.subscribe()
    }
}

/// The storage listener: `accept` serves connections while up, holds no socket while
/// down.
pub struct OutageListener {
    addr: SocketAddr,
    inner: Option<TcpListener>,
    state: watch::Receiver<State>,
}

impl OutageListener {
    /// Serves on `listener` (its address is bound again after each outage).
    pub fn new(listener: TcpListener, switch: &OutageSwitch) -> io::Result<Self> {
        Ok(Self {
            addr: listener.local_addr()?,
            inner: Some(listener),
            state: switch.subscribe(),
        })
    }

    /// The address it serves (and binds again after an outage).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl axum::serve::Listener for OutageListener {
    type Io = OutageStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let state = *self.state.borrow_and_update();
            if state.down {
                // Closing the socket is what makes connects fail with ECONNREFUSED.
                self.inner = None;
                if self.state.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            if self.inner.is_none() {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => self.inner = Some(l),
                    Err(e) => {
                        tracing::warn!(
                            "emulator storage: cannot listen on {} again: {e}",
                            self.addr
                        );
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            let listener = self.inner.as_ref().expect("bound above");
            let accepted = tokio::select! {
                accepted = listener.accept() => Some(accepted),
                changed = self.state.changed() => {
                    if changed.is_err() {
                        std::future::pending::<()>().await;
                    }
                    None
                }
            };
            match accepted {
                Some(Ok((stream, addr))) => {
                    return (
                        OutageStream::new(stream, self.state.clone(), state.epoch),
                        addr,
                    );
                }
                // Out of file descriptors and the like: wait a little, as axum does.
                Some(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
                None => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// A storage connection that is reset when an outage begins.
pub struct OutageStream {
    inner: TcpStream,
    /// Completes when an outage begins after this connection was accepted.
    outage: Pin<Box<dyn Future<Output = ()> + Send>>,
    reset: bool,
}

impl OutageStream {
    fn new(inner: TcpStream, mut state: watch::Receiver<State>, epoch: u64) -> Self {
        let outage = Box::pin(async move {
            if state.wait_for(|s| s.epoch != epoch).await.is_err() {
                // The emulator is gone: nothing will start an outage any more.
                std::future::pending::<()>().await;
            }
        });
        Self {
            inner,
            outage,
            reset: false,
        }
    }

    /// Whether the connection has been reset; registers the task to be woken when it is.
    fn poll_reset(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.reset && self.outage.as_mut().poll(cx).is_ready() {
            self.reset = true;
            // Closing with a zero linger sends RST, as a dying server's kernel would.
            let _ = self.inner.set_zero_linger();
        }
        self.reset
    }
}

fn reset_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "emulated storage outage")
}

impl AsyncRead for OutageStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_reset(cx) {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for OutageStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.poll_reset(cx) {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_reset(cx) {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.poll_reset(cx) {
            return Poll::Ready(Err(reset_error()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn connections_are_refused_while_down_and_reset_when_it_starts() {
        let switch = OutageSwitch::default();
        let bound = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut listener = OutageListener::new(bound, &switch).unwrap();
        let addr = listener.local_addr().unwrap();
        // An echo server on the listener.
        let server = tokio::spawn(async move {
            loop {
                let (mut io, _) = listener.accept().await;
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let mut open = TcpStream::connect(addr).await.unwrap();
        open.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        open.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");

        switch.set_down(true);
        assert!(switch.is_down());
        // The open connection dies with a reset (or EOF), never another echo.
        let mut rest = Vec::new();
        let got = tokio::time::timeout(Duration::from_secs(5), open.read_to_end(&mut rest))
            .await
            .expect("the open connection ends at once");
        assert!(got.is_err() || rest.is_empty(), "{got:?} {rest:?}");
        // New connections are refused by the kernel.
        let mut refused = false;
        for _ in 0..100 {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    refused = true;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        assert!(refused, "connections are refused during the outage");

        switch.set_down(false);
        let mut back = None;
        for _ in 0..100 {
            if let Ok(s) = TcpStream::connect(addr).await {
                back = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut back = back.expect("listening again on the same address");
        back.write_all(b"ok").await.unwrap();
        back.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ok");
        assert_eq!(switch.outages(), 1);
        server.abort();
    }
}
