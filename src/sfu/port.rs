//! The media port's socket, read and written a batch of datagrams per system call.
//!
//! A call forwards each datagram it receives to many: at a few hundred streams a core sends tens
//! of thousands of datagrams a second, and one `sendto` each spends a good part of the server's
//! time entering and leaving the kernel. On Linux a batch goes in one `sendmmsg`, and the
//! receiving task takes what is waiting with one `recvmmsg`; elsewhere, one call per datagram.
//!
//! Neither direction ever waits on a participant: what the kernel cannot take at once is
//! dropped, as a full network drops it, and counted.

use std::io;
use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// The most datagrams read or written by one system call.
const BATCH: usize = 64;
/// The largest datagram read: a UDP payload on Ethernet is at most 1,472 bytes, and browsers
/// keep their RTP well under it.
const DATAGRAM_MAX: usize = 2048;
/// The kernel's buffers for the port, each way: a call's burst (a keyframe to everyone) must
/// not overflow them while its task runs. The kernel caps them (`net.core.rmem_max`,
/// `wmem_max`); asking more than it allows is not an error.
const SOCKET_BUFFER: usize = 4 << 20;

pub struct Port {
    socket: UdpSocket,
}

/// What one batched send did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub datagrams: usize,
    pub bytes: usize,
    /// Refused, or not taken at once: dropped.
    pub dropped: usize,
}

/// Room for a batch of received datagrams, reused from one read to the next.
pub struct Received {
    buffers: Vec<[u8; DATAGRAM_MAX]>,
    /// Each datagram read: its source, its buffer and its length.
    datagrams: Vec<(SocketAddr, usize, usize)>,
}

impl Received {
    pub fn new() -> Self {
        Self { buffers: vec![[0; DATAGRAM_MAX]; BATCH], datagrams: Vec::with_capacity(BATCH) }
    }

    /// The datagrams of the last read, with where each came from.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.datagrams.iter().map(|(source, buffer, length)| (*source, &self.buffers[*buffer][..*length]))
    }
}

impl Default for Received {
    fn default() -> Self {
        Self::new()
    }
}

impl Port {
    pub async fn bind(address: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(address).await?;
        let shared = socket2::SockRef::from(&socket);
        // Best effort: the kernel's own limits apply.
        let _ = shared.set_recv_buffer_size(SOCKET_BUFFER);
        let _ = shared.set_send_buffer_size(SOCKET_BUFFER);
        Ok(Self { socket })
    }

    #[cfg(test)]
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for datagrams and reads those waiting, up to a batch.
    pub async fn receive(&self, into: &mut Received) -> io::Result<usize> {
        into.datagrams.clear();
        loop {
            self.socket.readable().await?;
            match self.socket.try_io(tokio::io::Interest::READABLE, || sys::receive(&self.socket, into)) {
                Ok(count) => return Ok(count),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends each datagram to its destination, at once or not at all.
    pub fn send(&self, datagrams: &[(SocketAddr, Vec<u8>)]) -> Sent {
        let mut sent = Sent::default();
        let mut rest = datagrams;
        while !rest.is_empty() {
            match self.socket.try_io(tokio::io::Interest::WRITABLE, || sys::send(&self.socket, rest)) {
                Ok(count) => {
                    sent.datagrams += count;
                    sent.bytes += rest[..count].iter().map(|(_, d)| d.len()).sum::<usize>();
                    rest = &rest[count..];
                }
                // The kernel's buffer is full: the rest would wait, and is dropped instead.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    sent.dropped += rest.len();
                    break;
                }
                // This one datagram is refused (its destination unreachable, a firewall):
                // the others still go.
                Err(_) => {
                    sent.dropped += 1;
                    rest = &rest[1..];
                }
            }
        }
        sent
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use socket2::{SockAddr, SockAddrStorage};
    use tokio::net::UdpSocket;

    use super::{BATCH, DATAGRAM_MAX, Received};

    /// Sends the first datagrams of `datagrams` (up to a batch) with one `sendmmsg`: how many
    /// went, or the error of the first that could not.
    pub fn send(socket: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
        let datagrams = &datagrams[..datagrams.len().min(BATCH)];
        let addresses: Vec<SockAddr> = datagrams.iter().map(|(to, _)| SockAddr::from(*to)).collect();
        let mut parts: Vec<libc::iovec> = datagrams
            .iter()
            .map(|(_, d)| libc::iovec { iov_base: d.as_ptr() as *mut libc::c_void, iov_len: d.len() })
            .collect();
        // SAFETY: an all-zero mmsghdr is a valid empty one.
        let mut messages: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; datagrams.len()];
        for ((message, address), part) in messages.iter_mut().zip(&addresses).zip(parts.iter_mut()) {
            message.msg_hdr.msg_name = address.as_ptr() as *mut libc::c_void;
            message.msg_hdr.msg_namelen = address.len();
            message.msg_hdr.msg_iov = part;
            message.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every pointer in `messages` points into `addresses`, `parts` and `datagrams`,
        // which outlive the call; the kernel only reads them.
        let sent = unsafe { libc::sendmmsg(socket.as_raw_fd(), messages.as_mut_ptr(), messages.len() as u32, 0) };
        if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(sent as usize) }
    }

    /// Reads the datagrams waiting, up to a batch, with one `recvmmsg`.
    pub fn receive(socket: &UdpSocket, into: &mut Received) -> io::Result<usize> {
        let mut addresses: Vec<SockAddrStorage> = (0..BATCH).map(|_| SockAddrStorage::zeroed()).collect();
        let mut parts: Vec<libc::iovec> = into
            .buffers
            .iter_mut()
            .map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: DATAGRAM_MAX })
            .collect();
        // SAFETY: an all-zero mmsghdr is a valid empty one.
        let mut messages: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BATCH];
        for ((message, address), part) in messages.iter_mut().zip(addresses.iter_mut()).zip(parts.iter_mut()) {
            message.msg_hdr.msg_name = (address as *mut SockAddrStorage).cast();
            message.msg_hdr.msg_namelen = address.size_of();
            message.msg_hdr.msg_iov = part;
            message.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: each message points at its own address and buffer, which outlive the call and
        // are as long as their lengths say.
        let count = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                messages.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if count < 0 {
            return Err(io::Error::last_os_error());
        }
        for (buffer, (message, address)) in messages.iter().zip(addresses).enumerate().take(count as usize) {
            // SAFETY: the kernel wrote the source's address and its length.
            let source = unsafe { SockAddr::new(address, message.msg_hdr.msg_namelen) };
            // A datagram from no internet address (none is expected on this socket) is skipped.
            let Some(source) = source.as_socket() else { continue };
            into.datagrams.push((source, buffer, message.msg_len as usize));
        }
        Ok(into.datagrams.len())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::net::SocketAddr;

    use tokio::net::UdpSocket;

    use super::Received;

    pub fn send(socket: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)]) -> io::Result<usize> {
        let (to, datagram) = &datagrams[0];
        socket.try_send_to(datagram, *to).map(|_| 1)
    }

    pub fn receive(socket: &UdpSocket, into: &mut Received) -> io::Result<usize> {
        let (length, source) = socket.try_recv_from(&mut into.buffers[0])?;
        into.datagrams.push((source, 0, length));
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch goes out and comes back whole, each datagram to its own destination and from its
    /// own source; a datagram to nowhere does not stop the others.
    #[tokio::test]
    async fn a_batch_of_datagrams_is_sent_and_received_whole() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let port = Port::bind(loopback).await.unwrap();
        let first = Port::bind(loopback).await.unwrap();
        let second = Port::bind(loopback).await.unwrap();
        let (a, b) = (first.local_addr().unwrap(), second.local_addr().unwrap());
        let to_nowhere: SocketAddr = "[::1]:9".parse().unwrap();
        let mut datagrams: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for i in 0..150u8 {
            let to = if i % 3 == 0 { b } else { a };
            datagrams.push((to, vec![i; 100 + usize::from(i)]));
        }
        datagrams.insert(10, (to_nowhere, vec![0; 10]));
        // As the call's task does, the socket is sent on once the reactor has seen it writable.
        port.socket.writable().await.unwrap();
        let sent = port.send(&datagrams);
        assert_eq!(sent.datagrams + sent.dropped, datagrams.len());
        assert!(sent.dropped >= 1, "the datagram to another family is refused");
        assert_eq!(sent.datagrams, 150);

        let mut received = Received::new();
        let mut got: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        while got.len() < 100 {
            first.receive(&mut received).await.unwrap();
            got.extend(received.iter().map(|(s, d)| (s, d.to_vec())));
        }
        let me = port.local_addr().unwrap();
        let expected: Vec<(SocketAddr, Vec<u8>)> =
            (0..150u8).filter(|i| i % 3 != 0).map(|i| (me, vec![i; 100 + usize::from(i)])).collect();
        assert_eq!(got, expected);
    }
}
