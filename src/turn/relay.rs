//! The TURN server's IO: a task per listening transport (UDP, TCP, TLS on the web port) that
//! owns that transport's protocol state (`turn-server-proto`'s sans-IO server), feeds it what
//! clients and peers send and the time, and does what it asks: send, open a relay port, close
//! one.
//!
//! Before the protocol reads a client's request, the request's user name is checked here
//! ([`super::credentials`]): only a name Noom made, not yet expired, is given its password. What
//! the relay sends to peers and hears from them is held to [`super::peers`]. A client's traffic
//! is held to a rate, a user to a number of relay ports.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use turn_server_proto::api::{SocketAllocateError, TcpConnectError, Transmit, TurnServerApi, TurnServerPollRet};
use turn_server_proto::server::TurnServer;
use turn_server_proto::types::Instant as TurnInstant;
use turn_server_proto::types::stun::TransportType;

use super::credentials::{self, stun_username};
use super::peers::{Peers, RelayPorts};
use crate::ratelimit::TokenBucket;

/// Relay ports one user (one credential) may hold at once: a page has a connection or two per
/// call, each with an allocation per transport it tries.
pub const ALLOCATIONS_PER_USER: usize = 10;
/// What one client may send through the relay, bytes a second (16 Mbit/s: a call's video is a
/// few), in bursts of two seconds' worth.
const CLIENT_RATE: f64 = 2_000_000.0;
/// What waits for a listener's task; more is dropped, as the network would.
const QUEUE: usize = 4096;
/// Bytes waiting to be written to one TCP client; more are dropped.
const TCP_WRITE_QUEUE: usize = 512;
/// A TCP client silent this long is gone (allocations are refreshed every few minutes, and
/// media flows meanwhile).
const TCP_SILENT_AT_MOST: Duration = Duration::from_secs(600);

/// What a listener's task is handed.
enum Input {
    /// A message from a client: a datagram, or one read whole off its TCP connection (empty: the
    /// connection closed).
    Client { from: SocketAddr, data: Vec<u8> },
    /// A TCP client connected: where its bytes go.
    Connected { from: SocketAddr, writer: mpsc::Sender<Vec<u8>> },
    /// A datagram at one of the relay ports.
    Peer { relayed: SocketAddr, from: SocketAddr, data: Vec<u8> },
}

/// What every listener shares.
pub struct Settings {
    pub secret: String,
    pub realm: String,
    pub peers: Peers,
    /// The address the relay ports are reached at, and their range.
    pub relay_ip: IpAddr,
    pub relay_ports: RangeInclusive<u16>,
    /// The relay ports open now, every listener's: peers of each other.
    pub open: RelayPorts,
}

/// Serves TURN over UDP on `socket`, which clients reach at `listen`.
pub fn serve_udp(socket: UdpSocket, listen: SocketAddr, settings: Arc<Settings>) {
    let socket = Arc::new(socket);
    let (inputs, queue) = mpsc::channel(QUEUE);
    let task = Listener::new(TransportType::Udp, listen, settings, inputs.clone(), Some(socket.clone()));
    tokio::spawn(task.run(queue));
    tokio::spawn(async move {
        let mut buffer = vec![0; 65_536];
        loop {
            let (n, from) = match socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                // An ICMP error from an earlier send, on some systems: not ours to end.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
                Err(e) => {
                    tracing::error!("the TURN port stopped receiving: {e}");
                    return;
                }
            };
            if inputs.try_send(Input::Client { from, data: buffer[..n].to_vec() }).is_err() && inputs.is_closed() {
                return;
            }
        }
    });
}

/// Serves TURN over TCP on `listener`, which clients reach at `listen`.
pub fn serve_tcp(listener: TcpListener, listen: SocketAddr, settings: Arc<Settings>) {
    let streams = Streams::new(listen, settings);
    tokio::spawn(async move {
        loop {
            let Ok((stream, from)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            streams.serve(stream, from);
        }
    });
}

/// A stream listener's task (TURN over TCP, or over TLS on the web port), taking its clients'
/// connections from whoever accepts them.
#[derive(Clone)]
pub struct Streams {
    inputs: mpsc::Sender<Input>,
}

impl Streams {
    /// A task for the streams clients open to `listen`.
    pub fn new(listen: SocketAddr, settings: Arc<Settings>) -> Self {
        let (inputs, queue) = mpsc::channel(QUEUE);
        let task = Listener::new(TransportType::Tcp, listen, settings, inputs.clone(), None);
        tokio::spawn(task.run(queue));
        Self { inputs }
    }

    /// Serves one client's connection, from `from`, until it closes.
    pub fn serve<S>(&self, stream: S, from: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        tokio::spawn(serve_connection(stream, from, self.inputs.clone()));
    }
}

/// One stream client: its messages to the listener's task, what the task has for it back.
async fn serve_connection<S>(stream: S, from: SocketAddr, inputs: mpsc::Sender<Input>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, mut writer) = tokio::io::split(stream);
    let (writes, mut to_write) = mpsc::channel::<Vec<u8>>(TCP_WRITE_QUEUE);
    if inputs.send(Input::Connected { from, writer: writes }).await.is_err() {
        return;
    }
    let mut reader = tokio::io::BufReader::new(reader);
    let read = async {
        loop {
            match tokio::time::timeout(TCP_SILENT_AT_MOST, read_message(&mut reader)).await {
                Ok(Ok(data)) => {
                    if inputs.send(Input::Client { from, data }).await.is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    };
    let write = async {
        while let Some(bytes) = to_write.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
            // Over TLS, written is not yet sent.
            if to_write.is_empty() && writer.flush().await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = read => {}
        () = write => {}
    }
    let _ = inputs.send(Input::Client { from, data: Vec::new() }).await;
}

/// One message off a TURN client's TCP stream: a STUN message (its length in its header, after
/// 20 bytes of it) or channel data (after 4, padded to four bytes over TCP, RFC 5766 11.5: the
/// padding is read and left out, as the protocol's parser does not expect it).
async fn read_message(reader: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let mut header = [0; 4];
    reader.read_exact(&mut header).await?;
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let (message_length, read) = match header[0] >> 6 {
        0 => (20 + length, 20 + length),
        1 => (4 + length, 4 + length.next_multiple_of(4)),
        _ => return Err(std::io::ErrorKind::InvalidData.into()),
    };
    let mut message = vec![0; read];
    message[..4].copy_from_slice(&header);
    reader.read_exact(&mut message[4..]).await?;
    message.truncate(message_length);
    Ok(message)
}

/// A relay port: its socket, and the task that hands what arrives at it to the listener.
struct Relay {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
    /// Whose it is.
    user: String,
    port: u16,
    settings: Arc<Settings>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.reader.abort();
        self.settings.open.closed(self.port);
    }
}

/// One listening transport's task.
struct Listener {
    server: TurnServer,
    transport: TransportType,
    listen: SocketAddr,
    settings: Arc<Settings>,
    /// For the relay ports' readers.
    inputs: mpsc::Sender<Input>,
    /// The UDP listener's socket, to answer clients; TCP clients are answered on their connection.
    udp: Option<Arc<UdpSocket>>,
    connections: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    relays: HashMap<SocketAddr, Relay>,
    /// The user each client last named (what its allocations count against), and its rate.
    clients: HashMap<SocketAddr, (String, TokenBucket)>,
    /// The user names given their password (which the protocol keeps for good).
    users: HashSet<String>,
    next_port: u16,
    start: std::time::Instant,
}

impl Listener {
    fn new(
        transport: TransportType,
        listen: SocketAddr,
        settings: Arc<Settings>,
        inputs: mpsc::Sender<Input>,
        udp: Option<Arc<UdpSocket>>,
    ) -> Self {
        let server = TurnServer::new(transport, listen, settings.realm.clone());
        let span = u32::from(settings.relay_ports.end() - settings.relay_ports.start()) + 1;
        let next_port = settings.relay_ports.start() + (rand::random::<u32>() % span) as u16;
        Self {
            server,
            transport,
            listen,
            settings,
            inputs,
            udp,
            connections: HashMap::new(),
            relays: HashMap::new(),
            clients: HashMap::new(),
            users: HashSet::new(),
            next_port,
            start: std::time::Instant::now(),
        }
    }

    fn now(&self) -> TurnInstant {
        TurnInstant::from_nanos(self.start.elapsed().as_nanos() as i64)
    }

    async fn run(mut self, mut queue: mpsc::Receiver<Input>) {
        loop {
            let wake = self.drive();
            tokio::select! {
                input = queue.recv() => match input {
                    Some(input) => self.input(input),
                    None => return,
                },
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::Connected { from, writer } => {
                self.connections.insert(from, writer);
            }
            Input::Client { from, data } => {
                if data.is_empty() {
                    self.connections.remove(&from);
                    self.clients.remove(&from);
                } else if !self.admits(from, &data) {
                    return;
                }
                let transmit = Transmit { data, transport: self.transport, from, to: self.listen };
                if let Some(out) = self.server.recv(transmit, now) {
                    self.send(out.build());
                }
            }
            Input::Peer { relayed, from, data } => {
                if !self.settings.peers.allows(from) {
                    return;
                }
                let transmit = Transmit { data, transport: TransportType::Udp, from, to: relayed };
                if let Some(out) = self.server.recv(transmit, now) {
                    self.send(out.build());
                }
            }
        }
    }

    /// Whether a client's message goes on to the protocol: within its rate, and, if it names a
    /// user, a user of ours whose credential is still valid (then given its password).
    fn admits(&mut self, from: SocketAddr, data: &[u8]) -> bool {
        let at = std::time::Instant::now();
        let username = stun_username(data);
        if let Some(username) = username {
            let now_secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let checked = credentials::password(&self.settings.secret, username, now_secs).and_then(|password| {
                match credentials::integrity_holds(data, username, &self.settings.realm, &password) {
                    Some(false) => Err(credentials::Refused::WrongPassword),
                    _ => Ok(password),
                }
            });
            match checked {
                Ok(password) => {
                    if self.users.insert(username.to_owned()) {
                        self.server.add_user(username.to_owned(), password);
                    }
                }
                // Answered at once: the protocol would leave it unanswered, and the browser
                // would wait 40 s before it gave up on the server.
                Err(refused) => {
                    tracing::debug!(%from, ?refused, "a TURN request refused");
                    if let Some(response) = credentials::unauthorized(data) {
                        let to = from;
                        self.send(Transmit { data: response, transport: self.transport, from: self.listen, to });
                    }
                    return false;
                }
            }
        }
        let (user, rate) = self
            .clients
            .entry(from)
            .or_insert_with(|| (String::new(), TokenBucket::new_at((CLIENT_RATE * 2.0) as u32, CLIENT_RATE, at)));
        if let Some(username) = username {
            username.clone_into(user);
        }
        rate.try_take_many_at(data.len(), at)
    }

    /// Runs the protocol until it waits for time: what it asks is done, what it sends sent.
    fn drive(&mut self) -> std::time::Instant {
        loop {
            let now = self.now();
            while let Some(transmit) = self.server.poll_transmit(now) {
                self.send(transmit);
            }
            match self.server.poll(now) {
                TurnServerPollRet::WaitUntil(at) => {
                    // Nothing to wait for is a poll a minute.
                    let wake = at.to_std(self.start);
                    return wake.min(std::time::Instant::now() + Duration::from_secs(60));
                }
                TurnServerPollRet::AllocateSocket {
                    transport,
                    listen_addr,
                    client_addr,
                    allocation_transport,
                    family,
                } => {
                    let relayed = self.allocate(client_addr, allocation_transport);
                    self.server.allocated_socket(
                        transport,
                        listen_addr,
                        client_addr,
                        allocation_transport,
                        family,
                        relayed,
                        now,
                    );
                }
                TurnServerPollRet::TcpConnect { relayed_addr, peer_addr, listen_addr, client_addr } => {
                    // Relaying to peers over TCP (RFC 6062) is not offered: browsers relay UDP.
                    self.server.tcp_connected(
                        relayed_addr,
                        peer_addr,
                        listen_addr,
                        client_addr,
                        Err(TcpConnectError::Forbidden),
                        now,
                    );
                }
                TurnServerPollRet::TcpClose { local_addr, remote_addr } => {
                    if local_addr == self.listen {
                        self.connections.remove(&remote_addr);
                    }
                }
                TurnServerPollRet::SocketClose { listen_addr, .. } => {
                    self.relays.remove(&listen_addr);
                }
            }
        }
    }

    /// A relay port for `client`, from the range, if its user has ports to spare.
    fn allocate(&mut self, client: SocketAddr, transport: TransportType) -> Result<SocketAddr, SocketAllocateError> {
        if transport != TransportType::Udp {
            return Err(SocketAllocateError::InsufficientCapacity);
        }
        if client.is_ipv4() != self.settings.relay_ip.is_ipv4() {
            return Err(SocketAllocateError::AddressFamilyNotSupported);
        }
        let user = self.clients.get(&client).map(|(user, _)| user.clone()).unwrap_or_default();
        if self.relays.values().filter(|r| r.user == user).count() >= ALLOCATIONS_PER_USER {
            tracing::info!(%client, user, "a TURN user holds all the relay ports it may");
            return Err(SocketAllocateError::InsufficientCapacity);
        }
        let ports = self.settings.relay_ports.clone();
        let span = u32::from(ports.end() - ports.start()) + 1;
        for _ in 0..span.min(100) {
            let port = self.next_port;
            self.next_port = if port >= *ports.end() { *ports.start() } else { port + 1 };
            let bind = SocketAddr::new(unspecified(self.settings.relay_ip), port);
            let Ok(socket) = std::net::UdpSocket::bind(bind) else { continue };
            let Ok(socket) = socket.set_nonblocking(true).and_then(|()| UdpSocket::from_std(socket)) else { continue };
            let socket = Arc::new(socket);
            let relayed = SocketAddr::new(self.settings.relay_ip, port);
            let reader = tokio::spawn(read_relay(socket.clone(), relayed, self.inputs.clone()));
            self.settings.open.opened(port);
            self.relays.insert(relayed, Relay { socket, reader, user, port, settings: self.settings.clone() });
            return Ok(relayed);
        }
        tracing::warn!("no relay port free in {ports:?}");
        Err(SocketAllocateError::InsufficientCapacity)
    }

    /// Sends what the protocol transmits: from a relay port to a peer it may reach, or to a
    /// client on its transport. Never waits: what cannot go at once is dropped.
    fn send(&mut self, transmit: Transmit<Vec<u8>>) {
        if let Some(relay) = self.relays.get(&transmit.from) {
            if self.settings.peers.allows(transmit.to) {
                let _ = relay.socket.try_send_to(&transmit.data, transmit.to);
            } else {
                tracing::debug!(peer = %transmit.to, "the relay refuses to send to the server's own network");
            }
            return;
        }
        match (&self.udp, self.connections.get(&transmit.to)) {
            (Some(socket), _) => {
                let _ = socket.try_send_to(&transmit.data, transmit.to);
            }
            (None, Some(connection)) => {
                let mut data = transmit.data;
                // Channel data is padded to four bytes over TCP (RFC 5766 11.5), as the protocol
                // leaves it to us: a browser reads the stream by that rule.
                if data.first().is_some_and(|first| first >> 6 == 1) {
                    data.resize(data.len().next_multiple_of(4), 0);
                }
                let _ = connection.try_send(data);
            }
            (None, None) => {}
        }
    }
}

fn unspecified(like: IpAddr) -> IpAddr {
    if like.is_ipv4() {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    }
}

/// Hands what arrives at a relay port to its listener's task.
async fn read_relay(socket: Arc<UdpSocket>, relayed: SocketAddr, inputs: mpsc::Sender<Input>) {
    let mut buffer = vec![0; 65_536];
    loop {
        let (n, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(_) => return,
        };
        if inputs.try_send(Input::Peer { relayed, from, data: buffer[..n].to_vec() }).is_err() && inputs.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_are_read_off_a_tcp_stream_whole_and_channel_data_without_its_padding() {
        let mut stream = Vec::new();
        // A STUN message of the longest length a header can say, channel data of 5 bytes padded to
        // 8, then one of 4 (no padding).
        let mut stun = vec![0x00, 0x01, 0xff, 0xff, 0x21, 0x12, 0xa4, 0x42];
        stun.resize(20 + 65_535, 7);
        stream.extend(&stun);
        stream.extend([0x40, 0x00, 0, 5, 1, 2, 3, 4, 5, 0, 0, 0]);
        stream.extend([0x40, 0x01, 0, 4, 9, 9, 9, 9]);
        let (mut near, far) = tokio::io::duplex(7);
        tokio::spawn(async move { near.write_all(&stream).await });
        let mut far = tokio::io::BufReader::new(far);
        assert_eq!(read_message(&mut far).await.unwrap(), stun);
        assert_eq!(read_message(&mut far).await.unwrap(), [0x40, 0x00, 0, 5, 1, 2, 3, 4, 5]);
        assert_eq!(read_message(&mut far).await.unwrap(), [0x40, 0x01, 0, 4, 9, 9, 9, 9]);
        assert!(read_message(&mut far).await.is_err(), "the stream ended");
    }

    #[tokio::test]
    async fn bytes_that_are_neither_stun_nor_channel_data_end_the_stream() {
        // Their first two bits say so: 00 begins a STUN message, 01 channel data.
        let (mut near, far) = tokio::io::duplex(64);
        near.write_all(&[0x80, 0x00, 0x00, 0x04, 1, 2, 3, 4]).await.unwrap();
        assert_eq!(
            read_message(&mut tokio::io::BufReader::new(far)).await.unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }
}
