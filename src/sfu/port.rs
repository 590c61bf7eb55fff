//! The media port's socket, read and written a batch of datagrams per system call.
//!
//! A call forwards each datagram it receives to many: at a few hundred streams a core sends tens
//! of thousands of datagrams a second, and one `sendto` each spends a good part of the server's
//! time entering and leaving the kernel. On Linux a batch goes in one `sendmmsg`, and the
//! receiving task takes what is waiting with one `recvmmsg`; elsewhere, one call per datagram.
//! Where the kernel has UDP segmentation offload (GSO, Linux 4.18 on), the packets of one frame
//! to one viewer, which come out of its connection one after another and all of one size but the
//! last, go down the network stack as one message, and are cut into datagrams at its bottom.
//!
//! Neither direction ever waits on a participant: what the kernel cannot take at once is
//! dropped, as a full network drops it, and counted.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Whether runs of datagrams to one destination go as one message (GSO): the kernel has it,
    /// and has not refused it.
    segmenting: AtomicBool,
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
        let segmenting = AtomicBool::new(sys::can_segment(&socket));
        Ok(Self { socket, segmenting })
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
            let segmenting = self.segmenting.load(Ordering::Relaxed);
            let mut result =
                self.socket.try_io(tokio::io::Interest::WRITABLE, || sys::send(&self.socket, rest, segmenting));
            if segmenting && matches!(&result, Err(e) if sys::refuses_segments(e)) {
                // Some devices cannot cut a message into datagrams (they cannot compute the
                // checksums): if the same datagrams go one by one, segmenting stays off.
                result = self.socket.try_io(tokio::io::Interest::WRITABLE, || sys::send(&self.socket, rest, false));
                if result.is_ok() {
                    tracing::info!("the media port sends without segmentation offload: the network device refused it");
                    self.segmenting.store(false, Ordering::Relaxed);
                }
            }
            match result {
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

    /// The most datagrams one segmented message carries (the kernel's `UDP_MAX_SEGMENTS`).
    const SEGMENTS_MAX: usize = 64;
    /// The most bytes one segmented message carries: a UDP datagram's limit, less its headers.
    const SEGMENTED_BYTES_MAX: usize = 65_000;
    /// The datagrams one `sendmmsg` carries, in all its messages.
    const DATAGRAMS_MAX: usize = 256;

    /// Room for one control message: the segment size, a `u16`.
    #[repr(C, align(8))]
    #[derive(Clone, Copy)]
    struct Control([u8; 32]);

    /// Whether the kernel segments UDP (it knows the option).
    pub fn can_segment(socket: &UdpSocket) -> bool {
        let mut size: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `length` bytes into `size`.
        let known = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_UDP,
                libc::UDP_SEGMENT,
                (&mut size as *mut libc::c_int).cast(),
                &mut length,
            )
        };
        known == 0
    }

    /// What a device that cannot segment answers a segmented message with.
    pub fn refuses_segments(error: &io::Error) -> bool {
        matches!(error.raw_os_error(), Some(libc::EIO | libc::EINVAL))
    }

    /// Sends the first datagrams of `datagrams` with one `sendmmsg`: how many went, or the error
    /// of the first message that could not. While `segmenting`, each run of datagrams to one
    /// destination, of one size but a shorter last, is one message.
    pub fn send(socket: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)], segmenting: bool) -> io::Result<usize> {
        // SAFETY: all-zero mmsghdrs and iovecs are valid empty ones.
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut parts: [libc::iovec; DATAGRAMS_MAX] = unsafe { std::mem::zeroed() };
        let mut addresses: [SockAddrStorage; BATCH] = std::array::from_fn(|_| SockAddrStorage::zeroed());
        let mut controls = [Control([0; 32]); BATCH];
        // How many datagrams each message carries.
        let mut carried = [0usize; BATCH];
        let (mut count, mut next) = (0, 0);
        while count < BATCH && next < datagrams.len() {
            let (to, first) = &datagrams[next];
            let mut run = 1;
            if segmenting {
                let mut bytes = first.len();
                while let Some((other, datagram)) = datagrams.get(next + run) {
                    if run == SEGMENTS_MAX
                        || other != to
                        || datagram.len() > first.len()
                        || bytes + datagram.len() > SEGMENTED_BYTES_MAX
                    {
                        break;
                    }
                    bytes += datagram.len();
                    run += 1;
                    // Only the last may be shorter.
                    if datagram.len() < first.len() {
                        break;
                    }
                }
            }
            if next + run > DATAGRAMS_MAX {
                break;
            }
            for (part, (_, datagram)) in parts[next..next + run].iter_mut().zip(&datagrams[next..next + run]) {
                *part = libc::iovec { iov_base: datagram.as_ptr() as *mut libc::c_void, iov_len: datagram.len() };
            }
            let address = SockAddr::from(*to);
            let address_length = address.len();
            addresses[count] = address.as_storage();
            let header = &mut messages[count].msg_hdr;
            header.msg_name = (&mut addresses[count] as *mut SockAddrStorage).cast();
            header.msg_namelen = address_length;
            header.msg_iov = parts[next..].as_mut_ptr();
            header.msg_iovlen = run;
            if run > 1 {
                let segment = first.len() as u16;
                // SAFETY: the control buffer is aligned for a cmsghdr and larger than the space
                // one `u16` takes; CMSG_FIRSTHDR points into it.
                unsafe {
                    header.msg_control = controls[count].0.as_mut_ptr().cast();
                    header.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
                    let control = libc::CMSG_FIRSTHDR(header);
                    (*control).cmsg_level = libc::SOL_UDP;
                    (*control).cmsg_type = libc::UDP_SEGMENT;
                    (*control).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(control).cast::<u16>(), segment);
                }
            }
            carried[count] = run;
            count += 1;
            next += run;
        }
        // SAFETY: every pointer in `messages` points into `addresses`, `parts`, `controls` and
        // `datagrams`, which outlive the call; the kernel only reads them.
        let sent = unsafe { libc::sendmmsg(socket.as_raw_fd(), messages.as_mut_ptr(), count as u32, 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(carried[..sent as usize].iter().sum())
    }

    /// Reads the datagrams waiting, up to a batch, with one `recvmmsg`.
    pub fn receive(socket: &UdpSocket, into: &mut Received) -> io::Result<usize> {
        let mut addresses: [SockAddrStorage; BATCH] = std::array::from_fn(|_| SockAddrStorage::zeroed());
        // SAFETY: all-zero mmsghdrs and iovecs are valid empty ones.
        let mut parts: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut messages: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (part, buffer) in parts.iter_mut().zip(into.buffers.iter_mut()) {
            *part = libc::iovec { iov_base: buffer.as_mut_ptr().cast(), iov_len: DATAGRAM_MAX };
        }
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

    pub fn can_segment(_: &UdpSocket) -> bool {
        false
    }

    pub fn refuses_segments(_: &io::Error) -> bool {
        false
    }

    pub fn send(socket: &UdpSocket, datagrams: &[(SocketAddr, Vec<u8>)], _segmenting: bool) -> io::Result<usize> {
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

    async fn on_loopback() -> Port {
        Port::bind("127.0.0.1:0".parse().unwrap()).await.unwrap()
    }

    /// What `port` receives, until it has at least `count` datagrams.
    async fn receive_at_least(port: &Port, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut received = Received::new();
        let mut got = Vec::new();
        while got.len() < count {
            port.receive(&mut received).await.unwrap();
            got.extend(received.iter().map(|(s, d)| (s, d.to_vec())));
        }
        got
    }

    /// A batch goes out and comes back whole, each datagram to its own destination and from its
    /// own source; a datagram to nowhere does not stop the others.
    #[tokio::test]
    async fn a_batch_of_datagrams_is_sent_and_received_whole() {
        let (port, first, second) = (on_loopback().await, on_loopback().await, on_loopback().await);
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

        let got = receive_at_least(&first, 100).await;
        let me = port.local_addr().unwrap();
        let expected: Vec<(SocketAddr, Vec<u8>)> =
            (0..150u8).filter(|i| i % 3 != 0).map(|i| (me, vec![i; 100 + usize::from(i)])).collect();
        assert_eq!(got, expected);
    }

    /// The packets of a frame to one viewer (one size, a shorter last) go as one message where the
    /// kernel segments, and arrive as the datagrams they were, in order, among others.
    #[tokio::test]
    async fn runs_to_one_destination_arrive_as_the_datagrams_they_were() {
        let (port, viewer, other) = (on_loopback().await, on_loopback().await, on_loopback().await);
        let (to, elsewhere) = (viewer.local_addr().unwrap(), other.local_addr().unwrap());
        let mut datagrams: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for frame in 0..6u8 {
            // Frames of 1 to 70 packets: more than one message carries.
            for packet in 0..(1 + usize::from(frame) * 14) {
                datagrams.push((to, vec![frame.wrapping_add(packet as u8); 1_200]));
            }
            datagrams.push((to, vec![frame; 300 + usize::from(frame)]));
            datagrams.push((elsewhere, vec![frame; 1_200]));
        }
        port.socket.writable().await.unwrap();
        let sent = port.send(&datagrams);
        assert_eq!((sent.datagrams, sent.dropped), (datagrams.len(), 0));
        #[cfg(target_os = "linux")]
        assert!(port.segmenting.load(Ordering::Relaxed), "this kernel segments, and the loopback device took it");

        let expected: Vec<Vec<u8>> = datagrams.iter().filter(|(d, _)| *d == to).map(|(_, d)| d.clone()).collect();
        let got: Vec<Vec<u8>> = receive_at_least(&viewer, expected.len()).await.into_iter().map(|(_, d)| d).collect();
        assert_eq!(got, expected);
    }
}
