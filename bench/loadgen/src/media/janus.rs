//! Janus's VideoRoom, as a self-hoster installs it (Debian's `janus` 1.1): started with a
//! configuration the benchmark writes (the VideoRoom plugin and the WebSocket transport only,
//! host candidates on loopback, no session timeout), and a client of its WebSocket API.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::servers::{Kind, Server};

/// Starts `bin` on `cpu`, its configuration and log in `logs`, its API on a free port, its
/// media on `address`.
pub fn start(bin: &Path, address: IpAddr, cpu: Option<usize>, logs: &Path) -> Result<Server> {
    let library = library().context(
        "cannot find Janus's VideoRoom plugin (libjanus_videoroom.so): install Debian's janus package \
         (apt-get install janus)",
    )?;
    let dir = std::path::absolute(logs.join("janus"))?;
    for (folder, name, from) in
        [("plugins", "libjanus_videoroom.so", "plugins"), ("transports", "libjanus_websockets.so", "transports")]
    {
        let folder = dir.join(folder);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
        std::os::unix::fs::symlink(library.join(from).join(name), folder.join(name))?;
    }
    std::fs::create_dir_all(dir.join("none"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let folder = |name: &str| dir.join(name).display().to_string();
    // Janus's verbose level (4): a run where the VideoRoom refuses subscribers a stream it had
    // announced (twice in some twenty steps, cause not found) leaves in its log what Janus saw.
    let files = [
        (
            "janus.jcfg",
            format!(
                "general: {{\n  configs_folder = \"{}\"\n  plugins_folder = \"{}\"\n  transports_folder = \"{}\"\n  \
                 events_folder = \"{none}\"\n  loggers_folder = \"{none}\"\n  debug_level = 4\n  session_timeout = 0\n}}\n\
                 certificates: {{\n}}\nmedia: {{\n}}\n\
                 nat: {{\n  ice_enforce_list = \"{address}\"\n  ignore_mdns = true\n}}\n\
                 plugins: {{\n}}\ntransports: {{\n}}\nevents: {{\n}}\nloggers: {{\n}}\n",
                dir.display(),
                folder("plugins"),
                folder("transports"),
                none = folder("none"),
            ),
        ),
        (
            "janus.transport.websockets.jcfg",
            format!(
                "general: {{\n  json = \"compact\"\n  ws = true\n  ws_port = {port}\n  ws_ip = \"127.0.0.1\"\n  wss = false\n}}\n\
                 admin: {{\n  admin_ws = false\n}}\n"
            ),
        ),
        // Rooms and feeds named by strings, as Noom's rooms are.
        ("janus.plugin.videoroom.jcfg", "general: {\n  string_ids = true\n}\n".to_string()),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).with_context(|| format!("cannot write {name}"))?;
    }
    let config = dir.join("janus.jcfg");
    let args = ["--configs-folder", &folder(""), "--config", &config.display().to_string(), "--disable-colors"];
    Server::start_at(Kind::Janus, bin, &args, SocketAddr::from(([127, 0, 0, 1], port)), cpu, logs)
}

/// Where Janus's plugins and transports are installed.
fn library() -> Option<PathBuf> {
    let mut places = vec![PathBuf::from("/usr/lib/janus"), PathBuf::from("/usr/local/lib/janus")];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        places.extend(entries.flatten().map(|e| e.path().join("janus")));
    }
    places.into_iter().find(|p| p.join("plugins/libjanus_videoroom.so").exists())
}

/// The host's first IPv4 address that is not loopback's, where Janus's media and its
/// participants' meet: Janus gathers no candidate on loopback (and then gathers on every
/// interface), and a socket on 127.0.0.1 cannot reach another address. Traffic between two
/// addresses of the host goes through the loopback device all the same.
pub fn host_address() -> Result<IpAddr> {
    let mut found = None;
    // SAFETY: getifaddrs fills a list that is read here and freed once.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            bail!("cannot list the host's addresses: {}", std::io::Error::last_os_error());
        }
        let mut at = list;
        while !at.is_null() && found.is_none() {
            let entry = &*at;
            let up = entry.ifa_flags & libc::IFF_UP as u32 != 0 && entry.ifa_flags & libc::IFF_LOOPBACK as u32 == 0;
            if up && !entry.ifa_addr.is_null() && i32::from((*entry.ifa_addr).sa_family) == libc::AF_INET {
                let ipv4 = &*(entry.ifa_addr as *const libc::sockaddr_in);
                found = Some(Ipv4Addr::from(u32::from_be(ipv4.sin_addr.s_addr)));
            }
            at = entry.ifa_next;
        }
        libc::freeifaddrs(list);
    }
    Ok(IpAddr::V4(found.context("the host has no IPv4 address besides loopback's, where Janus would gather")?))
}

type Waiting = Rc<RefCell<HashMap<String, oneshot::Sender<Value>>>>;

/// A session of Janus's API over its WebSocket, with its requests answered by transaction.
pub struct Janus {
    out: mpsc::UnboundedSender<String>,
    waiting: Waiting,
    next: Cell<u64>,
    session: Cell<u64>,
}

/// What Janus says that answers no request (a hangup, a slow link); the last says why the
/// connection ended.
pub type Pushed = mpsc::UnboundedReceiver<Value>;

impl Janus {
    /// Connects to the API at `addr` and creates a session.
    pub async fn connect(addr: SocketAddr) -> Result<(Janus, Pushed)> {
        let mut request = format!("ws://{addr}/").into_client_request()?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse()?);
        let tcp =
            tokio::net::TcpStream::connect(addr).await.with_context(|| format!("cannot reach Janus at {addr}"))?;
        tcp.set_nodelay(true)?;
        let (ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
        let (out, outgoing) = mpsc::unbounded_channel::<String>();
        let (pushes, pushed) = mpsc::unbounded_channel();
        let waiting: Waiting = Rc::default();
        let answered = waiting.clone();
        tokio::task::spawn_local(async move {
            let why = super::websocket::pump(ws, outgoing, |text| {
                let Ok(reply) = serde_json::from_str::<Value>(text) else { return None };
                // An ack only says that an answer will come as an event.
                if reply["janus"] == "ack" {
                    return None;
                }
                let waiter = reply["transaction"].as_str().and_then(|t| answered.borrow_mut().remove(t));
                match waiter {
                    Some(waiter) => drop(waiter.send(reply)),
                    None => drop(pushes.send(reply)),
                }
                None
            })
            .await;
            let _ = pushes.send(json!({ "janus": "closed", "reason": why }));
            answered.borrow_mut().clear();
        });
        let janus = Janus { out, waiting, next: Cell::new(0), session: Cell::new(0) };
        let created = janus.request(json!({ "janus": "create" })).await?;
        janus.session.set(created["data"]["id"].as_u64().context("Janus created no session")?);
        Ok((janus, pushed))
    }

    /// Sends `request` in this session and waits for its answer; Janus's errors are errors.
    async fn request(&self, mut request: Value) -> Result<Value> {
        let transaction = self.next.get().to_string();
        self.next.set(self.next.get() + 1);
        request["transaction"] = json!(transaction);
        if self.session.get() != 0 {
            request["session_id"] = json!(self.session.get());
        }
        let (answer, answered) = oneshot::channel();
        self.waiting.borrow_mut().insert(transaction, answer);
        self.out.send(request.to_string()).map_err(|_| anyhow!("the connection to Janus closed"))?;
        let reply = answered.await.map_err(|_| anyhow!("the connection to Janus closed before it answered"))?;
        if reply["janus"] == "error" {
            bail!("Janus refused {}: {}", request["janus"], reply["error"]);
        }
        Ok(reply)
    }

    /// A new handle on the VideoRoom plugin.
    pub async fn attach(&self) -> Result<u64> {
        let attached = self.request(json!({ "janus": "attach", "plugin": "janus.plugin.videoroom" })).await?;
        attached["data"]["id"].as_u64().context("Janus attached no handle")
    }

    /// A message to the plugin through `handle`: its answer, and the SDP that came with it.
    pub async fn message(&self, handle: u64, body: Value, jsep: Option<Value>) -> Result<(Value, Option<Value>)> {
        let mut request = json!({ "janus": "message", "handle_id": handle, "body": body });
        if let Some(jsep) = jsep {
            request["jsep"] = jsep;
        }
        let mut reply = self.request(request).await?;
        let data = reply["plugindata"]["data"].take();
        if let Some(error) = data.get("error") {
            bail!("the VideoRoom refused {}: {error}", body["request"]);
        }
        Ok((data, reply.get_mut("jsep").map(Value::take)))
    }
}
