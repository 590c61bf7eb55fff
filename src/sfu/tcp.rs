//! Media over TCP, for networks that drop UDP (ICE-TCP, RFC 6544). The browser connects to the
//! web port, which tells such a connection from HTTP and TLS by its first byte (see
//! [`crate::connection`]), and sends its datagrams as frames, each after its length in two bytes
//! (RFC 4571). The connection belongs to the call its first frame names: a STUN request, by its
//! ICE user name, as a UDP source is first named ([`super::demux`]). Its frames then go to that
//! call's task as the port's datagrams do, and what the router sends it comes back as frames.
//!
//! A connection is held to what a UDP source is: it is dropped if its first frame names no
//! connection of a call, or if it falls silent (ICE checks consent every few seconds, RFC 7675);
//! a frame it is too slow to take is dropped rather than waited for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use str0m::net::Protocol;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::demux::Datagram;
use crate::metrics::COUNTERS;

/// The browser's first frame comes within this of connecting, as long as an HTTP request's head
/// has.
const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(10);
/// A connection silent this long is gone: ICE's consent checks come every 5 s or so.
const SILENT_AT_MOST: Duration = Duration::from_secs(30);
/// Frames waiting to be written to one connection; more are dropped, as a full UDP socket
/// drops datagrams. A second of video at full rate is about this many.
const WRITE_QUEUE: usize = 512;
/// Frames written together.
const WRITE_BATCH: usize = 64;
/// A connection's frames are held until it has been open this long, then handed on: a browser
/// whose UDP works is heard over UDP by then (its UDP checks start first, and need no
/// handshake), and a connection heard over UDP is not answered over TCP (see the router), so
/// TCP is only for those whose UDP does not work. Chrome takes an ICE check over TCP answered
/// this late as it comes; answered a second late, it checked again only seconds later (the
/// first frame 4.1 s after joining instead of 0.9 s, `bench/call-setup.mjs`).
const UDP_FIRST: Duration = Duration::from_millis(250);
/// Frames held meanwhile, at most (ICE checks: a few).
const HELD_AT_MOST: usize = 32;

/// The media server's TCP connections, by the browser's address: where the router's datagrams
/// for each go.
#[derive(Default)]
pub(super) struct Links {
    by_peer: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
}

impl Links {
    /// Queues a datagram for `peer`'s connection; false if it has none, or it is too slow.
    pub(super) fn send(&self, peer: SocketAddr, datagram: Vec<u8>) -> bool {
        let by_peer = self.by_peer.lock();
        by_peer.get(&peer).is_some_and(|link| link.try_send(datagram).is_ok())
    }

    pub(super) fn len(&self) -> usize {
        self.by_peer.lock().len()
    }
}

/// Serves a TCP connection whose first byte said it carries media, until it closes, falls
/// silent or belongs to no call: `route` names the queue of the call its first frame is for.
pub(super) async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    links: Arc<Links>,
    route: impl FnOnce(&[u8]) -> Option<mpsc::Sender<Datagram>>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let mut reader = FrameReader::new(reader);
    let Ok(Ok(first)) = tokio::time::timeout(FIRST_FRAME_WITHIN, reader.next()).await else { return };
    let Some(call) = route(&first) else {
        COUNTERS.media_unrouted();
        return;
    };
    let (link, frames) = mpsc::channel(WRITE_QUEUE);
    links.by_peer.lock().insert(peer, link);
    let opened = tokio::time::Instant::now();
    let receive = async {
        COUNTERS.media_in(first.len());
        let mut held = vec![first];
        loop {
            // The reader keeps what it has read of a frame when the wait ends first.
            match tokio::time::timeout_at(opened + UDP_FIRST, reader.next()).await {
                Ok(Ok(frame)) => {
                    COUNTERS.media_in(frame.len());
                    if held.len() < HELD_AT_MOST {
                        held.push(frame);
                    }
                }
                Ok(Err(_)) => return,
                Err(_) => break,
            }
        }
        let hand_on = |frame: Vec<u8>| match call.try_send((Protocol::Tcp, peer, frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                COUNTERS.media_queue_full();
                true
            }
            // The call is over.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        };
        for frame in held {
            if !hand_on(frame) {
                return;
            }
        }
        loop {
            let frame = match tokio::time::timeout(SILENT_AT_MOST, reader.next()).await {
                Ok(Ok(frame)) => frame,
                _ => return,
            };
            COUNTERS.media_in(frame.len());
            if !hand_on(frame) {
                return;
            }
        }
    };
    tokio::select! {
        () = receive => {}
        () = write_frames(writer, frames) => {}
    }
    links.by_peer.lock().remove(&peer);
}

/// Reads frames off a stream: each its length in two bytes, then as many bytes.
struct FrameReader<R> {
    inner: R,
    /// Read, not yet taken: part of a frame, or frames.
    buffer: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(inner: R) -> Self {
        Self { inner, buffer: Vec::with_capacity(4096) }
    }

    /// The next frame. Dropped before it is done (a timeout), it loses nothing: what it read
    /// waits in the buffer for the next call.
    async fn next(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            if let [high, low, rest @ ..] = self.buffer.as_slice() {
                let length = usize::from(u16::from_be_bytes([*high, *low]));
                if rest.len() >= length {
                    let frame = rest[..length].to_vec();
                    self.buffer.drain(..2 + length);
                    return Ok(frame);
                }
            }
            self.buffer.reserve(4096);
            if self.inner.read_buf(&mut self.buffer).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// Writes the datagrams queued for the connection, each framed, those queued together in one
/// write; ends when the connection fails (a peer that stops reading fails its writes).
async fn write_frames(mut writer: impl AsyncWrite + Unpin, mut frames: mpsc::Receiver<Vec<u8>>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut bytes = Vec::new();
    while frames.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        bytes.clear();
        for datagram in batch.drain(..) {
            frame(&datagram, &mut bytes);
        }
        if writer.write_all(&bytes).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
}

/// Appends `datagram` as a frame (RFC 4571); one too long for a frame is left out (the router's
/// datagrams are all smaller than a UDP packet).
fn frame(datagram: &[u8], to: &mut Vec<u8>) {
    let Ok(length) = u16::try_from(datagram.len()) else { return };
    to.extend_from_slice(&length.to_be_bytes());
    to.extend_from_slice(datagram);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_read_whatever_pieces_the_stream_brings_them_in() {
        let mut bytes = Vec::new();
        for datagram in [&b"one"[..], b"", &[7; 1500]] {
            frame(datagram, &mut bytes);
        }
        // A byte at a time: every frame split at every place.
        let (mut near, far) = tokio::io::duplex(1);
        tokio::spawn(async move { near.write_all(&bytes).await });
        let mut far = FrameReader::new(far);
        assert_eq!(far.next().await.unwrap(), b"one");
        assert_eq!(far.next().await.unwrap(), b"");
        assert_eq!(far.next().await.unwrap(), vec![7; 1500]);
        assert!(far.next().await.is_err(), "the stream ended");
    }

    #[tokio::test]
    async fn a_read_given_up_halfway_through_a_frame_loses_none_of_it() {
        let (mut near, far) = tokio::io::duplex(64);
        let mut far = FrameReader::new(far);
        near.write_all(&[0, 4, 1, 2]).await.unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(20), far.next()).await;
        assert!(waited.is_err(), "half a frame is not a frame");
        near.write_all(&[3, 4]).await.unwrap();
        assert_eq!(far.next().await.unwrap(), [1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_frame_cut_off_by_the_end_of_the_stream_is_an_error_not_a_short_frame() {
        let (mut near, far) = tokio::io::duplex(64);
        near.write_all(&[0, 10, 1, 2, 3]).await.unwrap();
        drop(near);
        assert!(FrameReader::new(far).next().await.is_err());
    }

    #[test]
    fn a_datagram_too_long_for_a_frame_is_left_out() {
        let mut bytes = Vec::new();
        frame(&vec![0; 70_000], &mut bytes);
        frame(b"ok", &mut bytes);
        assert_eq!(bytes, [0, 2, b'o', b'k']);
    }
}
