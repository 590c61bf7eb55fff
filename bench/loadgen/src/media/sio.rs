//! A Socket.IO v5 client over a WebSocket (Engine.IO v4), enough for a call's signalling: events
//! with acknowledgements, and the server's pushes handed over in order. Runs on the generator's
//! one thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Acks = Rc<RefCell<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Socket {
    out: mpsc::UnboundedSender<String>,
    acks: Acks,
    next_ack: Cell<u64>,
}

/// A push: the event's name and its one argument.
pub type Push = (String, Value);

/// The last push of a connection that ended, with why.
pub const CLOSED: &str = "connection:closed";

impl Socket {
    /// Connects to the server at `http_addr` and opens the main namespace.
    pub async fn connect(http_addr: std::net::SocketAddr) -> Result<(Socket, mpsc::UnboundedReceiver<Push>)> {
        let url = format!("ws://{http_addr}/socket.io/?EIO=4&transport=websocket");
        let tcp = tokio::net::TcpStream::connect(http_addr).await.with_context(|| format!("cannot reach {url}"))?;
        tcp.set_nodelay(true)?;
        let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), tcp).await?;
        let open = next_text(&mut ws).await?;
        if !open.starts_with('0') {
            bail!("expected Engine.IO's open packet, got {open:?}");
        }
        ws.send(Message::text("40")).await?;
        let connected = loop {
            match next_text(&mut ws).await? {
                ping if ping == "2" => ws.send(Message::text("3")).await?,
                text => break text,
            }
        };
        if !connected.starts_with("40") {
            bail!("the namespace refused the connection: {connected:?}");
        }
        let (out, outgoing) = mpsc::unbounded_channel::<String>();
        let (pushes, pushed) = mpsc::unbounded_channel();
        let acks: Acks = Rc::default();
        let answered = acks.clone();
        tokio::task::spawn_local(async move {
            let why = super::websocket::pump(ws, outgoing, |text| {
                // Engine.IO's ping, answered with its pong.
                if text == "2" {
                    return Some("3".into());
                }
                read_packet(text, &answered, &pushes);
                None
            })
            .await;
            // Whoever waits learns why nothing more will come.
            let _ = pushes.send((CLOSED.into(), Value::String(why)));
            answered.borrow_mut().clear();
        });
        Ok((Socket { out, acks, next_ack: Cell::new(0) }, pushed))
    }

    /// Sends `event` and waits for its acknowledgement; an `{ error }` answer is an error.
    pub async fn call(&self, event: &str, data: Value) -> Result<Value> {
        let id = self.next_ack.get();
        self.next_ack.set(id + 1);
        let (answer, answered) = oneshot::channel();
        self.acks.borrow_mut().insert(id, answer);
        self.send(format!("42{id}{}", serde_json::json!([event, data])))?;
        let answer = answered.await.map_err(|_| anyhow!("the connection closed before {event} was answered"))?;
        if let Some(error) = answer.get("error") {
            bail!("{event} refused: {error}");
        }
        Ok(answer)
    }

    /// Sends `event` with no acknowledgement.
    pub fn emit(&self, event: &str, data: Value) -> Result<()> {
        self.send(format!("42{}", serde_json::json!([event, data])))
    }

    fn send(&self, frame: String) -> Result<()> {
        self.out.send(frame).map_err(|_| anyhow!("the Socket.IO connection is closed"))
    }
}

async fn next_text<S>(ws: &mut S) -> Result<String>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await.context("the server closed the connection")?? {
            Message::Text(text) => return Ok(text.to_string()),
            Message::Close(_) => bail!("the server closed the connection"),
            _ => {}
        }
    }
}

/// An event (`42["name",arg]`) goes to the pushes, an acknowledgement (`43<id>[arg]`) to whoever
/// waits for it; anything else is of no interest here.
fn read_packet(text: &str, acks: &Acks, pushes: &mpsc::UnboundedSender<Push>) {
    if let Some(rest) = text.strip_prefix("43") {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (Ok(id), Ok(Value::Array(mut args))) =
            (rest[..digits].parse::<u64>(), serde_json::from_str(&rest[digits..]))
        else {
            return;
        };
        if let Some(answer) = acks.borrow_mut().remove(&id) {
            let _ = answer.send(if args.is_empty() { Value::Null } else { args.swap_remove(0) });
        }
    } else if let Some(rest) = text.strip_prefix("42")
        && let Ok(Value::Array(mut args)) = serde_json::from_str(rest)
        && args.len() >= 2
        && let Value::String(event) = args.swap_remove(0)
    {
        let _ = pushes.send((event, args.swap_remove(0)));
    }
}
