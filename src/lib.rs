//! Noom: self-hosted video meetings and chat rooms, served by one binary.
//!
//! - [`config`]: options from flags and environment.
//! - [`cluster`]: many nodes sharing rooms through Redis.
//! - [`http`]: pages, assets and the Socket.IO gate.
//! - [`realtime`]: Socket.IO events (the seed's and our own) and the plain `/ws` chat.
//! - [`rooms`]: who is where, who is in each call, and what was said, kept apart from the network.
//! - [`signal`]: the WebRTC signalling payloads relayed between peers.
//! - [`ice`]: the STUN and TURN servers handed to browsers, with TURN credentials.
//! - [`metrics`]: what `/metrics` reports.
//! - [`validate`], [`ratelimit`]: what input is accepted, and how fast.

pub mod cluster;
pub mod config;
pub mod http;
pub mod ice;
pub mod metrics;
pub mod ratelimit;
pub mod realtime;
pub mod rooms;
pub mod signal;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;

use config::Config;
use realtime::Hub;

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let (socket_io, hub) = Hub::build(config.clone()).await?;
    let app = http::router(config.clone(), socket_io, hub.clone());
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // Without TCP_NODELAY small messages wait for delayed ACKs: tens of milliseconds each.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("noom listening on http://{local}");
    tracing::info!(%local, "listening");
    // Shutdown: first stop accepting (so that pages do not reconnect here), then close the open
    // connections and tell the other nodes.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let closing = tokio::spawn({
        let stopped = stopped(stop_rx.clone());
        async move {
            stopped.await;
            hub.close().await;
        }
    });
    tokio::select! {
        result = server => result.context("server failed")?,
        () = async { stopped(stop_rx).await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; stopping anyway");
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, closing).await;
    tracing::info!("stopped");
    Ok(())
}

/// How long shutdown waits for connections to close.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
