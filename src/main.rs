//! The `noom` binary: reads its configuration and serves.

use std::io::IsTerminal;

use noom::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("noom: invalid configuration: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt()
        // The TURN protocol's crate logs each challenge of a client as an error: it is routine.
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,stun_proto=off")))
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them: not in a file or a journal.
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    if let Err(message) = config.validate() {
        eprintln!("noom: invalid configuration: {message}");
        return std::process::ExitCode::from(2);
    }
    if config.print_config {
        print!("{}", config.to_toml());
        return std::process::ExitCode::SUCCESS;
    }
    match noom::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("noom: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
