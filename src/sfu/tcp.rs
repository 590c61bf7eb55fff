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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
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
/// A connection's frames are not taken until it has been open this long: a browser whose UDP
/// works has its UDP path up by then, and keeps the first path that worked (Chrome stays on the
/// first writable one, though UDP ranks higher), so TCP is only for those whose UDP does not.
/// Its ICE checks, repeated every few tens of milliseconds, are answered from then on.
const UDP_FIRST: Duration = Duration::from_secs(1);

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
    let mut reader = BufReader::new(reader);
    let Ok(Ok(first)) = tokio::time::timeout(FIRST_FRAME_WITHIN, read_frame(&mut reader)).await else { return };
    let Some(call) = route(&first) else {
        COUNTERS.media_unrouted();
        return;
    };
    let (link, frames) = mpsc::channel(WRITE_QUEUE);
    links.by_peer.lock().insert(peer, link);
    let opened = tokio::time::Instant::now();
    let receive = async {
        let mut frame = first;
        loop {
            COUNTERS.media_in(frame.len());
            if opened.elapsed() < UDP_FIRST {
                frame = match tokio::time::timeout(SILENT_AT_MOST, read_frame(&mut reader)).await {
                    Ok(Ok(frame)) => frame,
                    _ => return,
                };
                continue;
            }
            let datagram: Datagram = (Protocol::Tcp, peer, frame);
            match call.try_send(datagram) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => COUNTERS.media_queue_full(),
                // The call is over.
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
            frame = match tokio::time::timeout(SILENT_AT_MOST, read_frame(&mut reader)).await {
                Ok(Ok(frame)) => frame,
                _ => return,
            };
        }
    };
    tokio::select! {
        () = receive => {}
        () = write_frames(writer, frames) => {}
    }
    links.by_peer.lock().remove(&peer);
}

/// One frame: its length, then as many bytes.
async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let length = reader.read_u16().await?;
    let mut frame = vec![0; usize::from(length)];
    reader.read_exact(&mut frame).await?;
    Ok(frame)
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
        let mut far = BufReader::new(far);
        assert_eq!(read_frame(&mut far).await.unwrap(), b"one");
        assert_eq!(read_frame(&mut far).await.unwrap(), b"");
        assert_eq!(read_frame(&mut far).await.unwrap(), vec![7; 1500]);
        assert!(read_frame(&mut far).await.is_err(), "the stream ended");
    }

    #[tokio::test]
    async fn a_frame_cut_off_by_the_end_of_the_stream_is_an_error_not_a_short_frame() {
        let (mut near, far) = tokio::io::duplex(64);
        near.write_all(&[0, 10, 1, 2, 3]).await.unwrap();
        drop(near);
        assert!(read_frame(&mut BufReader::new(far)).await.is_err());
    }

    #[test]
    fn a_datagram_too_long_for_a_frame_is_left_out() {
        let mut bytes = Vec::new();
        frame(&vec![0; 70_000], &mut bytes);
        frame(b"ok", &mut bytes);
        assert_eq!(bytes, [0, 2, b'o', b'k']);
    }
}
