//! Command-line and environment configuration.
//!
//! Every option is a flag and an environment variable (`NOOM_*`); the flag wins.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;

/// Self-hosted video meetings and chat rooms, served by one binary.
#[derive(Debug, Clone, Parser)]
#[command(name = "noom", version, about)]
pub struct Config {
    /// Address to listen on (0.0.0.0 to serve other machines).
    #[arg(long, env = "NOOM_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one; the address is printed).
    #[arg(long, env = "NOOM_PORT", default_value_t = 3000)]
    pub port: u16,

    /// Origins other than the server's own allowed to open Socket.IO connections,
    /// comma-separated (e.g. `https://app.example.com`), or `*` for any.
    #[arg(long, env = "NOOM_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Chat messages one socket may send in a burst.
    #[arg(long, env = "NOOM_CHAT_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub chat_burst: u32,

    /// Chat messages one socket may send per second, sustained.
    #[arg(long, env = "NOOM_CHAT_RATE", default_value_t = 5.0)]
    pub chat_rate: f64,

    /// Messages a room keeps for whoever enters it.
    #[arg(long, env = "NOOM_HISTORY_SIZE", default_value_t = 50)]
    pub history_size: usize,

    /// Shortest time between two directory pushes (bursts of changes are coalesced).
    #[arg(long, env = "NOOM_DIRECTORY_INTERVAL_MS", default_value_t = 250)]
    pub directory_interval_ms: u64,

    /// Seconds between Engine.IO pings.
    #[arg(long, env = "NOOM_PING_INTERVAL", default_value_t = 25)]
    pub ping_interval: u64,

    /// Seconds without a pong before a client is considered gone.
    #[arg(long, env = "NOOM_PING_TIMEOUT", default_value_t = 20)]
    pub ping_timeout: u64,
}

impl Config {
    pub fn directory_interval(&self) -> Duration {
        Duration::from_millis(self.directory_interval_ms)
    }

    /// Checks what clap's types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.chat_rate.is_finite() && self.chat_rate > 0.0) {
            return Err(format!("--chat-rate must be a positive number, not {}", self.chat_rate));
        }
        if self.history_size > 10_000 {
            return Err("--history-size must be at most 10000".into());
        }
        if self.ping_interval == 0 || self.ping_timeout == 0 {
            return Err("--ping-interval and --ping-timeout must be at least 1 second".into());
        }
        for origin in &self.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(format!(
                    "--allowed-origins: {origin:?} is not an origin (expected e.g. https://example.com, or *)"
                ));
            }
        }
        Ok(())
    }
}
