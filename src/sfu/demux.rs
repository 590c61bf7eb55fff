//! Which call a datagram at the media port is for, before any call's router sees it: by its
//! source address once a call has taken that address, and before that by the ICE user name of a
//! STUN request (RFC 8445: `<our ufrag>:<theirs>`), whose first part the router chose for that
//! participant's connection ([`super::CallRouter::ufrag`]). A datagram of nobody is dropped here,
//! at the cost of two map lookups, whatever the number of calls.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

use str0m::net::Protocol;

use crate::stun;

/// A datagram for a call, as its task takes it: how it came (the media port, or a TCP
/// connection of the web port), and from where.
pub type Datagram = (Protocol, SocketAddr, Vec<u8>);

/// Addresses one connection may take: its ICE candidates (host, reflexive, relayed, on IPv4 and
/// IPv6) are a handful. More would let one participant grow this map with forged sources.
pub const ADDRESSES_PER_CONNECTION: usize = 8;

/// The calls of the media port, by user name and by source address.
pub struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    /// Each address's call, and the connection (its ufrag) that took it.
    by_source: HashMap<SocketAddr, (K, String)>,
}

impl<K> Default for Demux<K> {
    fn default() -> Self {
        Self { by_ufrag: HashMap::new(), by_source: HashMap::new() }
    }
}

impl<K: Clone + Eq + Hash> Demux<K> {
    /// A participant of `call` has a connection whose ICE user name starts with `ufrag`.
    pub fn register(&mut self, ufrag: &str, call: K) {
        self.by_ufrag.insert(ufrag.to_owned(), call);
    }

    /// A connection is gone: its user name and the addresses it took are forgotten.
    pub fn unregister(&mut self, ufrag: &str) {
        self.by_ufrag.remove(ufrag);
        self.by_source.retain(|_, (_, taker)| taker != ufrag);
    }

    /// A call is over: everything of it is forgotten.
    pub fn forget_call(&mut self, call: &K) {
        self.by_ufrag.retain(|_, owner| owner != call);
        self.by_source.retain(|_, (owner, _)| owner != call);
    }

    /// The call a datagram from `source` is for, if any. A STUN request naming a connection
    /// gives that connection's call the address, up to [`ADDRESSES_PER_CONNECTION`].
    pub fn route(&mut self, source: SocketAddr, datagram: &[u8]) -> Option<K> {
        if let Some((call, _)) = self.by_source.get(&source) {
            return Some(call.clone());
        }
        let ufrag = stun_ufrag(datagram)?;
        let call = self.by_ufrag.get(ufrag)?.clone();
        let taken = self.by_source.values().filter(|(_, taker)| taker == ufrag).count();
        if taken < ADDRESSES_PER_CONNECTION {
            self.by_source.insert(source, (call.clone(), ufrag.to_owned()));
        }
        Some(call)
    }

    /// The call a STUN request names by its user name, without giving it the source address: a
    /// TCP connection's first frame ([`super::tcp`]), which binds the whole connection.
    pub fn named(&self, datagram: &[u8]) -> Option<K> {
        self.by_ufrag.get(stun_ufrag(datagram)?).cloned()
    }

    pub fn addresses(&self) -> usize {
        self.by_source.len()
    }
}

/// Of a STUN message with a USERNAME attribute, the part before the colon: the receiver's ufrag.
pub fn stun_ufrag(datagram: &[u8]) -> Option<&str> {
    let (_, username) = stun::attribute(datagram, stun::USERNAME)?;
    let username = std::str::from_utf8(username).ok()?;
    username.split_once(':').map(|(ours, _)| ours).filter(|ours| !ours.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stun::binding_request as stun;

    #[test]
    fn the_user_name_is_read_past_other_attributes_and_junk_is_nobody_s() {
        let priority: &[u8] = &[0, 0, 1, 0];
        let request =
            stun(&[(0x0024, priority), (0x8029, &[1; 8]), (stun::USERNAME, b"abcd:efgh"), (0x0008, &[0; 20])]);
        assert_eq!(stun_ufrag(&request), Some("abcd"));
        assert_eq!(stun_ufrag(&stun(&[(stun::USERNAME, b"odd")])), None, "no colon");
        assert_eq!(stun_ufrag(&stun(&[(stun::USERNAME, b":efgh")])), None, "no ufrag of ours");
        assert_eq!(stun_ufrag(&stun(&[(0x0024, priority)])), None, "no user name");
        let mut truncated = request.clone();
        truncated.truncate(30);
        assert_eq!(stun_ufrag(&truncated), None);
        let mut lying = stun(&[(stun::USERNAME, b"abcd:efgh")]);
        lying[stun::HEADER + 3] = 200;
        assert_eq!(stun_ufrag(&lying), None, "an attribute longer than the message");
        for junk in [&b""[..], &[0x80, 0x60, 0, 1], &[0x16; 40], &[0; 20]] {
            assert_eq!(stun_ufrag(junk), None);
        }
    }

    #[test]
    fn a_call_takes_the_address_its_stun_came_from_and_lets_it_go_with_the_connection() {
        let mut demux = Demux::default();
        demux.register("aaaa", "hall");
        demux.register("bbbb", "hall");
        demux.register("cccc", "kitchen");
        let (one, two, stranger): (SocketAddr, SocketAddr, SocketAddr) = (
            "198.51.100.1:5000".parse().unwrap(),
            "198.51.100.2:5000".parse().unwrap(),
            "203.0.113.9:1".parse().unwrap(),
        );
        let media = [0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert_eq!(demux.route(one, &media), None, "media before ICE is nobody's");
        assert_eq!(demux.route(one, &stun(&[(stun::USERNAME, b"aaaa:x")])), Some("hall"));
        assert_eq!(demux.route(one, &media), Some("hall"), "then the address is the call's");
        assert_eq!(demux.route(two, &stun(&[(stun::USERNAME, b"cccc:x")])), Some("kitchen"));
        assert_eq!(demux.route(stranger, &stun(&[(stun::USERNAME, b"zzzz:x")])), None);
        demux.unregister("bbbb");
        assert_eq!(demux.route(one, &media), Some("hall"), "the address is aaaa's");
        demux.unregister("aaaa");
        assert_eq!(demux.route(one, &media), None);
        demux.forget_call(&"kitchen");
        assert_eq!(demux.route(two, &media), None);
        assert_eq!(demux.addresses(), 0);
    }

    #[test]
    fn one_connection_takes_a_handful_of_addresses_however_many_sources_it_forges() {
        let mut demux = Demux::default();
        demux.register("aaaa", "hall");
        for port in 1..=1000u16 {
            let source = SocketAddr::from(([198, 51, 100, 1], port));
            assert_eq!(demux.route(source, &stun(&[(stun::USERNAME, b"aaaa:x")])), Some("hall"));
        }
        assert_eq!(demux.addresses(), ADDRESSES_PER_CONNECTION);
    }
}
