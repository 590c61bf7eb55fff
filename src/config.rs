//! Configuration from flags, the environment and an optional TOML file.
//!
//! Every option is a flag, an environment variable (`NOOM_*`) and a key of the `--config` file
//! (the flag's name: `call-size = 8`). A flag wins over the environment, which wins over the file,
//! which wins over the default. The file's values go through the same parsing as flags, so they
//! are checked alike.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use serde::Serialize;

/// Self-hosted video meetings and chat rooms, served by one binary.
#[derive(Debug, Clone, Parser, Serialize)]
#[command(name = "noom", version = crate::version::VERSION, about)]
#[serde(rename_all = "kebab-case")]
pub struct Config {
    /// A TOML file of options, keyed by their flag names (`call-size = 8`); flags and environment
    /// variables win over it.
    #[arg(long, env = "NOOM_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Prints the configuration in effect (as a TOML file would give it, secrets hidden) and
    /// exits.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,

    /// Address to listen on (0.0.0.0 to serve other machines).
    #[arg(long, env = "NOOM_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, env = "NOOM_PORT", default_value_t = 3000)]
    pub port: u16,

    /// The URLs people open Noom at, comma-separated (`https://meet.example.com`): over plain HTTP
    /// (behind a proxy that ends TLS, say) the server answers only for these names, `localhost`
    /// and IP addresses; the HTTP-to-HTTPS redirect goes to the first HTTPS one.
    #[arg(long, env = "NOOM_PUBLIC_URL", value_delimiter = ',')]
    pub public_url: Vec<String>,

    /// Origins other than the server's own allowed to open Socket.IO connections,
    /// comma-separated (e.g. `https://app.example.com`), or `*` for any.
    #[arg(long, env = "NOOM_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Connections one address may have open at once (0: no limit). Behind a proxy, the address
    /// is the client's (see --trusted-proxies).
    #[arg(long, env = "NOOM_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1000)]
    pub max_connections_per_address: u32,

    /// New connections one address may open a second, sustained, with bursts of five seconds'
    /// worth (0: no limit).
    #[arg(long, env = "NOOM_CONNECTION_RATE_PER_ADDRESS", default_value_t = 20.0)]
    pub connection_rate_per_address: f64,

    /// Leading bits of an IPv6 address that per-address limits count as one client: a home or a
    /// phone is given a whole /64.
    #[arg(long, env = "NOOM_IPV6_PREFIX", default_value_t = 64, value_parser = clap::value_parser!(u8).range(32..=128))]
    pub ipv6_prefix: u8,

    /// Proxies whose `X-Forwarded-For` header names the client, comma-separated addresses or
    /// networks (`10.0.0.0/8`); empty for none.
    #[arg(long, env = "NOOM_TRUSTED_PROXIES", value_delimiter = ',', default_value = "127.0.0.1,::1")]
    pub trusted_proxies: Vec<String>,

    /// Events one socket may send a second, sustained, chat and calls included (signalling has
    /// its own, higher limit), with bursts of two seconds' worth.
    #[arg(long, env = "NOOM_EVENT_RATE", default_value_t = 50.0)]
    pub event_rate: f64,

    /// Chat messages one socket may send in a burst.
    #[arg(long, env = "NOOM_CHAT_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub chat_burst: u32,

    /// Chat messages one socket may send per second, sustained.
    #[arg(long, env = "NOOM_CHAT_RATE", default_value_t = 5.0)]
    pub chat_rate: f64,

    /// Messages a room keeps for whoever enters it.
    #[arg(long, env = "NOOM_HISTORY_SIZE", default_value_t = 50)]
    pub history_size: usize,

    /// Memory all rooms' histories may hold together, in MiB: past it, the server's oldest
    /// messages are forgotten first, whichever room they are in.
    #[arg(long, env = "NOOM_HISTORY_MEMORY", default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    pub history_memory: usize,

    /// Rooms one connection may be in at once.
    #[arg(long, env = "NOOM_ROOMS_PER_PERSON", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub rooms_per_person: u16,

    /// Seconds someone waits in a room's waiting room for a host before they are turned away.
    #[arg(long, env = "NOOM_WAITING_TIMEOUT", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub waiting_timeout: u64,

    /// Shortest time between two directory pushes (bursts of changes are coalesced).
    #[arg(long, env = "NOOM_DIRECTORY_INTERVAL_MS", default_value_t = 250)]
    pub directory_interval_ms: u64,

    /// Seconds between Engine.IO pings.
    #[arg(long, env = "NOOM_PING_INTERVAL", default_value_t = 25)]
    pub ping_interval: u64,

    /// Seconds without a pong before a client is considered gone.
    #[arg(long, env = "NOOM_PING_TIMEOUT", default_value_t = 20)]
    pub ping_timeout: u64,

    /// How calls carry their media: `sfu` through this server's media port (each browser sends
    /// once, the server forwards what each needs), `mesh` browser to browser (each sends to
    /// every other). A server that cannot bind its media port, or one in a cluster, runs the
    /// mesh and says so at start.
    #[arg(long, env = "NOOM_CALLS", value_enum, default_value_t = Calls::Sfu)]
    pub calls: Calls,

    /// In a cluster, each person's media goes through their own node's media server, and the
    /// nodes of a call forward each other its tracks, each crossing between two nodes once
    /// (cascading); without it, each call's media meets on one node. Every node of a cluster is
    /// to say the same. Nodes reach each other at their --media-address, on the web port.
    #[arg(long, env = "NOOM_CASCADE")]
    pub cascade: bool,

    /// A call of two through the media server: `direct`, the two talk browser to browser while
    /// their connections to the server stand by (media moves to the server when a third joins,
    /// or when the direct path fails), or `server`, through the server from the start.
    #[arg(long, env = "NOOM_PAIRS", value_enum, default_value_t = Pairs::Direct)]
    pub pairs: Pairs,

    /// Most people in one room's call [default: 100 through the media server, 6 in a mesh].
    #[arg(long, env = "NOOM_CALL_SIZE", value_parser = clap::value_parser!(u16).range(2..=100))]
    pub call_size: Option<u16>,

    /// In a call through the media server of more people than this, only the loudest 3 voices
    /// are forwarded to each.
    #[arg(long, env = "NOOM_ALL_VOICES_UP_TO", default_value_t = 12, value_parser = clap::value_parser!(u16).range(2..=100))]
    pub all_voices_up_to: u16,

    /// The UDP port all call media comes to, for every call [default: the same number as --port].
    /// Browsers must reach it: open it in the firewall.
    #[arg(long, env = "NOOM_MEDIA_PORT")]
    pub media_port: Option<u16>,

    /// The addresses browsers reach the media port at, comma-separated [default: this host's
    /// own address]. Behind NAT or in a container, give the public address (the port forwarded
    /// to this one must be the same number).
    #[arg(long, env = "NOOM_MEDIA_ADDRESS", value_delimiter = ',')]
    pub media_address: Vec<IpAddr>,

    /// STUN servers handed to browsers, comma-separated (`stun:host:port`); empty for none.
    #[arg(long, env = "NOOM_STUN_URLS", value_delimiter = ',', default_value = "stun:stun.l.google.com:19302")]
    pub stun_urls: Vec<String>,

    /// TURN servers handed to browsers, comma-separated (`turn:host:3478?transport=udp`,
    /// `turns:host:5349`); needs --turn-secret.
    #[arg(long, env = "NOOM_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// The secret shared with the TURN server (coturn's `static-auth-secret`), from which each
    /// call's time-limited TURN credentials are made.
    #[arg(long, env = "NOOM_TURN_SECRET", hide_env_values = true)]
    #[serde(serialize_with = "hidden")]
    pub turn_secret: Option<String>,

    /// Seconds the TURN credentials handed out stay valid. Those in a call get new ones before
    /// theirs expire; one who left keeps a credential for at most this long.
    #[arg(long, env = "NOOM_TURN_TTL", default_value_t = 600, value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub turn_ttl: u64,

    /// Runs a TURN server inside Noom, on --turn-port (UDP and TCP), for calls browser to browser
    /// (two people, a mesh, the seed's front end) whose browsers cannot reach each other. Its
    /// credentials are made from --turn-secret, or from a secret made at start.
    #[arg(long, env = "NOOM_TURN")]
    pub turn: bool,

    /// The built-in TURN server's port, UDP and TCP: open both in the firewall.
    #[arg(long, env = "NOOM_TURN_PORT", default_value_t = 3478)]
    pub turn_port: u16,

    /// The UDP ports the built-in TURN server relays from, `first-last`: open them in the
    /// firewall. Each browser relayed holds one or two.
    #[arg(long, env = "NOOM_TURN_RELAY_PORTS", default_value = "49152-65535")]
    pub turn_relay_ports: String,

    /// Networks the built-in TURN server may relay to although they are private (loopback,
    /// private and link-local addresses are refused otherwise, so that the relay cannot reach
    /// this server's own network), comma-separated (`10.0.0.0/8`).
    #[arg(long, env = "NOOM_TURN_ALLOWED_PEERS", value_delimiter = ',')]
    pub turn_allowed_peers: Vec<String>,

    /// `relay` makes browsers send media only through TURN (hides their addresses from each
    /// other; needs --turn-urls).
    #[arg(long, env = "NOOM_ICE_TRANSPORT_POLICY", value_enum, default_value_t = IceTransportPolicy::All)]
    pub ice_transport_policy: IceTransportPolicy,

    /// Redis shared by the nodes of a cluster (`redis://host:port`, or `rediss://` over TLS;
    /// Redis 7 or later); without it, this node is alone.
    #[arg(long, env = "NOOM_REDIS_URL", hide_env_values = true)]
    #[serde(serialize_with = "hidden_password")]
    pub redis_url: Option<String>,

    /// Draining (SIGUSR1, or the admin panel's API) stops the node once its calls are over, or
    /// this many seconds after it began, whichever comes first.
    #[arg(long, env = "NOOM_DRAIN_TIMEOUT", default_value_t = 1800)]
    pub drain_timeout: u64,

    /// This node's name in a cluster, in the logs, the admin panel and `/metrics` (letters,
    /// digits, `.`, `-`, `_`; default: the host name). Each start adds a few letters of its own,
    /// so that a node started again is never taken for its former self.
    #[arg(long, env = "NOOM_NODE_NAME")]
    pub node_name: Option<String>,

    /// With `rediss://`: the certificate (PEM) of the authority that signed the Redis server's,
    /// when it is not one the system trusts (a private CA).
    #[arg(long, env = "NOOM_REDIS_CA")]
    pub redis_ca: Option<PathBuf>,

    /// HTTPS: the certificate chain, a PEM file (with --tls-key). Reloaded when the file changes,
    /// so a renewed certificate needs no restart.
    #[arg(long, env = "NOOM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// HTTPS: the certificate's private key, a PEM file (with --tls-cert).
    #[arg(long, env = "NOOM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// HTTPS with a certificate made for these host names or addresses, comma-separated (a LAN, a
    /// test), and kept in --state-dir for the next start: browsers warn until it is trusted, and
    /// say how.
    #[arg(long, env = "NOOM_TLS_SELF_SIGNED", value_delimiter = ',')]
    pub tls_self_signed: Vec<String>,

    /// With HTTPS, a plain-HTTP port that redirects every request to HTTPS (e.g. 80), except
    /// ACME's challenges when --acme-webroot is given.
    #[arg(long, env = "NOOM_HTTP_PORT")]
    pub http_port: Option<u16>,

    /// A directory whose `.well-known/acme-challenge/` files the --http-port serves, for an ACME
    /// client's HTTP-01 challenges (`certbot certonly --webroot -w <this directory>`) while Noom
    /// holds port 80.
    #[arg(long, env = "NOOM_ACME_WEBROOT")]
    pub acme_webroot: Option<PathBuf>,

    /// Where Noom keeps what must outlive a restart: the --tls-self-signed certificate (default:
    /// $STATE_DIRECTORY, which systemd's StateDirectory= sets, else $XDG_STATE_HOME/noom, else
    /// ~/.local/state/noom).
    #[arg(long, env = "NOOM_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Turns on the admin panel at `/admin`, which this token unlocks (at least 16 characters;
    /// e.g. `openssl rand -hex 24`). Without it there is no admin panel.
    #[arg(long, env = "NOOM_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(serialize_with = "hidden")]
    pub admin_token: Option<String>,

    /// How logs are written to standard error: `text` for people, `json` (one object a line) for
    /// log collectors. `RUST_LOG` sets the level.
    #[arg(long, env = "NOOM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Calls {
    Sfu,
    Mesh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pairs {
    Direct,
    Server,
}

/// Most people in a call through the media server, unless --call-size says otherwise.
pub const SFU_CALL_SIZE: u16 = 100;
/// Most people in a mesh call, unless --call-size says otherwise: each browser sends its camera
/// to every other, which a phone does not manage for more.
pub const MESH_CALL_SIZE: u16 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    All,
    Relay,
}

/// The shortest secret accepted (the admin token, the TURN secret): guessing one must be hopeless.
pub const SECRET_MIN: usize = 16;

/// What `--print-config` shows in place of a secret; refused as a secret's value, so that a
/// printed configuration loaded back cannot run with it.
pub const HIDDEN: &str = "(hidden)";

/// A secret, as `--print-config` shows it.
fn hidden<S: serde::Serializer>(secret: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(_) => s.serialize_str(HIDDEN),
        None => s.serialize_none(),
    }
}

/// A URL, as `--print-config` shows it: its password hidden (`redis://user:(hidden)@host`).
fn hidden_password<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_str(&without_password(url)),
        None => s.serialize_none(),
    }
}

/// `url` with the password of its user information, if any, replaced by [`HIDDEN`].
fn without_password(url: &str) -> String {
    match password_at(url) {
        Some(at) => format!("{}{HIDDEN}{}", &url[..at.start], &url[at.end..]),
        None => url.to_owned(),
    }
}

/// Whether `url`'s password is the placeholder of a hidden one.
fn has_hidden_password(url: &str) -> bool {
    password_at(url).is_some_and(|at| &url[at] == HIDDEN)
}

/// Where the password of `url`'s user information is (`scheme://user:password@host/...`).
fn password_at(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let user_info = &authority[..authority.rfind('@')?];
    let colon = user_info.find(':')?;
    Some(start + colon + 1..start + user_info.len())
}

impl Config {
    /// Reads the flags of this process, its environment and the `--config` file. `--help`,
    /// `--version` and malformed flags print and exit, as clap does; anything wrong in the file
    /// is an error that names the file and the option.
    pub fn load() -> Result<Config, String> {
        Self::load_from(std::env::args_os())
    }

    pub fn load_from(args: impl IntoIterator<Item = OsString>) -> Result<Config, String> {
        let args: Vec<OsString> = args.into_iter().collect();
        let command = Config::command();
        let matches = command.clone().get_matches_from(&args);
        let mut config = Config::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        config.drop_empty_entries();
        let Some(path) = &config.config else { return Ok(config) };
        let in_file = |what: String| format!("--config {}: {what}", path.display());
        let text = std::fs::read_to_string(path).map_err(|e| in_file(e.to_string()))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map(|span| text[..span.start].matches('\n').count() + 1);
            in_file(match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            })
        })?;
        let mut args = args;
        // Lists the file gives as `[]`: none, whatever the default (a flag cannot say so for
        // every type of list).
        let mut emptied = Vec::new();
        for (key, value) in table {
            let arg = command
                .get_arguments()
                .find(|a| a.get_long() == Some(key.as_str()) && !matches!(key.as_str(), "config" | "print-config"))
                .ok_or_else(|| in_file(format!("{key:?} is not an option")))?;
            // Given as a flag or in the environment: those win.
            if matches!(
                matches.value_source(arg.get_id().as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            let flag = !arg.get_action().takes_values();
            let value = match value {
                toml::Value::Array(items) if items.is_empty() && !flag => {
                    emptied.push(key);
                    continue;
                }
                toml::Value::Array(items) if !flag => {
                    items.iter().map(scalar).collect::<Option<Vec<_>>>().map(|items| items.join(","))
                }
                // A switch (`turn = true`) is given or not.
                toml::Value::Boolean(on) if flag => {
                    if on {
                        args.push(format!("--{key}").into());
                    }
                    continue;
                }
                _ if flag => None,
                value => scalar(&value),
            }
            .ok_or_else(|| {
                in_file(if flag {
                    format!("{key:?} must be true or false")
                } else {
                    format!("{key:?} must be a string, a number or a list of strings")
                })
            })?;
            args.push(format!("--{key}={value}").into());
        }
        let matches = command.try_get_matches_from(&args).map_err(|e| in_file(e.to_string().trim().to_owned()))?;
        let mut config = Config::from_arg_matches(&matches).map_err(|e| in_file(e.to_string()))?;
        for key in emptied {
            config.empty_list(&key).map_err(in_file)?;
        }
        config.drop_empty_entries();
        Ok(config)
    }

    /// An empty entry in a list (`--tls-self-signed ''`, `NOOM_STUN_URLS=`) is no entry: the
    /// way to give none on the command line or in the environment.
    fn drop_empty_entries(&mut self) {
        for list in [
            &mut self.public_url,
            &mut self.allowed_origins,
            &mut self.trusted_proxies,
            &mut self.stun_urls,
            &mut self.turn_urls,
            &mut self.turn_allowed_peers,
            &mut self.tls_self_signed,
        ] {
            list.retain(|entry| !entry.trim().is_empty());
        }
    }

    /// Empties the list option `key` (a flag's name).
    fn empty_list(&mut self, key: &str) -> Result<(), String> {
        match key {
            "public-url" => self.public_url.clear(),
            "allowed-origins" => self.allowed_origins.clear(),
            "trusted-proxies" => self.trusted_proxies.clear(),
            "media-address" => self.media_address.clear(),
            "stun-urls" => self.stun_urls.clear(),
            "turn-urls" => self.turn_urls.clear(),
            "turn-allowed-peers" => self.turn_allowed_peers.clear(),
            "tls-self-signed" => self.tls_self_signed.clear(),
            _ => return Err(format!("{key:?} is not a list")),
        }
        Ok(())
    }

    /// The configuration in effect, as a `--config` file would give it.
    pub fn to_toml(&self) -> String {
        let mut text = toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the configuration: {e}\n"));
        if self.call_size.is_none() {
            text.push_str(&format!(
                "# call-size: {SFU_CALL_SIZE} through the media server, {MESH_CALL_SIZE} in a mesh (not set)\n"
            ));
        }
        if self.node_name.is_none() {
            text.push_str(&format!("# node-name: {} (not set: the host name)\n", self.node_name()));
        }
        if self.state_dir.is_none() {
            let default = self.state_dir().map_or("none: no home directory".into(), |d| d.display().to_string());
            text.push_str(&format!("# state-dir: {default} (not set)\n"));
        }
        text
    }

    /// Most people in one call, as the calls are carried (`sfu`: through the media server).
    pub fn call_size(&self, sfu: bool) -> u16 {
        self.call_size.unwrap_or(if sfu { SFU_CALL_SIZE } else { MESH_CALL_SIZE })
    }

    /// This node's name: --node-name, else the host name.
    pub fn node_name(&self) -> String {
        self.node_name.clone().unwrap_or_else(host_name)
    }

    /// Where state is kept: --state-dir, else the default it describes; `None` where there is no
    /// home to put it in.
    pub fn state_dir(&self) -> Option<PathBuf> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        self.state_dir
            .clone()
            .or_else(|| env("STATE_DIRECTORY"))
            .or_else(|| env("XDG_STATE_HOME").map(|state| state.join("noom")))
            .or_else(|| env("HOME").map(|home| home.join(".local/state/noom")))
    }

    /// Whether the server speaks HTTPS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls_self_signed.iter().any(|n| !n.is_empty())
    }

    pub fn directory_interval(&self) -> Duration {
        Duration::from_millis(self.directory_interval_ms)
    }

    /// The host names and origins the server is configured for (see [`crate::origin`]).
    pub fn served(&self) -> crate::origin::Served {
        crate::origin::Served::new(&self.public_url, &self.tls_self_signed, self.tls(), &self.allowed_origins)
    }

    /// Checks what clap's types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.chat_rate.is_finite() && self.chat_rate > 0.0) {
            return Err(format!("--chat-rate must be a positive number, not {}", self.chat_rate));
        }
        if !(self.event_rate.is_finite() && self.event_rate >= 1.0) {
            return Err(format!("--event-rate must be at least 1, not {}", self.event_rate));
        }
        if !(self.connection_rate_per_address.is_finite() && self.connection_rate_per_address >= 0.0) {
            return Err(format!(
                "--connection-rate-per-address must be a number of connections a second (0: no limit), not {}",
                self.connection_rate_per_address
            ));
        }
        crate::admission::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| format!("--trusted-proxies: {e}"))?;
        if self.history_size > 10_000 {
            return Err("--history-size must be at most 10000".into());
        }
        if self.ping_interval == 0 || self.ping_timeout == 0 {
            return Err("--ping-interval and --ping-timeout must be at least 1 second".into());
        }
        for url in self.public_url.iter().filter(|u| !u.is_empty()) {
            crate::origin::PublicUrl::parse(url).map_err(|e| format!("--public-url: {e}"))?;
        }
        for origin in &self.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(format!(
                    "--allowed-origins: {origin:?} is not an origin (expected e.g. https://example.com, or *)"
                ));
            }
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        let self_signed = self.tls_self_signed.iter().any(|n| !n.is_empty());
        if self_signed && self.tls_cert.is_some() {
            return Err("--tls-self-signed and --tls-cert are two ways to HTTPS: give one".into());
        }
        if self.acme_webroot.is_some() && self.http_port.is_none() {
            return Err("--acme-webroot is served on the plain-HTTP port: it needs --http-port".into());
        }
        if self.http_port.is_some() && !self.tls() {
            return Err("--http-port redirects to HTTPS: it needs --tls-cert or --tls-self-signed".into());
        }
        if let Some(url) = &self.redis_url
            && !["redis://", "rediss://", "redis+unix://"].iter().any(|scheme| url.starts_with(scheme))
        {
            return Err(format!(
                "--redis-url: {:?} is not a Redis URL (expected redis://host:port, rediss://host:port over TLS, or redis+unix:///path)",
                without_password(url)
            ));
        }
        if self.redis_ca.is_some() && !self.redis_url.as_deref().is_some_and(|url| url.starts_with("rediss://")) {
            return Err("--redis-ca is for a Redis reached over TLS: it needs --redis-url rediss://…".into());
        }
        if let Some(name) = &self.node_name
            && !valid_node_name(name)
        {
            return Err(format!(
                "--node-name: {name:?} must be 1 to 63 letters, digits, '.', '-' or '_' (it goes into logs and metrics)"
            ));
        }
        let placeholder = |flag: &str| {
            format!("{flag}: {HIDDEN:?} is what --print-config shows in place of the secret: give the secret itself")
        };
        if self.turn_secret.as_deref() == Some(HIDDEN) {
            return Err(placeholder("--turn-secret"));
        }
        if self.admin_token.as_deref() == Some(HIDDEN) {
            return Err(placeholder("--admin-token"));
        }
        if self.redis_url.as_deref().is_some_and(has_hidden_password) {
            return Err(placeholder("--redis-url's password"));
        }
        if let Some(token) = &self.admin_token {
            if token.chars().count() < SECRET_MIN {
                return Err(format!(
                    "--admin-token must be at least {SECRET_MIN} characters (e.g. the output of `openssl rand -hex 24`)"
                ));
            }
            if !token.chars().all(|c| c.is_ascii_graphic()) {
                return Err(
                    "--admin-token must be printable ASCII without spaces (it is sent in an HTTP header)".into()
                );
            }
        }
        self.validate_ice()
    }

    fn validate_ice(&self) -> Result<(), String> {
        let check = |flag: &str, urls: &[String], schemes: &[&str]| {
            for url in urls.iter().filter(|u| !u.is_empty()) {
                if !schemes.iter().any(|s| url.strip_prefix(s).is_some_and(|rest| rest.starts_with(':'))) {
                    return Err(format!("{flag}: {url:?} is not a {} URL", schemes.join(" or ")));
                }
            }
            Ok(())
        };
        check("--stun-urls", &self.stun_urls, &["stun", "stuns"])?;
        check("--turn-urls", &self.turn_urls, &["turn", "turns"])?;
        if self.turn {
            self.turn_relay_ports()?;
            crate::admission::Networks::parse(&self.turn_allowed_peers)
                .map_err(|e| format!("--turn-allowed-peers: {e}"))?;
        }
        let has_turn = self.turn_urls().next().is_some();
        let has_secret = self.turn_secret.as_deref().is_some_and(|s| !s.is_empty());
        if has_turn && !has_secret {
            return Err("--turn-urls needs --turn-secret (the TURN server's static-auth-secret)".into());
        }
        if let Some(secret) = self.turn_secret.as_deref().filter(|s| !s.is_empty())
            && secret.chars().count() < SECRET_MIN
        {
            return Err(format!(
                "--turn-secret must be at least {SECRET_MIN} characters: whoever guesses it relays through the TURN server as anyone (e.g. the output of `openssl rand -hex 32`)"
            ));
        }
        if self.ice_transport_policy == IceTransportPolicy::Relay && !has_turn && !self.turn {
            return Err("--ice-transport-policy relay needs --turn-urls or --turn".into());
        }
        Ok(())
    }

    /// The STUN URLs given, without empty entries (`--stun-urls ''` means none).
    pub fn stun_urls(&self) -> impl Iterator<Item = &str> {
        self.stun_urls.iter().map(String::as_str).filter(|u| !u.is_empty())
    }

    /// The built-in TURN server's relay ports, as `--turn-relay-ports` gives them.
    pub fn turn_relay_ports(&self) -> Result<std::ops::RangeInclusive<u16>, String> {
        let bad = || format!("--turn-relay-ports must be first-last (1024-65535), not {:?}", self.turn_relay_ports);
        let (first, last) = self.turn_relay_ports.split_once('-').ok_or_else(bad)?;
        let (first, last): (u16, u16) =
            (first.trim().parse().map_err(|_| bad())?, last.trim().parse().map_err(|_| bad())?);
        if first < 1024 || first > last {
            return Err(bad());
        }
        Ok(first..=last)
    }

    pub fn turn_urls(&self) -> impl Iterator<Item = &str> {
        self.turn_urls.iter().map(String::as_str).filter(|u| !u.is_empty())
    }
}

fn valid_node_name(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// The machine's host name, as a node name; `noom` if it has none that is one.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is as long as it says; gethostname writes at most that, NUL-terminated
    // when it fits.
    let ok = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) } == 0;
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..end]);
    // A fully qualified name: its first label is what people call the machine.
    let name = name.split('.').next().unwrap_or_default();
    if ok && valid_node_name(name) { name.to_owned() } else { "noom".to_owned() }
}

/// A TOML value as a flag's value.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_url_is_hidden_and_its_placeholder_known() {
        assert_eq!(without_password("redis://:s3cret@h:6379/0"), "redis://:(hidden)@h:6379/0");
        assert_eq!(without_password("rediss://noom:p@ss@h:6380"), "rediss://noom:(hidden)@h:6380", "up to the last @");
        assert_eq!(without_password("redis://noom@h:6379"), "redis://noom@h:6379", "a user without password");
        assert_eq!(without_password("redis://h:6379/0?x=a:b@c"), "redis://h:6379/0?x=a:b@c", "not in the query");
        assert!(has_hidden_password("redis://:(hidden)@h:6379"));
        assert!(!has_hidden_password("redis://:(hidden)x@h:6379"));
    }

    #[test]
    fn node_names_are_what_logs_and_metrics_can_carry() {
        assert!(valid_node_name("node-1.eu_west"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("a b"));
        assert!(!valid_node_name("node\"1"));
        assert!(!valid_node_name(&"n".repeat(64)));
        assert!(valid_node_name(&host_name()), "the host name, or the fallback");
    }
}
