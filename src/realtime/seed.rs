//! The seed's events, exactly as the original tutorial front ends send them: its chat stage and
//! its one-to-one call stage.

use std::sync::Arc;

use super::{AckSender, Answer, Args, EventKind, Flavour, Hub, NO_ARGS, Session, SocketRef, Source, room_key};
use crate::signal::{Candidate, SessionDescription};
use crate::validate::{self, ApiError, ErrorCode};

pub(super) fn register(hub: &Arc<Hub>, s: &SocketRef, session: &Arc<Session>) {
    hub.on(s, session, "nickname", EventKind::Seed, nickname);
    hub.on(s, session, "enter_room", EventKind::Seed, enter_room);
    hub.on(s, session, "new_message", EventKind::Seed, new_message);
    // The call stage: entering is the same, and signals go to everyone else in the room.
    hub.on(s, session, "join_room", EventKind::Seed, enter_room);
    hub.on(s, session, "offer", EventKind::SeedSignal, |hub, _, s, args, ack| relay(hub, s, args, ack, "offer"));
    hub.on(s, session, "answer", EventKind::SeedSignal, |hub, _, s, args, ack| relay(hub, s, args, ack, "answer"));
    hub.on(s, session, "ice", EventKind::SeedSignal, |hub, _, s, args, ack| relay(hub, s, args, ack, "ice"));
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

/// `offer(description, roomName)`, `answer(description, roomName)` or `ice(candidate, roomName)`:
/// relayed, rebuilt from its known fields, to the seed sockets in the room but the sender.
async fn relay(hub: Arc<Hub>, s: SocketRef, args: Args, ack: AckSender, event: &'static str) {
    let mut answer = Answer::new(ack);
    let result = async {
        let signal = args.0.first().ok_or_else(|| ApiError::bad_request(format!("the {event} is missing")))?;
        let signal = if event == "ice" {
            serde_json::to_value(Candidate::parse(signal)?)
        } else {
            serde_json::to_value(SessionDescription::parse(signal)?)
        }
        .map_err(|_| ApiError::bad_request("the signal could not be read"))?;
        let room = validate::room_name(args.str(1, "room name")?)?;
        if !hub.rooms.lock().is_member(s.id, &room) {
            return Err(ApiError::new(ErrorCode::NotInRoom, format!("not in room {room:?}")));
        }
        let _ = hub.to(Source::Socket(&s), room_key(Flavour::Seed, &room)).emit(event, &signal).await;
        answer.ok(&NO_ARGS);
        Ok(())
    };
    let result = result.await;
    answer.finish(result);
}
