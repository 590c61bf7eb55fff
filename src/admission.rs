//! Who may open a connection: the client's address (behind proxies this server trusts), and per
//! address, a bound on connections open at once and on new connections a second. One address
//! flooding the server with connections is refused before it costs more than a request; everyone
//! else is untouched.
//!
//! An IPv6 client counts by its network ([`address_key`]): one home or phone holds a whole /64,
//! so counting single IPv6 addresses would limit nobody.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use parking_lot::Mutex;

use crate::ratelimit::TokenBucket;

/// New connections one address may open at once, in seconds of its sustained rate.
const BURST_SECONDS: f64 = 5.0;
/// Addresses with nothing open are forgotten once their rate has recovered; checked this often.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Connections open at once; 0: no limit.
    pub open: u32,
    /// New connections a second, sustained; 0: no limit.
    pub rate: f64,
    /// Leading bits of an IPv6 address that make one client (`--ipv6-prefix`).
    pub ipv6_prefix: u8,
}

/// What per-address limits count by: an IPv4 address, or the network of the first `ipv6_prefix`
/// bits of an IPv6 address (an IPv4 address mapped into IPv6 counts as IPv4).
pub fn address_key(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & v6_mask(ipv6_prefix)).into()),
        v4 => v4,
    }
}

/// Why a connection was refused, as its answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyOpen,
    TooFast,
}

impl Refusal {
    pub const ALL: [Refusal; 2] = [Refusal::TooManyOpen, Refusal::TooFast];

    /// As `/metrics` labels it.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::TooManyOpen => "too_many_open",
            Refusal::TooFast => "too_fast",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::TooManyOpen => "too many connections from your address",
            Refusal::TooFast => "too many new connections from your address; retry in a few seconds",
        }
    }
}

struct Address {
    /// Socket.IO sessions and `/ws` connections open.
    open: u32,
    /// TCP connections open, whatever they carry (counted only for clients that are not trusted
    /// proxies: a proxy's connections carry many clients).
    connections: u32,
    new: Option<TokenBucket>,
}

/// A TCP connection's place in its address's count; given back when dropped.
pub struct ConnectionSlot {
    admission: Arc<Admission>,
    key: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Some(address) = self.admission.addresses.lock().get_mut(&self.key) {
            address.connections = address.connections.saturating_sub(1);
        }
    }
}

pub struct Admission {
    limits: Limits,
    addresses: Mutex<HashMap<IpAddr, Address>>,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Self { limits, addresses: Mutex::new(HashMap::new()) }
    }

    /// Whether `ip` may start a new connection at `now`; counts it against the rate.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        if self.limits.open == 0 && self.limits.rate <= 0.0 {
            return Ok(());
        }
        let mut addresses = self.addresses.lock();
        let address = addresses.entry(address_key(ip, self.limits.ipv6_prefix)).or_insert_with(|| self.address(now));
        if self.limits.open > 0 && address.open >= self.limits.open {
            return Err(Refusal::TooManyOpen);
        }
        match address.new.as_mut().map(|bucket| bucket.try_take_at(now)) {
            Some(false) => Err(Refusal::TooFast),
            _ => Ok(()),
        }
    }

    fn bucket(&self, now: Instant) -> Option<TokenBucket> {
        (self.limits.rate > 0.0).then(|| {
            let burst = (self.limits.rate * BURST_SECONDS).ceil().max(1.0) as u32;
            TokenBucket::new_at(burst, self.limits.rate, now)
        })
    }

    /// A connection from `ip` is open; false when that is one too many (requests admitted at the
    /// same moment may all have passed [`Admission::admit`]): the caller closes it again.
    pub fn opened(&self, ip: IpAddr, now: Instant) -> bool {
        let mut addresses = self.addresses.lock();
        let key = address_key(ip, self.limits.ipv6_prefix);
        let address = addresses.entry(key).or_insert_with(|| self.address(now));
        address.open += 1;
        self.limits.open == 0 || address.open <= self.limits.open
    }

    /// A TCP connection from `ip` is accepted: its place, or none when its address has as many
    /// open as it may (the caller closes it at once).
    pub fn connection_opened(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Option<ConnectionSlot> {
        let key = address_key(ip, self.limits.ipv6_prefix);
        let mut addresses = self.addresses.lock();
        let address = addresses.entry(key).or_insert_with(|| self.address(now));
        if self.limits.open > 0 && address.connections >= self.limits.open {
            return None;
        }
        address.connections += 1;
        Some(ConnectionSlot { admission: self.clone(), key })
    }

    fn address(&self, now: Instant) -> Address {
        Address { open: 0, connections: 0, new: self.bucket(now) }
    }

    pub fn closed(&self, ip: IpAddr) {
        if let Some(address) = self.addresses.lock().get_mut(&address_key(ip, self.limits.ipv6_prefix)) {
            address.open = address.open.saturating_sub(1);
        }
    }

    /// Forgets addresses with nothing open whose rate has recovered, so that the table holds
    /// only addresses that matter now.
    pub fn sweep(&self, now: Instant) {
        self.addresses
            .lock()
            .retain(|_, a| a.open > 0 || a.connections > 0 || a.new.as_ref().is_some_and(|b| !b.is_full_at(now)));
    }

    pub fn tracked(&self) -> usize {
        self.addresses.lock().len()
    }
}

/// A list of proxies whose `X-Forwarded-For` is believed: addresses and networks (`10.0.0.0/8`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Networks);

/// Addresses and networks (`10.0.0.0/8`, `fd00::/8`), as an operator lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let (addr, bits) = entry.split_once('/').map_or((entry, None), |(a, b)| (a, Some(b)));
            let addr: IpAddr = addr.parse().map_err(|_| format!("{entry:?} is not an address or a network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => {
                    b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("{entry:?}: bad prefix length"))?
                }
            };
            nets.push((addr, bits));
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        Networks::parse(entries).map(Self)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
    /// in `X-Forwarded-For` that is not one (earlier entries are the client's to write).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            if headers.contains_key("x-forwarded-for") {
                warn_untrusted_proxy(peer);
            }
            return peer;
        }
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let hops: Vec<IpAddr> =
            forwarded.flat_map(|v| v.split(',')).filter_map(|hop| hop.trim().parse().ok()).collect();
        hops.into_iter().rev().find(|hop| !self.trusts(*hop)).unwrap_or(peer)
    }
}

/// Says once that a proxy's forwarded addresses were not believed: behind a proxy not listed in
/// `--trusted-proxies`, every client counts as the proxy's one address, and a few hundred people
/// reach its limits together. Once, since a client may send the header itself, as often as it likes.
fn warn_untrusted_proxy(peer: IpAddr) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            %peer,
            "X-Forwarded-For from an address not in --trusted-proxies: ignored, so every client behind it counts \
             as that one address; if it is your proxy or load balancer, add it to --trusted-proxies \
             (said once)"
        );
    }
}

/// The first `bits` bits of an IPv6 address (all of them past 128).
fn v6_mask(bits: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(bits.min(128))).unwrap_or(0)
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = ip.to_canonical();
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = v6_mask(bits);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn open_connections_are_bounded_per_address() {
        let admission = Admission::new(Limits { open: 2, rate: 0.0, ipv6_prefix: 64 });
        let now = Instant::now();
        for _ in 0..2 {
            assert_eq!(admission.admit(A, now), Ok(()));
            assert!(admission.opened(A, now));
        }
        assert_eq!(admission.admit(A, now), Err(Refusal::TooManyOpen));
        assert_eq!(admission.admit(B, now), Ok(()), "another address is not affected");
        assert!(!admission.opened(A, now), "one admitted at the same moment is one too many");
        admission.closed(A);
        admission.closed(A);
        assert_eq!(admission.admit(A, now), Ok(()));
    }

    #[test]
    fn new_connections_are_bounded_per_address_and_second() {
        let admission = Admission::new(Limits { open: 0, rate: 2.0, ipv6_prefix: 64 });
        let t0 = Instant::now();
        let admitted = (0..20).filter(|_| admission.admit(A, t0).is_ok()).count();
        assert_eq!(admitted, 10, "a burst of five seconds' worth");
        assert_eq!(admission.admit(A, t0), Err(Refusal::TooFast));
        assert_eq!(admission.admit(A, t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(admission.admit(B, t0), Ok(()));
    }

    #[test]
    fn quiet_addresses_are_forgotten() {
        let admission = Admission::new(Limits { open: 5, rate: 1.0, ipv6_prefix: 64 });
        let t0 = Instant::now();
        admission.admit(A, t0).unwrap();
        assert!(admission.opened(A, t0));
        admission.admit(B, t0).unwrap();
        admission.sweep(t0 + Duration::from_secs(60));
        assert_eq!(admission.tracked(), 1, "B never opened and recovered; A is open");
        admission.closed(A);
        admission.sweep(t0 + Duration::from_secs(120));
        assert_eq!(admission.tracked(), 0);
    }

    #[test]
    fn tcp_connections_are_bounded_per_address_apart_from_sessions() {
        let admission = Arc::new(Admission::new(Limits { open: 2, rate: 0.0, ipv6_prefix: 64 }));
        let now = Instant::now();
        let first = admission.connection_opened(A, now).expect("one");
        let _second = admission.connection_opened(A, now).expect("two");
        assert!(admission.connection_opened(A, now).is_none(), "a third is refused");
        assert!(admission.connection_opened(B, now).is_some(), "another address is not affected");
        assert_eq!(admission.admit(A, now), Ok(()), "sessions count apart");
        drop(first);
        assert!(admission.connection_opened(A, now).is_some(), "a closed connection gives its place back");
    }

    #[test]
    fn an_ipv6_client_counts_by_its_network() {
        let admission = Admission::new(Limits { open: 2, rate: 0.0, ipv6_prefix: 64 });
        let now = Instant::now();
        let host = |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, last));
        for last in 1..=2 {
            assert_eq!(admission.admit(host(last), now), Ok(()));
            assert!(admission.opened(host(last), now));
        }
        assert_eq!(admission.admit(host(3), now), Err(Refusal::TooManyOpen), "another address of the same /64");
        let next_network = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(admission.admit(next_network, now), Ok(()));
        admission.closed(host(7));
        assert_eq!(admission.admit(host(3), now), Ok(()), "any address of the network gives its place back");
        assert_eq!(address_key("::ffff:192.0.2.1".parse().unwrap(), 64), A, "a mapped IPv4 address is IPv4");
        assert_eq!(address_key(host(9), 128), host(9));
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let proxies = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into(), "::1".into()]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "203.0.113.9, 198.51.100.7, 10.1.2.3".parse().unwrap());
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(proxies.client(loopback, &headers), "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(proxies.client(A, &headers), A, "an untrusted peer's header is ignored");
        assert_eq!(proxies.client(loopback, &HeaderMap::new()), loopback);
        assert_eq!(
            proxies.client("::ffff:127.0.0.1".parse().unwrap(), &headers),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        for bad in ["nope", "10.0.0.0/33", "::1/129", "1.2.3.4/x"] {
            assert!(TrustedProxies::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
