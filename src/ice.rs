//! The ICE servers handed to browsers for their calls.
//!
//! STUN servers go out as configured. TURN servers get credentials that expire, made from a
//! secret shared with the TURN server (the "TURN REST API" scheme coturn enables with
//! `use-auth-secret`): the TURN server recomputes the password from the username, so Noom and
//! it never talk to each other, and a leaked credential dies on its own. The built-in TURN
//! server ([`crate::turn`]) takes the same credentials.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha1::Sha1;

use crate::config::Config;

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The ICE servers for `user` (a name for the TURN server's logs), with TURN credentials valid
/// until `now_secs + config.turn_ttl`.
pub fn servers_for(config: &Config, user: &str, now_secs: u64) -> Vec<IceServer> {
    let mut servers = Vec::with_capacity(2);
    let stun: Vec<String> = config.stun_urls().map(str::to_owned).collect();
    if !stun.is_empty() {
        servers.push(IceServer { urls: stun, username: None, credential: None });
    }
    let turn: Vec<String> = config.turn_urls().map(str::to_owned).collect();
    if let (false, Some(secret)) = (turn.is_empty(), config.turn_secret.as_deref()) {
        let username = format!("{}:{user}", now_secs + config.turn_ttl);
        let credential = turn_password(secret, &username);
        servers.push(IceServer { urls: turn, username: Some(username), credential: Some(credential) });
    }
    servers
}

/// The addresses of the TURN servers `--turn-urls` names by address (not by host name).
pub fn turn_server_ips(config: &Config) -> impl Iterator<Item = IpAddr> + '_ {
    config.turn_urls().filter_map(turn_url_ip).map(|ip| ip.to_canonical())
}

/// The address a `turn:` or `turns:` URL names, if it names one rather than a host name.
fn turn_url_ip(url: &str) -> Option<IpAddr> {
    let (_, rest) = url.split_once(':')?;
    let authority = rest.split('?').next()?;
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split(']').next()?.parse().ok();
    }
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    host.parse().ok()
}

/// The addresses browsers reach this server's media and relay ports at: `--media-address`, or
/// this host's own.
pub fn public_addresses(config: &Config) -> Vec<IpAddr> {
    if config.media_address.is_empty() { vec![own_address()] } else { config.media_address.clone() }
}

/// This host's address on its default route: what a browser elsewhere on the network reaches
/// it at. Connecting a UDP socket sends nothing; it only picks the route. Loopback when there is
/// no route (a machine offline), which serves a browser on the same machine.
pub fn own_address() -> IpAddr {
    let routed = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|socket| socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).map(|()| socket))
        .and_then(|socket| socket.local_addr());
    match routed {
        Ok(address) if !address.ip().is_unspecified() => address.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// `base64(HMAC-SHA1(secret, username))`, what coturn expects with `use-auth-secret`.
pub fn turn_password(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn turn_password_matches_the_rest_api_scheme() {
        // RFC 2202's second HMAC-SHA1 test case, base64-encoded.
        assert_eq!(turn_password("Jefe", "what do ya want for nothing?"), "7/zfauXrL6LSdBbV8YTfnCWafHk=");
    }

    #[test]
    fn servers_follow_the_configuration() {
        let config = Config::parse_from([
            "noom",
            "--stun-urls",
            "stun:a.example:3478",
            "--turn-urls",
            "turn:t.example:3478?transport=udp,turns:t.example:5349",
            "--turn-secret",
            "s3cret",
            "--turn-ttl",
            "600",
        ]);
        let servers = servers_for(&config, "abc", 1_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(
            servers[0],
            IceServer { urls: vec!["stun:a.example:3478".into()], username: None, credential: None }
        );
        assert_eq!(servers[1].urls.len(), 2);
        assert_eq!(servers[1].username.as_deref(), Some("1600:abc"));
        assert_eq!(servers[1].credential.as_deref(), Some(turn_password("s3cret", "1600:abc").as_str()));
    }

    #[test]
    fn a_turn_urls_address_is_read_from_it() {
        assert_eq!(turn_url_ip("turn:198.51.100.7:3478?transport=udp"), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(turn_url_ip("turns:[2001:db8::1]:443?transport=tcp"), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(turn_url_ip("turn:198.51.100.7"), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(turn_url_ip("turns:turn.example.com:443"), None);
        let config = Config::parse_from(["noom", "--turn-urls", "turn:198.51.100.7:3478,turns:t.example:443"]);
        assert_eq!(turn_server_ips(&config).collect::<Vec<_>>(), ["198.51.100.7".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn empty_stun_list_means_none() {
        let config = Config::parse_from(["noom", "--stun-urls", ""]);
        assert!(servers_for(&config, "abc", 0).is_empty());
        assert!(config.validate().is_ok());
    }

    #[test]
    fn turn_without_a_secret_is_refused() {
        let config = Config::parse_from(["noom", "--turn-urls", "turn:t.example:3478"]);
        assert!(config.validate().unwrap_err().contains("--turn-secret"));
        let config = Config::parse_from(["noom", "--stun-urls", "http://x"]);
        assert!(config.validate().unwrap_err().contains("--stun-urls"));
    }
}
