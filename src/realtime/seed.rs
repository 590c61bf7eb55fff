//! The seed's chat events, exactly as the original tutorial front end sends them.

use std::sync::Arc;

use socketioxide::extract::{AckSender, SocketRef};

use super::{Args, Hub, NO_ARGS, Session, reply};
use crate::validate::{self, ApiError};

pub(super) fn register(hub: &Arc<Hub>, s: &SocketRef, session: &Arc<Session>) {
    hub.on(s, session, "nickname", false, nickname);
    hub.on(s, session, "enter_room", false, enter_room);
    hub.on(s, session, "new_message", false, new_message);
}

/// `done()` on success, `done({ error })` otherwise; without a callback nothing is sent.
fn answer(ack: AckSender, result: Result<(), ApiError>) {
    match result {
        Ok(()) => reply(ack, &NO_ARGS),
        Err(e) => reply(ack, &e),
    }
}

async fn nickname(hub: Arc<Hub>, _: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let result = async {
        let name = validate::nickname(args.str(0, "nickname")?)?;
        hub.rename(&s, &name).await.map(drop)
    };
    answer(ack, result.await);
}

async fn enter_room(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let result = async {
        let room = validate::room_name(args.str(0, "room name")?)?;
        hub.enter(&s, &session, &room, false, false).await.map(drop)
    };
    answer(ack, result.await);
}

async fn new_message(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let result = async {
        let text = args.str(0, "message")?;
        let room = args.str(1, "room name")?;
        hub.post(&s, &session, room, text).await.map(drop)
    };
    answer(ack, result.await);
}
