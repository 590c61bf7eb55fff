//! The seed's events, exactly as the original tutorial front ends send them: its chat stage and
//! its one-to-one call stage.

use std::sync::Arc;

use super::{AckSender, Answer, Args, EventDef, EventKind, Flavour, Hub, NO_ARGS, Session, SocketRef, room_key};
use crate::signal::{Candidate, SessionDescription};
use crate::validate::{self, ApiError, ErrorCode};

pub(super) const EVENTS: &[EventDef] = &[
    EventDef { name: "nickname", kind: EventKind::Seed, run: |h, se, s, a, k| Box::pin(nickname(h, se, s, a, k)) },
    EventDef { name: "enter_room", kind: EventKind::Seed, run: |h, se, s, a, k| Box::pin(enter_room(h, se, s, a, k)) },
    EventDef {
        name: "new_message",
        kind: EventKind::Seed,
        run: |h, se, s, a, k| Box::pin(new_message(h, se, s, a, k)),
    },
    // The call stage: entering is the same, and signals go to everyone else in the room.
    EventDef { name: "join_room", kind: EventKind::Seed, run: |h, se, s, a, k| Box::pin(enter_room(h, se, s, a, k)) },
    EventDef { name: "offer", kind: EventKind::SeedSignal, run: |h, _, s, a, k| Box::pin(relay(h, s, a, k, "offer")) },
    EventDef {
        name: "answer",
        kind: EventKind::SeedSignal,
        run: |h, _, s, a, k| Box::pin(relay(h, s, a, k, "answer")),
    },
    EventDef { name: "ice", kind: EventKind::SeedSignal, run: |h, _, s, a, k| Box::pin(relay(h, s, a, k, "ice")) },
];

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
        let _ = hub.everywhere(&s, room_key(Flavour::Seed, &room)).emit(event, &signal).await;
        crate::metrics::COUNTERS.signal_relayed();
        answer.ok(&NO_ARGS);
        Ok(())
    };
    let result = result.await;
    answer.finish(result);
}
