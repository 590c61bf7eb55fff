//! The media benchmark's floor: a UDP relay that receives each datagram once and sends it to
//! every subscriber of its stream, and does nothing else (no WebRTC, no encryption, no feedback).
//! What a media server costs beyond this is what WebRTC and its own choices cost.
//!
//! A datagram starts with its kind (`S`: its sender subscribes; anything else: media), the
//! publisher (4 bytes) and the layer (1): the stream it subscribes to or belongs to.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

pub fn run(host: &str) -> std::io::Result<()> {
    let socket = UdpSocket::bind((host, 0))?;
    // Every stream comes in on this one socket: a keyframe of each at once overflows the
    // kernel's default buffer.
    for option in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        let bytes: libc::c_int = 4 << 20;
        // SAFETY: setsockopt reads an int of the size given from the pointer given.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                option,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    println!("noom-floor media relay listening on udp://{}", socket.local_addr()?);
    let mut subscribers: HashMap<[u8; 5], Vec<SocketAddr>> = HashMap::new();
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        let Some(stream) = buf.get(1..6).filter(|_| n >= 6).and_then(|s| <[u8; 5]>::try_from(s).ok()) else {
            continue;
        };
        if buf[0] == b'S' {
            let list = subscribers.entry(stream).or_default();
            if !list.contains(&from) {
                list.push(from);
            }
        } else if let Some(list) = subscribers.get(&stream) {
            for to in list {
                // A datagram the kernel does not take now is lost, as on a network.
                let _ = socket.send_to(&buf[..n], to);
            }
        }
    }
}
