//! What the two WebSocket clients of the benchmark (Socket.IO's, Janus's) share: the task that
//! moves their frames.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Sends what comes on `outgoing` and hands each text frame that arrives to `on_text`, whose
/// answer, if any, is sent back, until either side ends the connection; says why it ended.
pub async fn pump(
    mut ws: WebSocketStream<TcpStream>,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    mut on_text: impl FnMut(&str) -> Option<String>,
) -> String {
    loop {
        tokio::select! {
            text = outgoing.recv() => match text {
                Some(text) => if let Err(e) = ws.send(Message::text(text)).await { return e.to_string() },
                None => return "closed by this side".into(),
            },
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(close))) => {
                        return format!("closed by the server ({close:?}) at {} ms", crate::client::now_ns() / 1_000_000)
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return e.to_string(),
                    None => return "the connection ended".into(),
                };
                if let Some(answer) = on_text(text.as_str())
                    && let Err(e) = ws.send(Message::text(answer)).await
                {
                    return e.to_string();
                }
            }
        }
    }
}
