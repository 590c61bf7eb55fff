//! Where the relay may send, and whom it may hear: anywhere on the internet, but not this
//! server's own networks (its own addresses, loopback, the private ranges, link-local with the
//! cloud metadata address 169.254.169.254, and their IPv6 kin) unless the operator allows them
//! (`--turn-allowed-peers`), lest a browser use the relay to reach services behind the firewall.
//! The relay's own open ports are peers too: two browsers that both relay through this server
//! reach each other relay to relay. So is the media server's UDP port: a browser that may only
//! relay (`--ice-transport-policy relay`) reaches the media server through it.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::admission::Networks;

/// The relay ports the built-in TURN server has open now, bound at every address of the
/// server's. Its listeners share them (relay ports are each other's peers), and so does the
/// admin panel, which tells a browser relayed through them from one that came direct.
#[derive(Debug, Clone)]
pub struct RelayPorts(Arc<RelayPortsState>);

#[derive(Debug)]
struct RelayPortsState {
    open: Mutex<HashSet<u16>>,
    /// The server's own addresses.
    own: Vec<IpAddr>,
}

impl RelayPorts {
    pub fn new(own: Vec<IpAddr>) -> Self {
        Self(Arc::new(RelayPortsState { open: Mutex::default(), own }))
    }

    pub(super) fn opened(&self, port: u16) {
        self.0.open.lock().insert(port);
    }

    pub(super) fn closed(&self, port: u16) {
        self.0.open.lock().remove(&port);
    }

    fn is_open(&self, port: u16) -> bool {
        self.0.open.lock().contains(&port)
    }

    /// Whether `ip` is one of this server's addresses (loopback included).
    fn is_own(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_loopback() || self.0.own.iter().any(|own| own.to_canonical() == ip)
    }

    /// Whether datagrams from `addr` come from one of the relay ports: an open one, at an
    /// address of this server.
    pub fn holds(&self, addr: SocketAddr) -> bool {
        self.is_own(addr.ip()) && self.is_open(addr.port())
    }
}

#[derive(Debug, Clone)]
pub struct Peers {
    allowed: Networks,
    /// The server's own addresses, and the relay ports open at them.
    relays: RelayPorts,
    /// The media server's UDP port, once it runs (bound by it: no other program is there).
    media_port: OnceLock<u16>,
}

impl Peers {
    pub fn new(allowed: Networks, relays: RelayPorts) -> Self {
        Self { allowed, relays, media_port: OnceLock::new() }
    }

    /// The media server runs on this UDP port of the server's: the relay may reach it.
    pub fn allow_media_port(&self, port: u16) {
        let _ = self.media_port.set(port);
    }

    /// Whether the relay may send to `peer` and hear from it. Of the server's own ports, only a
    /// relay port or the media server's (no other program can then be there).
    pub fn allows(&self, peer: SocketAddr) -> bool {
        let ip = peer.ip().to_canonical();
        if self.allowed.contains(ip) {
            return true;
        }
        if self.relays.is_own(ip) {
            return self.relays.is_open(peer.port()) || self.media_port.get() == Some(&peer.port());
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
        let relays = RelayPorts::new(vec!["10.0.0.5".parse().unwrap()]);
        relays.opened(50_000);
        let peers = Peers::new(allowed, relays);
        peers.allow_media_port(4000);
        peers
    }

    #[test]
    fn the_relay_sends_to_the_internet_and_not_to_the_servers_own_networks() {
        let peers = peers(&[]);
        for public in ["203.0.113.9:5000", "[2001:db8::1]:5000", "8.8.8.8:53"] {
            assert!(peers.allows(public.parse().unwrap()), "{public}");
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
            assert!(!peers.allows(internal.parse().unwrap()), "{internal}");
        }
    }

    #[test]
    fn a_relay_port_is_an_open_one_at_an_address_of_the_servers() {
        let relays = RelayPorts::new(vec!["192.0.2.2".parse().unwrap()]);
        relays.opened(50_000);
        assert!(relays.holds("192.0.2.2:50000".parse().unwrap()));
        assert!(relays.holds("127.0.0.1:50000".parse().unwrap()), "bound at every address");
        assert!(!relays.holds("198.51.100.7:50000".parse().unwrap()), "another machine's port");
        assert!(!relays.holds("192.0.2.2:50001".parse().unwrap()), "not open");
        relays.closed(50_000);
        assert!(!relays.holds("192.0.2.2:50000".parse().unwrap()), "closed since");
    }

    #[test]
    fn its_own_relay_ports_and_the_networks_allowed_are_peers_too() {
        let peers = peers(&["192.168.7.0/24"]);
        assert!(peers.allows("10.0.0.5:50000".parse().unwrap()), "another allocation of this server");
        assert!(peers.allows("127.0.0.1:50000".parse().unwrap()), "reached over loopback");
        assert!(!peers.allows("10.0.0.5:22".parse().unwrap()), "but no other port of it");
        assert!(peers.allows("10.0.0.5:4000".parse().unwrap()), "but the media server's");
        assert!(peers.allows("127.0.0.1:4000".parse().unwrap()), "reached over loopback too");
        let public_server = Peers::new(Networks::default(), RelayPorts::new(vec!["203.0.113.7".parse().unwrap()]));
        assert!(
            !public_server.allows("203.0.113.7:22".parse().unwrap()),
            "nor the server's own services on a public address"
        );
        assert!(public_server.allows("203.0.113.8:22".parse().unwrap()));
        assert!(!peers.allows("10.0.0.6:50000".parse().unwrap()), "nor that port of another machine");
        assert!(peers.allows("192.168.7.20:5000".parse().unwrap()));
        assert!(!peers.allows("192.168.8.20:5000".parse().unwrap()));
    }
}
