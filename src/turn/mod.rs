//! The built-in TURN server (`--turn`): relays the media of calls browser to browser (two
//! people, a mesh, the seed's front end) between browsers that cannot reach each other, as
//! coturn would, with nothing else to install. Its protocol is `turn-server-proto`'s, sans-IO;
//! this module does the IO and decides who may use it.
//!
//! - [`credentials`]: the time-limited credentials Noom hands out ([`crate::ice`]), checked here.
//! - [`peers`]: where the relay may send: not to the server's own networks; and the relay ports
//!   open now.
//! - `relay`: the IO: a task per listening transport (UDP, TCP) owning its protocol state, and
//!   the relay ports it opens.

pub mod credentials;
pub mod peers;
mod relay;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine as _;

use crate::admission::Networks;
use crate::config::Config;
pub use peers::RelayPorts;
pub use relay::{ALLOCATIONS_PER_USER, Streams};

/// The built-in TURN server, running.
pub struct Turn {
    /// Takes TURN over TLS off the web port's demultiplexer ([`crate::connection`]), with HTTPS.
    pub over_tls: Option<Streams>,
    /// Its relay ports open now.
    pub relays: RelayPorts,
    settings: Arc<relay::Settings>,
}

impl Turn {
    /// The media server runs on this UDP port: the relay may reach it although it is the
    /// server's own, so that a browser that may only relay joins calls through it.
    pub fn reach_media_port(&self, port: u16) {
        self.settings.peers.allow_media_port(port);
    }
}

/// Starts the TURN server if `--turn` asks for it, and has the ICE servers handed to browsers
/// name it: its UDP and TCP URLs at the server's public address, with credentials made from
/// `--turn-secret` (or a secret made now, when none is given). With HTTPS, TURN over TLS on the
/// web port (`web_port`) too, under the name the certificate holds.
pub async fn start(config: &mut Config, web_port: u16) -> anyhow::Result<Option<Turn>> {
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
    // The server's own addresses are its own network, whatever their range.
    let own = [ips.clone(), vec![crate::ice::own_address()]].concat();
    let relays = RelayPorts::new(own);
    let settings = Arc::new(relay::Settings {
        secret,
        realm: "noom".into(),
        peers: peers::Peers::new(allowed, relays.clone()),
        relay_ip,
        relay_ports: relay_ports.clone(),
        open: relays.clone(),
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
    let over_tls = if !config.tls() {
        None
    } else if let Some(name) = crate::tls::served_name(config) {
        // Last: the browser tries it after the others, as it is the slowest way through.
        config.turn_urls.push(format!("turns:{name}:{web_port}?transport=tcp"));
        println!("noom TURN over TLS on the web port, reached at {name}:{web_port}");
        Some(Streams::new(SocketAddr::new(relay_ip, web_port), settings.clone()))
    } else {
        println!("noom TURN over TLS is off: give --public-url the HTTPS name the certificate is for");
        None
    };
    Ok(Some(Turn { over_tls, relays, settings }))
}
