//! The `noom` binary: reads its configuration and serves.

use clap::Parser;
use noom::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let config = Config::parse();
    if let Err(message) = config.validate() {
        eprintln!("noom: invalid configuration: {message}");
        return std::process::ExitCode::from(2);
    }
    match noom::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("noom: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
