//! The seed's first stage: one anonymous public chat over a plain WebSocket at `/ws`.
//!
//! Frames are JSON `{type: "nickname" | "new_message", payload}`; every message goes to everyone
//! connected, sender included, as the text `"<nickname>: <message>"`. Same limits as the rooms.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::Slot;
use crate::config::Config;
use crate::ratelimit::TokenBucket;
use crate::rooms::DEFAULT_NICKNAME;
use crate::validate;

const MAX_FRAME: usize = 16 * 1024;
/// Lines a reader may fall behind before it misses some (and is told so).
const BACKLOG: usize = 8192;

#[derive(Clone)]
pub struct PublicChat {
    lines: broadcast::Sender<Utf8Bytes>,
    config: Arc<Config>,
}

impl PublicChat {
    pub fn new(config: Arc<Config>) -> Self {
        Self { lines: broadcast::channel(BACKLOG).0, config }
    }
}

/// A frame a client sends.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum Frame {
    Nickname(String),
    NewMessage(String),
}

impl Frame {
    /// Reads and checks a text frame; the error is what the sender is told.
    pub fn read(text: &str) -> Result<Frame, String> {
        let frame: Frame = serde_json::from_str(text)
            .map_err(|_| r#"expected {"type": "nickname" | "new_message", "payload": "<text>"}"#.to_owned())?;
        match frame {
            Frame::Nickname(name) => validate::nickname(&name).map(Frame::Nickname),
            Frame::NewMessage(message) => validate::message(&message).map(|()| Frame::NewMessage(message)),
        }
        .map_err(|e| e.message)
    }
}

pub async fn upgrade(
    State(chat): State<PublicChat>,
    slot: Option<Extension<Arc<Slot>>>,
    ws: WebSocketUpgrade,
) -> Response {
    // Subscribed before the handshake answer goes out: a client that sees its connection open
    // gets every line sent after that.
    let lines = chat.lines.subscribe();
    ws.max_message_size(MAX_FRAME).max_frame_size(MAX_FRAME).on_upgrade(move |socket| async move {
        // The connection's place in its address's count, given back when it ends.
        let _slot = slot;
        serve(chat, lines, socket).await
    })
}

async fn serve(chat: PublicChat, mut lines: broadcast::Receiver<Utf8Bytes>, mut socket: WebSocket) {
    let mut nickname = DEFAULT_NICKNAME.to_owned();
    let mut rate = TokenBucket::new(chat.config.chat_burst, chat.config.chat_rate);
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => Utf8Bytes::from_static(""),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return,
                };
                if let Err(error) = handle(&chat, &mut nickname, &mut rate, &text)
                    && socket.send(Message::Text(format!("error: {error}").into())).await.is_err() {
                        return;
                    }
            }
            line = lines.recv() => match line {
                Ok(line) => if socket.send(Message::Text(line)).await.is_err() { return },
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let notice = format!("error: you fell behind and missed {missed} messages");
                    if socket.send(Message::Text(notice.into())).await.is_err() { return }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

fn handle(chat: &PublicChat, nickname: &mut String, rate: &mut TokenBucket, text: &str) -> Result<(), String> {
    match Frame::read(text)? {
        Frame::Nickname(name) => *nickname = name,
        Frame::NewMessage(message) => {
            if !rate.try_take() {
                return Err("too many messages; slow down".into());
            }
            // Nobody listening is not an error.
            let _ = chat.lines.send(format!("{nickname}: {message}").into());
        }
    }
    Ok(())
}
