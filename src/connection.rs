//! What every TCP connection goes through before it carries a request: a place in its address's
//! count of open connections (unless it comes from a trusted proxy), Nagle's algorithm off,
//! writes that fail once the peer stops reading, and counted (see [`crate::stall`]): each
//! request carries its connection's [`Written`]; and hyper's limits on how long and how large a
//! request's headers may be.
//!
//! The web port carries calls' media too, for networks that drop UDP: a connection whose first
//! byte is 0 (the length of a STUN request framed as RFC 4571 says, never the first byte of an
//! HTTP request or a TLS handshake) goes to the media server ([`crate::sfu`]'s `tcp`). Over
//! TLS, a connection whose first decrypted byte begins a STUN message (a TURN client's
//! allocation request, never an HTTP request) goes to the TURN server ([`crate::turn`]). A
//! connection whose first byte is 0xfe is another node's media server (calls spanning nodes,
//! [`crate::sfu::cascade`]).
//!
//! Without these, idle or half-sent connections cost a file descriptor and a buffer each for as
//! long as their peer keeps them open: a thousand of them exhausted the server's descriptors.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum_server::Server;
use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::admission::{Admission, Refusal, TrustedProxies};
use crate::metrics::COUNTERS;
use crate::sfu::MediaServer;
use crate::stall::{Held, OpenConnections, StallGuard, Written};
use crate::turn::Streams;

/// The longest a connection may take to send a request's headers, counted from when it is
/// accepted (after a TLS handshake, which has as long again) or from the end of its last
/// answer: a connection idle between requests is closed after as long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (request line and headers) read; a larger one is answered 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Accepts a TCP connection: counted against its address, Nagle's algorithm off (small messages
/// would otherwise wait for delayed ACKs, tens of milliseconds each), writes guarded.
#[derive(Clone)]
pub struct GuardedAcceptor {
    /// How long a write may wait on a peer that does not read.
    pub stall_limit: Duration,
    pub admission: Arc<Admission>,
    /// Their connections carry many clients, each counted by the Socket.IO gate instead.
    pub proxies: TrustedProxies,
    /// Takes the connections that carry media, if calls go through this server.
    pub media: Option<Arc<MediaServer>>,
    /// Where every connection is listed, to be cut at shutdown.
    pub open: OpenConnections,
}

impl<S: Send + 'static> Accept<TcpStream, S> for GuardedAcceptor {
    type Stream = StallGuard<TcpStream>;
    type Service = WithWritten<S>;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        let guarded = self.guard(tcp);
        let media = self.media.clone();
        Box::pin(async move {
            let stream = guarded?;
            if let Some(media) = media {
                let mut first = [0; 1];
                first_byte(stream.get_ref().peek(&mut first)).await?;
                if first[0] == 0 {
                    let peer = stream.get_ref().peer_addr()?;
                    media.serve_tcp(stream, peer);
                    return Err(io::Error::other("a media connection, handed to the media server"));
                }
                if first[0] == crate::sfu::relay::MAGIC
                    && let Some(cascade) = media.cascade()
                {
                    let peer = stream.get_ref().peer_addr()?;
                    cascade.serve(stream, peer);
                    return Err(io::Error::other("another node's media server, handed to the media server"));
                }
            }
            let written = stream.written();
            Ok((stream, WithWritten { inner: service, written }))
        })
    }
}

/// Accepts what `inner` (TLS) accepted, unless it is TURN: the first decrypted byte of a STUN
/// message has its two top bits clear, the first of an HTTP request (a method, or HTTP/2's
/// preface) is a letter.
#[derive(Clone)]
pub struct TurnOverTls<A> {
    pub inner: A,
    /// Takes TURN clients' connections, if the TURN server runs.
    pub turn: Option<Streams>,
}

impl<A, S> Accept<TcpStream, S> for TurnOverTls<A>
where
    A: Accept<TcpStream, S>,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: Send + 'static,
    A::Future: Send + 'static,
{
    type Stream = Rewound<A::Stream>;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Self::Stream, Self::Service)>> + Send>>;

    fn accept(&self, tcp: TcpStream, service: S) -> Self::Future {
        let peer = tcp.peer_addr();
        let accepted = self.inner.accept(tcp, service);
        let turn = self.turn.clone();
        Box::pin(async move {
            let (mut stream, service) = accepted.await?;
            let Some(turn) = turn else { return Ok((Rewound { first: None, inner: stream }, service)) };
            let mut first = [0; 1];
            first_byte(stream.read(&mut first)).await?;
            let stream = Rewound { first: Some(first[0]), inner: stream };
            if first[0] >> 6 == 0 {
                turn.serve(stream, peer?);
                return Err(io::Error::other("a TURN connection, handed to the TURN server"));
            }
            Ok((stream, service))
        })
    }
}

/// Waits, as long as for a request's head, for a read (or peek) of a connection's first byte:
/// the byte that tells what the connection carries.
async fn first_byte(read: impl Future<Output = io::Result<usize>>) -> io::Result<()> {
    match tokio::time::timeout(HEADER_READ_TIMEOUT, read).await {
        Ok(Ok(1)) => Ok(()),
        Ok(Ok(_)) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

/// A stream with the byte read off it to tell what it carries put back in front.
pub struct Rewound<T> {
    first: Option<u8>,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewound<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if let Some(first) = self.first.filter(|_| buf.remaining() > 0) {
            buf.put_slice(&[first]);
            self.first = None;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewound<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service, which hands each request what the connection has written (a
/// WebSocket's transport is the connection its upgrade request came on).
#[derive(Clone)]
pub struct WithWritten<S> {
    inner: S,
    written: Written,
}

impl<S, B> tower::Service<axum::http::Request<B>> for WithWritten<S>
where
    S: tower::Service<axum::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> S::Future {
        request.extensions_mut().insert(self.written.clone());
        self.inner.call(request)
    }
}

impl GuardedAcceptor {
    fn guard(&self, tcp: TcpStream) -> io::Result<StallGuard<TcpStream>> {
        let peer = tcp.peer_addr()?.ip();
        let slot = if self.proxies.trusts(peer) {
            None
        } else {
            let slot = self.admission.connection_opened(peer, Instant::now());
            if slot.is_none() {
                COUNTERS.refused_connection(Refusal::TooManyOpen, peer);
                return Err(io::Error::other(Refusal::TooManyOpen.message()));
            }
            slot
        };
        tcp.set_nodelay(true)?;
        let listed = Some(self.open.list(&tcp));
        Ok(StallGuard::holding(tcp, self.stall_limit, Held { slot, listed }))
    }
}

/// A server on `listener` with the header limits above.
pub fn server(listener: std::net::TcpListener) -> io::Result<Server<SocketAddr>> {
    let mut server = axum_server::from_tcp(listener)?.first_request_timeout(HEADER_READ_TIMEOUT);
    let http = server.http_builder();
    http.http1().header_read_timeout(HEADER_READ_TIMEOUT).max_buf_size(MAX_HEADER_BYTES);
    http.http2().max_header_list_size(MAX_HEADER_BYTES as u32);
    Ok(server)
}

/// The address a connection comes from, for requests (`ConnectInfo<PeerAddr>`).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<SocketAddr> for PeerAddr {
    fn connect_info(addr: SocketAddr) -> Self {
        PeerAddr(addr)
    }
}
