//! Every Socket.IO event name on the wire, declared once: what clients emit and what the server
//! pushes, in the seed's dialect and in Noom's. The web client declares Noom's in
//! `web/src/protocol.ts` (`Events`); a test below holds the two and `docs/protocol.md`, the exact
//! statement of the wire, to each other.

/// The seed's events, as the original tutorial app names them.
pub mod seed {
    pub const NICKNAME: &str = "nickname";
    pub const ENTER_ROOM: &str = "enter_room";
    pub const NEW_MESSAGE: &str = "new_message";
    /// The call stage's way in: the same as [`ENTER_ROOM`].
    pub const JOIN_ROOM: &str = "join_room";
    pub const OFFER: &str = "offer";
    pub const ANSWER: &str = "answer";
    pub const ICE: &str = "ice";
    /// Not the original's: the ICE servers to call with, TURN credentials included.
    pub const ICE_SERVERS: &str = "ice_servers";
    pub const WELCOME: &str = "welcome";
    pub const BYE: &str = "bye";
    pub const ROOM_CHANGE: &str = "room_change";

    /// Emitted by clients.
    pub const EMITTED: &[&str] = &[NICKNAME, ENTER_ROOM, NEW_MESSAGE, JOIN_ROOM, OFFER, ANSWER, ICE, ICE_SERVERS];
    /// Pushed by the server (`new_message` and the signals both ways).
    pub const PUSHED: &[&str] = &[WELCOME, BYE, NEW_MESSAGE, ROOM_CHANGE, OFFER, ANSWER, ICE];
}

/// Noom's own events.
pub mod noom {
    pub const USER_RENAME: &str = "user:rename";
    pub const ROOM_JOIN: &str = "room:join";
    pub const ROOM_LEAVE: &str = "room:leave";
    pub const CHAT_SEND: &str = "chat:send";
    pub const DIRECTORY_GET: &str = "directory:get";
    pub const CALL_JOIN: &str = "call:join";
    pub const CALL_MEDIA: &str = "call:media";
    pub const CALL_LEAVE: &str = "call:leave";
    /// Emitted to send a signal, pushed to deliver one.
    pub const RTC_SIGNAL: &str = "rtc:signal";
    /// Calls through the media server: the browser's offer in, the server's answer back.
    pub const SFU_JOIN: &str = "sfu:join";
    pub const SFU_ANSWER: &str = "sfu:answer";
    pub const SFU_VIEW: &str = "sfu:view";
    /// Running a meeting: hosts' controls, and everyone's hand.
    pub const ROOM_HOST: &str = "room:host";
    pub const ROOM_LOCK: &str = "room:lock";
    pub const ROOM_REMOVE: &str = "room:remove";
    pub const ROOM_END: &str = "room:end";
    pub const ROOM_HAND: &str = "room:hand";
    pub const CALL_MUTE: &str = "call:mute";
    pub const CALL_ASK: &str = "call:ask";
    pub const ROOM_WAITING_ROOM: &str = "room:waiting-room";
    pub const ROOM_ADMIT: &str = "room:admit";
    /// Emitted to react, pushed to show it.
    pub const ROOM_REACT: &str = "room:react";
    pub const ROOM_PASSWORD: &str = "room:password";
    pub const ROOM_REACTION: &str = "room:reaction";

    pub const SESSION: &str = "session";
    pub const DIRECTORY: &str = "directory";
    pub const PARTICIPANT_JOINED: &str = "participant:joined";
    pub const PARTICIPANT_LEFT: &str = "participant:left";
    pub const PARTICIPANT_UPDATED: &str = "participant:updated";
    /// Media-state changes in a large call, batched, for those who show them.
    pub const PARTICIPANTS_UPDATED: &str = "participants:updated";
    pub const CHAT_MESSAGE: &str = "chat:message";
    pub const CALL_ICE: &str = "call:ice";
    pub const ROOM_CLOSED: &str = "room:closed";
    /// A room's settings changed (it was locked or unlocked).
    pub const ROOM_UPDATED: &str = "room:updated";
    /// A host asks something of the one told.
    pub const CALL_ASKED: &str = "call:asked";
    /// To a room's hosts: who waits to enter it.
    pub const ROOM_WAITING: &str = "room:waiting";
    /// To one waiting: a host let them in, or turned them away.
    pub const ROOM_ADMITTED: &str = "room:admitted";
    pub const ROOM_REFUSED: &str = "room:refused";
    /// The media server offers a browser the tracks that came or went.
    pub const SFU_OFFER: &str = "sfu:offer";
    pub const SFU_SPEAKERS: &str = "sfu:speakers";
    /// The layers of its camera a browser is to send (the others nobody receives).
    pub const SFU_LAYERS: &str = "sfu:layers";
    /// The media server lost a browser's connection: it is out of the call.
    pub const SFU_CLOSED: &str = "sfu:closed";
    /// The node carrying a call's media is gone: the browser is to connect again.
    pub const SFU_MOVED: &str = "sfu:moved";
    /// To every socket, seed-flavoured too.
    pub const SERVER_RESTARTING: &str = "server:restarting";
    pub const SERVER_DISCONNECTED: &str = "server:disconnected";

    /// Emitted by clients.
    pub const EMITTED: &[&str] = &[
        USER_RENAME,
        ROOM_JOIN,
        ROOM_LEAVE,
        CHAT_SEND,
        DIRECTORY_GET,
        CALL_JOIN,
        CALL_MEDIA,
        CALL_LEAVE,
        RTC_SIGNAL,
        SFU_JOIN,
        SFU_ANSWER,
        SFU_VIEW,
        ROOM_HOST,
        ROOM_LOCK,
        ROOM_REMOVE,
        ROOM_END,
        ROOM_HAND,
        CALL_MUTE,
        CALL_ASK,
        ROOM_WAITING_ROOM,
        ROOM_ADMIT,
        ROOM_REACT,
        ROOM_PASSWORD,
    ];
    /// Pushed by the server.
    pub const PUSHED: &[&str] = &[
        SESSION,
        DIRECTORY,
        PARTICIPANT_JOINED,
        PARTICIPANT_LEFT,
        PARTICIPANT_UPDATED,
        PARTICIPANTS_UPDATED,
        CHAT_MESSAGE,
        RTC_SIGNAL,
        CALL_ICE,
        ROOM_CLOSED,
        ROOM_UPDATED,
        CALL_ASKED,
        ROOM_WAITING,
        ROOM_ADMITTED,
        ROOM_REFUSED,
        ROOM_REACTION,
        SFU_OFFER,
        SFU_SPEAKERS,
        SFU_LAYERS,
        SFU_CLOSED,
        SFU_MOVED,
        SERVER_RESTARTING,
        SERVER_DISCONNECTED,
    ];
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const WEB: &str = include_str!("../web/src/protocol.ts");
    const DOCS: &str = include_str!("../docs/protocol.md");

    /// The values of the web client's `Events` table.
    fn web_events() -> BTreeSet<&'static str> {
        let table = WEB.split("export const Events = {").nth(1).expect("protocol.ts declares Events");
        let table = table.split("} as const").next().unwrap();
        table.lines().filter_map(|line| line.split('"').nth(1)).collect()
    }

    #[test]
    fn the_web_client_declares_the_same_noom_events() {
        let server: BTreeSet<&str> = noom::EMITTED.iter().chain(noom::PUSHED).copied().collect();
        assert_eq!(web_events(), server, "web/src/protocol.ts's Events against src/events.rs");
    }

    #[test]
    fn the_protocol_document_states_every_event() {
        let all = seed::EMITTED.iter().chain(seed::PUSHED).chain(noom::EMITTED).chain(noom::PUSHED);
        for name in all {
            assert!(DOCS.contains(&format!("`{name}`")), "docs/protocol.md does not name `{name}`");
        }
    }

    #[test]
    fn every_event_the_server_answers_is_declared() {
        for name in seed::EMITTED.iter().chain(noom::EMITTED) {
            assert!(crate::requests::parse(name, &crate::requests::Args(Vec::new())).is_some(), "{name} is not read");
        }
        assert!(crate::requests::parse("no:such", &crate::requests::Args(Vec::new())).is_none());
    }
}
