//! Connections whose peer stops reading are cut, every connection can be cut at shutdown, and
//! what each has written is counted.
//!
//! A write that cannot make progress for a while fails instead of waiting for ever. Without
//! this, a client that never reads would keep its connection, and its place in every room, for
//! as long as it keeps the TCP connection open: the WebSocket writer would wait on it, and the
//! session could not close behind it even after its ping timeout.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::admission::ConnectionSlot;

/// Bytes a connection has handed to the kernel so far: with what was given to a transport,
/// this tells what still waits in the server's memory (see [`crate::realtime`]'s outboxes).
#[derive(Clone, Default, Debug)]
pub struct Written(Arc<AtomicU64>);

impl Written {
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// An IO whose writes fail once one has waited `limit`, and every write after it.
pub struct StallGuard<T> {
    /// Given back as the connection closes: first, before its socket is (fields are dropped in
    /// order), so that nothing refers to a descriptor the system may have handed out again.
    _held: Held,
    inner: T,
    limit: Duration,
    writes: Writes,
    written: Written,
}

/// What a connection holds while it is open.
#[derive(Default)]
pub struct Held {
    /// Its place in its address's count.
    pub slot: Option<ConnectionSlot>,
    /// Its place among the connections cut at shutdown.
    pub listed: Option<Listed>,
}

enum Writes {
    Flowing,
    /// A write waits; the timer is allocated only then.
    Stalled(Pin<Box<Sleep>>),
    /// One waited too long: the peer is gone for our purposes, and whatever was to be written
    /// after it fails at once rather than wait its turn again.
    Broken,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, limit: Duration) -> Self {
        Self::holding(inner, limit, Held::default())
    }

    /// The same, holding a connection's places until it closes.
    pub fn holding(inner: T, limit: Duration, held: Held) -> Self {
        Self { _held: held, inner, limit, writes: Writes::Flowing, written: Written::default() }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// What this connection has written, counted as it goes.
    pub fn written(&self) -> Written {
        self.written.clone()
    }

    /// Runs a write unless the connection is broken, and times its waiting.
    fn guard<R>(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut T, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if matches!(self.writes, Writes::Broken) {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the peer stopped reading")));
        }
        let result = write(&mut self.inner, cx);
        if result.is_ready() {
            self.writes = Writes::Flowing;
            return result;
        }
        if matches!(self.writes, Writes::Flowing) {
            self.writes = Writes::Stalled(Box::pin(tokio::time::sleep(self.limit)));
        }
        if let Writes::Stalled(timer) = &mut self.writes
            && timer.as_mut().poll(cx).is_ready()
        {
            self.writes = Writes::Broken;
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the peer stopped reading")));
        }
        Poll::Pending
    }

    fn count(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &result {
            self.written.add(*n);
        }
        result
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = this.guard(cx, |inner, cx| Pin::new(inner).poll_write(cx, buf));
        this.count(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = this.guard(cx, |inner, cx| Pin::new(inner).poll_write_vectored(cx, bufs));
        this.count(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |inner, cx| Pin::new(inner).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().guard(cx, |inner, cx| Pin::new(inner).poll_shutdown(cx))
    }
}

/// The connections open, to be cut at shutdown. A client whose connection is cut reconnects, to
/// another node or to this one started again; a Socket.IO disconnect, or Engine.IO's close,
/// which socketioxide's own closing sends, is final to python-socketio and others.
#[derive(Clone, Default)]
pub struct OpenConnections(Arc<parking_lot::Mutex<Listing>>);

#[derive(Default)]
struct Listing {
    next: u64,
    sockets: HashMap<u64, RawFd>,
}

/// A connection's place in [`OpenConnections`]: it leaves the list when dropped, which must be
/// before its socket closes (see [`StallGuard`]).
pub struct Listed {
    id: u64,
    list: OpenConnections,
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.list.0.lock().sockets.remove(&self.id);
    }
}

impl OpenConnections {
    pub fn list(&self, tcp: &TcpStream) -> Listed {
        let mut listing = self.0.lock();
        let id = listing.next;
        listing.next += 1;
        listing.sockets.insert(id, tcp.as_raw_fd());
        Listed { id, list: self.clone() }
    }

    /// Shuts every open connection down both ways: what was written to it still reaches its
    /// peer, which then reads its end. Returns how many there were.
    pub fn cut_all(&self) -> usize {
        let listing = self.0.lock();
        for socket in listing.sockets.values() {
            // SAFETY: a listed socket is open: it leaves the list before it closes, under the
            // same lock.
            let socket = unsafe { BorrowedFd::borrow_raw(*socket) };
            let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Both);
        }
        listing.sockets.len()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn a_cut_ends_every_listed_connection_and_none_other() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let open = OpenConnections::default();
        let (mut listed_peer, unlisted_peer) =
            (TcpStream::connect(address).await.unwrap(), TcpStream::connect(address).await.unwrap());
        let (listed, _) = listener.accept().await.unwrap();
        let (_unlisted, _) = listener.accept().await.unwrap();
        let guard = StallGuard::holding(listed, Duration::from_secs(5), Held { slot: None, listed: None });
        let _listing = open.list(guard.get_ref());
        assert_eq!(open.cut_all(), 1);
        let mut buf = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut listed_peer, &mut buf).await.unwrap();
        assert_eq!(read, 0, "the listed connection's peer reads its end");
        let mut unlisted_peer = unlisted_peer;
        let still = tokio::time::timeout(
            Duration::from_millis(100),
            tokio::io::AsyncReadExt::read(&mut unlisted_peer, &mut buf),
        );
        assert!(still.await.is_err(), "the other connection stays open");
        drop(_listing);
        assert_eq!(open.cut_all(), 0, "a connection dropped leaves the list");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_after_the_limit() {
        // A pipe whose other end is never read: it fills, then writes wait.
        let (near, _far) = tokio::io::duplex(1024);
        let mut guarded = StallGuard::new(near, Duration::from_secs(5));
        let chunk = vec![0u8; 4096];
        let error = loop {
            match guarded.write(&chunk).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let again = guarded.write(&chunk).await.unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::BrokenPipe, "and at once after that");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_progress_is_left_alone() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(near, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            let mut buf = [0u8; 16];
            // Slower than the limit in all, never stalled for as long in a row.
            while sink.len() < 1024 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = tokio::io::AsyncReadExt::read(&mut far, &mut buf).await.unwrap();
                sink.extend_from_slice(&buf[..n]);
            }
        });
        guarded.write_all(&[1u8; 1024]).await.unwrap();
        drop(guarded);
        reader.await.unwrap();
    }
}
