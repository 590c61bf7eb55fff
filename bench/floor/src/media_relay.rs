//! The media benchmark's floor: a UDP relay that receives each datagram once and sends it to
//! every subscriber of its stream, and does nothing else (no WebRTC, no encryption, no feedback).
//! What a media server costs beyond this is what WebRTC and its own choices cost.
//!
//! Like Noom's media port, it sends a datagram's copies with one `sendmmsg`: the floor is the
//! least work, system calls included.
//!
//! A datagram starts with its kind (`S`: its sender subscribes; anything else: media), the
//! publisher (4 bytes) and the layer (1): the stream it subscribes to or belongs to.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use socket2::SockAddr;

pub fn run(host: &str) -> std::io::Result<()> {
    let socket = UdpSocket::bind((host, 0))?;
    // Every stream comes in on this one socket: a keyframe of each at once overflows the
    // kernel's default buffer (asked, not insisted on: the kernel's own limits apply).
    let shared = socket2::SockRef::from(&socket);
    let _ = shared.set_recv_buffer_size(4 << 20);
    let _ = shared.set_send_buffer_size(4 << 20);
    println!("noom-floor media relay listening on udp://{}", socket.local_addr()?);
    let mut subscribers: HashMap<[u8; 5], Vec<SockAddr>> = HashMap::new();
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        let Some(stream) = buf.get(1..6).filter(|_| n >= 6).and_then(|s| <[u8; 5]>::try_from(s).ok()) else {
            continue;
        };
        if buf[0] == b'S' {
            let list = subscribers.entry(stream).or_default();
            let from = SockAddr::from(from);
            if !list.contains(&from) {
                list.push(from);
            }
        } else if let Some(list) = subscribers.get(&stream) {
            send_to_all(&socket, &buf[..n], list);
        }
    }
}

/// One datagram to each of `to`, in as few system calls as the kernel allows; one it refuses is
/// lost, as on a network.
fn send_to_all(socket: &UdpSocket, datagram: &[u8], to: &[SockAddr]) {
    let mut part = libc::iovec { iov_base: datagram.as_ptr() as *mut libc::c_void, iov_len: datagram.len() };
    let mut messages: Vec<libc::mmsghdr> = to
        .iter()
        .map(|address| {
            // SAFETY: an all-zero mmsghdr is a valid empty one.
            let mut message: libc::mmsghdr = unsafe { std::mem::zeroed() };
            message.msg_hdr.msg_name = address.as_ptr() as *mut libc::c_void;
            message.msg_hdr.msg_namelen = address.len();
            message.msg_hdr.msg_iov = &mut part;
            message.msg_hdr.msg_iovlen = 1;
            message
        })
        .collect();
    let mut rest = &mut messages[..];
    while !rest.is_empty() {
        // SAFETY: each message points at an address of `to` and at `part`, which outlive the
        // call; the kernel only reads them.
        let sent = unsafe { libc::sendmmsg(socket.as_raw_fd(), rest.as_mut_ptr(), rest.len() as u32, 0) };
        rest = &mut rest[(sent.max(0) as usize).max(1)..];
    }
}
