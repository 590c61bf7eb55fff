//! The built-in TURN server (`--turn`): relays the media of calls browser to browser (two
//! people, a mesh, the seed's front end) between browsers that cannot reach each other, as
//! coturn would, with nothing else to install. Its protocol is `turn-server-proto`'s, sans-IO;
//! this module does the IO and decides who may use it.
//!
//! - [`credentials`]: the time-limited credentials Noom hands out ([`crate::ice`]), checked here.
//! - [`peers`]: where the relay may send: not to the server's own networks.
//! - `relay`: the IO: a task per listening transport (UDP, TCP) owning its protocol state, and
//!   the relay ports it opens.

pub mod credentials;
pub mod peers;
mod relay;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use base64::Engine as _;
use parking_lot::Mutex;

use crate::admission::Networks;
use crate::config::Config;
pub use relay::{ALLOCATIONS_PER_USER, Streams};

/// Starts the TURN server if `--turn` asks for it, and has the ICE servers handed to browsers
/// name it: its UDP and TCP URLs at the server's public address, with credentials made from
/// `--turn-secret` (or a secret made now, when none is given). With HTTPS, TURN over TLS on the
/// web port (`web_port`) too, under the name the certificate holds: what is returned takes those
/// connections, off the web port's demultiplexer ([`crate::connection`]).
pub async fn start(config: &mut Config, web_port: u16) -> anyhow::Result<Option<Streams>> {
    if !config.turn {
        return Ok(None);
    }
    let relay_ports = config.turn_relay_ports().map_err(anyhow::Error::msg)?;
    let allowed = Networks::parse(&config.turn_allowed_peers).map_err(anyhow::Error::msg)?;
    let secret = match config.turn_secret.clone().filter(|s| !s.is_empty()) {
        Some(secret) => secret,
        None => {
            let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
            config.turn_secret = Some(secret.clone());
            secret
        }
    };
    let ips = crate::ice::public_addresses(config);
    let relay_ip = ips.iter().copied().find(IpAddr::is_ipv4).unwrap_or(ips[0]);
    let port = config.turn_port;
    let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
    let udp =
        tokio::net::UdpSocket::bind(bind).await.with_context(|| format!("--turn-port: cannot bind udp {bind}"))?;
    let tcp = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("--turn-port: cannot listen on tcp {bind}"))?;
    let listen = SocketAddr::new(relay_ip, port);
    let media_port = (config.calls != crate::config::Calls::Mesh).then(|| config.media_port.unwrap_or(web_port));
    // The server's own addresses are its own network, whatever their range.
    let own = [ips.clone(), vec![crate::ice::own_address()]].concat();
    let _ = config.turn_relays.0.own.set(own.clone());
    let settings = Arc::new(relay::Settings {
        secret,
        realm: "noom".into(),
        peers: peers::Peers::new(allowed, own.clone(), media_port),
        relay_ip,
        relay_ports: relay_ports.clone(),
        open: config.turn_relays.clone(),
    });
    relay::serve_udp(udp, listen, settings.clone());
    relay::serve_tcp(tcp, listen, settings.clone());
    let host = match relay_ip {
        IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    config.turn_urls.push(format!("turn:{host}:{port}?transport=udp"));
    config.turn_urls.push(format!("turn:{host}:{port}?transport=tcp"));
    println!(
        "noom TURN on udp and tcp port {port}, relaying from udp ports {}-{}, reached at {relay_ip}",
        relay_ports.start(),
        relay_ports.end()
    );
    if !config.tls() {
        return Ok(None);
    }
    let Some(name) = crate::tls::served_name(config) else {
        println!("noom TURN over TLS is off: give --public-url the HTTPS name the certificate is for");
        return Ok(None);
    };
    // Last: the browser tries it after the others, as it is the slowest way through.
    config.turn_urls.push(format!("turns:{name}:{web_port}?transport=tcp"));
    println!("noom TURN over TLS on the web port, reached at {name}:{web_port}");
    Ok(Some(Streams::new(SocketAddr::new(relay_ip, web_port), settings)))
}

/// The relay ports the built-in TURN server has open now (bound at every address of the
/// server's). Its listeners share them (relay ports are each other's peers), and so does the
/// admin panel, which tells a browser relayed through them from one that came direct.
#[derive(Debug, Clone, Default)]
pub struct RelayPorts(Arc<RelayPortsState>);

#[derive(Debug, Default)]
struct RelayPortsState {
    open: Mutex<HashSet<u16>>,
    /// The server's own addresses, once the TURN server runs.
    own: OnceLock<Vec<IpAddr>>,
}

impl RelayPorts {
    fn opened(&self, port: u16) {
        self.0.open.lock().insert(port);
    }

    fn closed(&self, port: u16) {
        self.0.open.lock().remove(&port);
    }

    fn is_open(&self, port: u16) -> bool {
        self.0.open.lock().contains(&port)
    }

    /// Whether datagrams from `addr` come from one of the relay ports: an open one, at an
    /// address of this server.
    pub fn holds(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        let own = ip.is_loopback() || self.0.own.get().is_some_and(|own| own.iter().any(|o| o.to_canonical() == ip));
        own && self.is_open(addr.port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relay_port_is_an_open_one_at_an_address_of_the_servers() {
        let relays = RelayPorts::default();
        relays.0.own.set(vec!["192.0.2.2".parse().unwrap()]).unwrap();
        relays.opened(50_000);
        assert!(relays.holds("192.0.2.2:50000".parse().unwrap()));
        assert!(relays.holds("127.0.0.1:50000".parse().unwrap()), "bound at every address");
        assert!(!relays.holds("198.51.100.7:50000".parse().unwrap()), "another machine's port");
        assert!(!relays.holds("192.0.2.2:50001".parse().unwrap()), "not open");
        relays.closed(50_000);
        assert!(!relays.holds("192.0.2.2:50000".parse().unwrap()), "closed since");
    }
}
