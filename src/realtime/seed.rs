//! The seed's chat events, exactly as the original tutorial front end sends them.

use std::sync::Arc;

use socketioxide::extract::{AckSender, SocketRef};

use super::{Answer, Args, Hub, NO_ARGS, Session};
use crate::validate;

pub(super) fn register(hub: &Arc<Hub>, s: &SocketRef, session: &Arc<Session>) {
    hub.on(s, session, "nickname", false, nickname);
    hub.on(s, session, "enter_room", false, enter_room);
    hub.on(s, session, "new_message", false, new_message);
}

// Each answers `done()` on success and `done({ error })` otherwise; without a callback nothing
// is sent.

async fn nickname(hub: Arc<Hub>, _: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        let name = validate::nickname(args.str(0, "nickname")?)?;
        hub.rename(&s, &name).await?;
        answer.ok(&NO_ARGS);
        Ok(())
    };
    let result = result.await;
    answer.finish(result);
}

async fn enter_room(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        let room = validate::room_name(args.str(0, "room name")?)?;
        hub.enter(&s, &session, &room, false, |_, _| answer.ok(&NO_ARGS)).await
    };
    let result = result.await;
    answer.finish(result);
}

async fn new_message(hub: Arc<Hub>, session: Arc<Session>, s: SocketRef, args: Args, ack: AckSender) {
    let mut answer = Answer::new(ack);
    let result = async {
        let text = args.str(0, "message")?;
        let room = args.str(1, "room name")?;
        hub.post(&s, &session, room, text, |_| answer.ok(&NO_ARGS)).await
    };
    let result = result.await;
    answer.finish(result);
}
