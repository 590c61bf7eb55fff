//! Noom: self-hosted video meetings and chat rooms, served by one binary.
//!
//! # The map
//!
//! Connections come in through [`connection`] and [`http`]; the live side is [`realtime`], whose
//! [`realtime::Hub`] owns the room state ([`rooms`], kept apart from the network) and reaches the
//! other nodes through [`cluster`]. The modules:
//!
//! - [`config`]: options from flags and environment.
//! - [`cluster`]: many nodes sharing rooms through Redis.
//! - [`http`]: pages, assets and the Socket.IO gate.
//! - [`realtime`]: Socket.IO events (the seed's and our own) and the plain `/ws` chat.
//! - [`rooms`]: who is where, who is in each call, and what was said, kept apart from the network
//!   ([`rooms::history`]: what rooms remember of their chat, within a bound on all of it), and
//!   who runs each meeting; [`passwords`]: room passwords, kept as hashes.
//! - [`events`]: every event name on the wire, once.
//! - [`requests`]: what each client event asks for, read and checked from its arguments.
//! - [`signal`]: the WebRTC signalling payloads relayed between peers.
//! - [`tls`]: HTTPS certificates: from files, reloaded, or made at start.
//! - [`origin`]: which host names the server answers for, and which pages may talk to it.
//! - [`ice`]: the STUN and TURN servers handed to browsers, with TURN credentials.
//! - [`turn`]: the built-in TURN server (`--turn`), for calls browser to browser.
//! - [`sfu`]: the media server, which forwards each call's media: its UDP port, media over TCP
//!   connections of the web port, a router per call (the signalling it answers is
//!   `realtime::media`'s).
//! - [`metrics`]: what `/metrics` reports.
//! - [`admin`]: the admin panel's API: every room live, closing rooms, disconnecting people.
//! - [`validate`], [`ratelimit`]: what input is accepted, and how fast.
//! - [`admission`]: who may open a connection: limits per client address.
//! - [`connection`]: what every TCP connection goes through: counted per address, header
//!   timeouts and size limits; one that carries media, handed to the media server.
//! - [`stall`]: connections whose peer stops reading are cut.
//! - [`stun`]: STUN messages, as far as the media port and the TURN server read them themselves.
//! - [`descriptors`]: the open-files limit, raised at start.
//! - [`memory`]: memory freed by the allocator given back to the system.
//! - [`version`]: what this build is: its version and its source's revision.
//!
//! # The path of one event: `room:join`
//!
//! 1. [`connection`] accepts the TCP connection (counted for its address, its writes counted);
//!    the gate in [`http`] checks the host, the origin and the address's limits, and hands the
//!    request to Socket.IO.
//! 2. `realtime::session` gave the socket, as it connected, its person id, its flavour and its
//!    outbox.
//! 3. `realtime::dispatch` takes the event: its rate, its place in the socket's queue, its
//!    arguments read by [`requests`] into `Request::Join`.
//! 4. `realtime::noom::join` checks what the entry may cost (`realtime::limits`), and
//!    `realtime::changes` enters the room: [`rooms::Rooms::enter`] changes the state, under its
//!    lock, which is held for the change alone.
//! 5. While the state is locked, what the change tells is queued in the room's home
//!    (`realtime::room_home`), in the order the room changed: the newcomer's answer, its socket
//!    joining the room's broadcast group, and the change, one `RoomChange::Entered`, which
//!    `Hub::tell` reads out to the room's sockets here in each dialect (`welcome` for the seed's,
//!    `participant:joined` for Noom's). The other nodes get the op [`cluster::Op::Enter`] through
//!    [`cluster::Link::publish_op`]; each applies it in `realtime::replica`, which makes the same
//!    `RoomChange` of its copy and queues it the same way.
//! 6. Once the state is unlocked, the room's queue is run (by this task, or by the one already
//!    running it) and everything goes out through `realtime::outbox`, counted in bytes per
//!    socket. The lobby's `directory` and the seed's `room_change` follow from
//!    `realtime::directory` when the list of rooms changed.

pub mod admin;
pub mod admission;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod descriptors;
pub mod events;
pub mod http;
pub mod ice;
pub mod memory;
pub mod metrics;
pub mod origin;
pub mod passwords;
pub mod ratelimit;
pub mod realtime;
pub mod requests;
pub mod rooms;
pub mod sfu;
pub mod signal;
pub mod stall;
pub mod stun;
pub mod tls;
pub mod turn;
pub mod validate;
pub mod version;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use std::future::Future;
use std::pin::Pin;

use axum_server::tls_rustls::RustlsAcceptor;
use tokio::signal::unix::SignalKind;

use config::Config;
use realtime::Hub;

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let addr = SocketAddr::new(config.host, config.port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let turn = turn::start(&mut config, local.port()).await?;
    let config = Arc::new(config);
    descriptors::raise_limit(config.max_connections_per_address);
    let hangup = Arc::new(tokio::sync::Notify::new());
    listen_for_hangups(hangup.clone())?;
    let tls = tls::load(&config, hangup).await?;
    let relays = turn.as_ref().map(|turn| turn.relays.clone());
    let (socket_io, hub) = Hub::build(config.clone(), local.port(), relays).await?;
    if let (Some(turn), Some(media)) = (&turn, hub.media_server())
        && let Some(udp) = media.addresses().udp.first()
    {
        turn.reach_media_port(udp.port());
    }
    let app = http::router(config.clone(), socket_io, hub.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Shutdown: first stop accepting (so that pages do not reconnect here), then close the open
    // connections and tell the other nodes.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let acceptor = connection::GuardedAcceptor {
        // A peer that stops reading has as long as a ping timeout to start again.
        stall_limit: std::time::Duration::from_secs(config.ping_timeout),
        admission: hub.admission(),
        proxies: admission::TrustedProxies::parse(&config.trusted_proxies).unwrap_or_default(),
        media: hub.media_server(),
        open: hub.connections(),
    };
    // Stops accepting at shutdown, and gives open connections a grace period.
    let handle = axum_server::Handle::new();
    tokio::spawn({
        let (handle, stopped) = (handle.clone(), stopped());
        async move {
            stopped.await;
            handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        }
    });
    let server = connection::server(listener.into_std()?)?.handle(handle.clone());
    let app = app.into_make_service_with_connect_info::<connection::PeerAddr>();
    let server: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match tls {
        None => Box::pin(server.acceptor(acceptor.clone()).serve(app)),
        Some(rustls) => {
            let inner = RustlsAcceptor::new(rustls).acceptor(acceptor.clone());
            let turn = turn.and_then(|turn| turn.over_tls);
            Box::pin(server.acceptor(connection::TurnOverTls { inner, turn }).serve(app))
        }
    };
    if let Some(port) = config.http_port {
        let redirect = SocketAddr::new(config.host, port);
        let listener = std::net::TcpListener::bind(redirect)
            .with_context(|| format!("--http-port: cannot listen on {redirect}"))?;
        listener.set_nonblocking(true)?;
        println!("noom redirects http://{} to HTTPS", listener.local_addr()?);
        let app =
            http::redirect_to_https(config.served(), local.port(), config.acme_webroot.clone()).into_make_service();
        let acceptor = connection::GuardedAcceptor { media: None, ..acceptor };
        tokio::spawn(connection::server(listener)?.acceptor(acceptor).handle(handle).serve(app));
    }
    tokio::spawn(memory::give_back_periodically());
    println!("noom listening on {scheme}://{local}");
    tracing::info!(%local, scheme, node = hub.node(), version = version::VERSION, "listening");
    listen_for_drain(hub.clone())?;
    tokio::spawn({
        let hub = hub.clone();
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = hub.drained() => {}
            }
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        }
    });
    let closing = tokio::spawn({
        let stopped = stopped();
        async move {
            stopped.await;
            hub.close().await;
        }
    });
    tokio::select! {
        result = server => result.context("server failed")?,
        () = async { stopped().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("connections still open after {SHUTDOWN_GRACE:?}; stopping anyway");
        }
    }
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, closing).await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP, which would end the process, is taken as operators mean it: certificate files are
/// read again at once (they are also whenever they change); every other option takes a restart,
/// which the log says.
fn listen_for_hangups(reload: Arc<tokio::sync::Notify>) -> anyhow::Result<()> {
    on_signal(SignalKind::hangup(), "SIGHUP", move || {
        tracing::info!(
            "SIGHUP: certificate files (--tls-cert, --tls-key) are read again; other options take a restart"
        );
        reload.notify_one();
    })
}

/// SIGUSR1: the node drains (see `realtime`'s `drain`), then stops.
fn listen_for_drain(hub: Arc<Hub>) -> anyhow::Result<()> {
    on_signal(SignalKind::user_defined1(), "SIGUSR1", move || hub.drain())
}

/// Runs `action` each time the process gets the signal `kind` (`name`), which then no longer
/// ends it.
fn on_signal(kind: SignalKind, name: &str, action: impl Fn() + Send + 'static) -> anyhow::Result<()> {
    let mut signals = tokio::signal::unix::signal(kind).with_context(|| format!("cannot listen for {name}"))?;
    tokio::spawn(async move {
        while signals.recv().await.is_some() {
            action();
        }
    });
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
