//! Where the relay may send, and whom it may hear: anywhere on the internet, but not this
//! server's own networks (its own addresses, loopback, the private ranges, link-local with the
//! cloud metadata address 169.254.169.254, and their IPv6 kin) unless the operator allows them
//! (`--turn-allowed-peers`), lest a browser use the relay to reach services behind the firewall.
//! The relay's own open ports are peers too: two browsers that both relay through this server
//! reach each other relay to relay. So is the media server's UDP port: a browser that may only
//! relay (`--ice-transport-policy relay`) reaches the media server through it.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use crate::admission::Networks;

#[derive(Debug, Clone)]
pub struct Peers {
    allowed: Networks,
    /// The server's own addresses (those the relay ports are reached at among them).
    own: Vec<IpAddr>,
    /// The media server's UDP port, once it runs (bound by it: no other program is there).
    media_port: OnceLock<u16>,
}

impl Peers {
    pub fn new(allowed: Networks, own: Vec<IpAddr>) -> Self {
        Self { allowed, own, media_port: OnceLock::new() }
    }

    /// The media server runs on this UDP port of the server's: the relay may reach it.
    pub fn allow_media_port(&self, port: u16) {
        let _ = self.media_port.set(port);
    }

    /// Whether the relay may send to `peer` and hear from it; `relay_port`: whether a relay port
    /// of this server is open at `peer`'s port number (no other program can then be there).
    pub fn allows(&self, peer: SocketAddr, relay_port: bool) -> bool {
        let ip = peer.ip().to_canonical();
        if self.allowed.contains(ip) {
            return true;
        }
        let own = ip.is_loopback() || self.own.iter().any(|own| own.to_canonical() == ip);
        if own {
            return relay_port || self.media_port.get() == Some(&peer.port());
        }
        !internal(ip)
    }
}

/// An address of a network the server itself may be on, or no one's.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_broadcast()
                || ip.is_multicast()
                // "This network", and the carrier-grade NAT range (RFC 6598).
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            ip.is_unspecified()
                || ip.is_loopback()
                || ip.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(allowed: &[&str]) -> Peers {
        let allowed = Networks::parse(&allowed.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let peers = Peers::new(allowed, vec!["10.0.0.5".parse().unwrap()]);
        peers.allow_media_port(4000);
        peers
    }

    #[test]
    fn the_relay_sends_to_the_internet_and_not_to_the_servers_own_networks() {
        let peers = peers(&[]);
        for public in ["203.0.113.9:5000", "[2001:db8::1]:5000", "8.8.8.8:53"] {
            assert!(peers.allows(public.parse().unwrap(), false), "{public}");
        }
        for internal in [
            "127.0.0.1:3000",
            "10.1.2.3:22",
            "172.16.0.1:80",
            "192.168.1.1:80",
            "169.254.169.254:80",
            "100.64.0.1:80",
            "0.0.0.0:80",
            "224.0.0.1:5000",
            "255.255.255.255:5000",
            "[::1]:3000",
            "[fd00::1]:80",
            "[fe80::1]:80",
            "[::ffff:127.0.0.1]:3000",
            "[::ffff:169.254.169.254]:80",
        ] {
            assert!(!peers.allows(internal.parse().unwrap(), false), "{internal}");
        }
    }

    #[test]
    fn its_own_relay_ports_and_the_networks_allowed_are_peers_too() {
        let peers = peers(&["192.168.7.0/24"]);
        assert!(peers.allows("10.0.0.5:50000".parse().unwrap(), true), "another allocation of this server");
        assert!(peers.allows("127.0.0.1:50000".parse().unwrap(), true), "reached over loopback");
        assert!(!peers.allows("10.0.0.5:22".parse().unwrap(), false), "but no other port of it");
        assert!(peers.allows("10.0.0.5:4000".parse().unwrap(), false), "but the media server's");
        assert!(peers.allows("127.0.0.1:4000".parse().unwrap(), false), "reached over loopback too");
        let public_server = Peers::new(Networks::default(), vec!["203.0.113.7".parse().unwrap()]);
        assert!(
            !public_server.allows("203.0.113.7:22".parse().unwrap(), false),
            "nor the server's own services on a public address"
        );
        assert!(public_server.allows("203.0.113.8:22".parse().unwrap(), false));
        assert!(!peers.allows("10.0.0.6:50000".parse().unwrap(), true), "nor that port of another machine");
        assert!(peers.allows("192.168.7.20:5000".parse().unwrap(), false));
        assert!(!peers.allows("192.168.8.20:5000".parse().unwrap(), false));
    }
}
