//! What each client event asks for: its arguments read, typed and checked before anything else
//! happens. This is the one place where a payload from the network becomes a request; it holds
//! no state and does no IO, so the fuzzer drives it as the server does.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::events::{noom, seed};
use crate::rooms::{Ask, Media};
use crate::signal::{Candidate, SFU_SDP_MAX, SessionDescription, Signal};
use crate::validate::{self, ApiError, ErrorCode};

/// All the arguments of an event, whatever their number.
#[derive(Debug)]
pub struct Args(pub Vec<Value>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element()? {
                    args.push(arg);
                }
                Ok(Args(args))
            }
        }
        // socketioxide hands a tuple every argument (after the event name); anything else gets
        // only the first.
        d.deserialize_tuple(usize::MAX, Visitor)
    }
}

impl Args {
    fn str(&self, i: usize, what: &str) -> Result<&str, ApiError> {
        match self.0.get(i) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(ApiError::bad_request(format!("{what} must be a string"))),
            None => Err(ApiError::bad_request(format!("{what} is missing"))),
        }
    }

    /// The first argument as a request object; no argument reads as `{}`.
    fn object<T: for<'de> Deserialize<'de>>(&self) -> Result<T, ApiError> {
        let value = match self.0.first() {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(ApiError::bad_request("the argument must be an object")),
        };
        serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("bad request: {e}")))
    }
}

/// The seed's call-stage signals, relayed to everyone else in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedSignal {
    Offer,
    Answer,
    Ice,
}

impl SeedSignal {
    pub fn event(self) -> &'static str {
        match self {
            SeedSignal::Offer => seed::OFFER,
            SeedSignal::Answer => seed::ANSWER,
            SeedSignal::Ice => seed::ICE,
        }
    }
}

/// An event's request, its names and texts valid (room names and nicknames trimmed).
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// The seed's `nickname(name, done)`.
    Nickname {
        nickname: String,
    },
    /// The seed's `enter_room(room, done)` and `join_room(room, done)`.
    EnterRoom {
        room: String,
    },
    /// The seed's `new_message(text, room, done)`.
    NewMessage {
        text: String,
        room: String,
    },
    /// The seed's `offer(description, room)`, `answer(description, room)`, `ice(candidate, room)`:
    /// the signal rebuilt from its known fields.
    SeedSignal {
        kind: SeedSignal,
        signal: Value,
        room: String,
    },
    Rename {
        nickname: String,
    },
    Join {
        room: String,
        unlisted: bool,
        nickname: Option<String>,
        /// The room's password, for a room that has one.
        password: Option<String>,
        /// The room's host key (from its host link): its giver hosts it.
        host_key: Option<String>,
        /// The one opening the room asks for a host key.
        with_host_key: bool,
    },
    Leave {
        room: Option<String>,
    },
    Send {
        room: String,
        text: String,
    },
    Directory,
    /// The seed dialect's `ice_servers`.
    IceServers,
    CallJoin {
        room: String,
        media: Media,
    },
    CallMedia {
        room: String,
        media: Media,
    },
    CallLeave {
        room: String,
    },
    /// `to` as sent: whether it names a peer is the room state's to say.
    Signal {
        room: String,
        to: String,
        signal: Signal,
    },
    /// A browser's offer to the media server (`sfu:join`), or its answer to the server's
    /// (`sfu:answer`): the SDP as sent, within [`SFU_SDP_MAX`]; whether it can be used is the media
    /// server's to say.
    SfuJoin {
        room: String,
        sdp: String,
        /// The tiles it shows already, as in [`Request::SfuView`], if it said.
        tiles: Option<Vec<(String, u32)>>,
    },
    SfuAnswer {
        room: String,
        sdp: String,
    },
    /// The others' tiles the browser shows, each by person id as sent and its height in device
    /// pixels; anyone not listed is not shown.
    SfuView {
        room: String,
        tiles: Vec<(String, u32)>,
        /// Whose entries in its list of people (with their media state) are on screen, by id as
        /// sent.
        people: Vec<String>,
    },
    /// Running a meeting: `room:host`, `room:lock`, `room:remove`, `room:end`, `room:hand`,
    /// `call:mute`, `call:ask`.
    Meeting {
        room: String,
        control: Control,
    },
}

/// A host's control, or someone's hand (see [`crate::rooms::meeting`]). Whom it aims at is by
/// person id as sent: whether it names someone in the room is the room state's to say.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Makes `id` a host, or takes it back.
    Host {
        id: String,
        host: bool,
    },
    Lock {
        locked: bool,
    },
    /// Takes `id` out of the room; with `bar`, for as long as it is open.
    Remove {
        id: String,
        bar: bool,
    },
    /// Ends the meeting: everyone is taken out.
    End,
    /// The asker's own hand.
    Hand {
        raised: bool,
    },
    /// Mutes `id`, or everyone in the call but the hosts.
    Mute {
        id: Option<String>,
    },
    Ask {
        id: String,
        ask: Ask,
    },
    WaitingRoom {
        on: bool,
    },
    /// Lets in someone waiting, or turns them away.
    Admit {
        id: String,
        admit: bool,
    },
    /// One of [`REACTIONS`], shown over the sender for a few seconds.
    React {
        emoji: &'static str,
    },
    /// Sets the room's password, or takes it away (`None`).
    Password {
        password: Option<String>,
    },
}

/// The reactions there are.
pub const REACTIONS: [&str; 6] = ["👍", "👏", "😂", "❤️", "🎉", "😮"];

/// Most tiles one view may list: the largest call.
pub const VIEW_TILES_MAX: usize = 100;
/// The tallest tile a view may give, in device pixels.
pub const TILE_HEIGHT_MAX: u32 = 8192;

/// Reads the request of event `name` from its arguments; `None` for an event that does not
/// exist. The checks run in the order the protocol's errors imply: the shape, then each field.
pub fn parse(name: &str, args: &Args) -> Option<Result<Request, ApiError>> {
    let request = match name {
        seed::NICKNAME => nickname(args),
        seed::ENTER_ROOM | seed::JOIN_ROOM => enter_room(args),
        seed::NEW_MESSAGE => new_message(args),
        seed::OFFER => seed_signal(args, SeedSignal::Offer),
        seed::ANSWER => seed_signal(args, SeedSignal::Answer),
        seed::ICE => seed_signal(args, SeedSignal::Ice),
        seed::ICE_SERVERS => Ok(Request::IceServers),
        noom::USER_RENAME => rename(args),
        noom::ROOM_JOIN => join(args),
        noom::ROOM_LEAVE => leave(args),
        noom::CHAT_SEND => send(args),
        noom::DIRECTORY_GET => Ok(Request::Directory),
        noom::CALL_JOIN => call_join(args),
        noom::CALL_MEDIA => call_media(args),
        noom::CALL_LEAVE => call_leave(args),
        noom::RTC_SIGNAL => signal(args),
        noom::SFU_JOIN => sfu_join(args),
        noom::SFU_ANSWER => sfu_sdp(args).map(|(room, sdp)| Request::SfuAnswer { room, sdp }),
        noom::SFU_VIEW => sfu_view(args),
        noom::ROOM_HOST
        | noom::ROOM_LOCK
        | noom::ROOM_REMOVE
        | noom::ROOM_END
        | noom::ROOM_HAND
        | noom::CALL_MUTE
        | noom::CALL_ASK
        | noom::ROOM_WAITING_ROOM
        | noom::ROOM_ADMIT
        | noom::ROOM_REACT
        | noom::ROOM_PASSWORD => meeting(name, args),
        _ => return None,
    };
    Some(request)
}

fn nickname(args: &Args) -> Result<Request, ApiError> {
    Ok(Request::Nickname { nickname: validate::nickname(args.str(0, "nickname")?)? })
}

fn enter_room(args: &Args) -> Result<Request, ApiError> {
    Ok(Request::EnterRoom { room: validate::room_name(args.str(0, "room name")?)? })
}

fn new_message(args: &Args) -> Result<Request, ApiError> {
    let text = args.str(0, "message")?;
    let room = args.str(1, "room name")?;
    validate::message(text)?;
    Ok(Request::NewMessage { text: text.to_owned(), room: validate::room_name(room)? })
}

fn seed_signal(args: &Args, kind: SeedSignal) -> Result<Request, ApiError> {
    let event = kind.event();
    let signal = args.0.first().ok_or_else(|| ApiError::bad_request(format!("the {event} is missing")))?;
    let signal = match kind {
        SeedSignal::Ice => serde_json::to_value(Candidate::parse(signal)?),
        SeedSignal::Offer | SeedSignal::Answer => serde_json::to_value(SessionDescription::parse(signal)?),
    }
    .map_err(|_| ApiError::bad_request("the signal could not be read"))?;
    let room = validate::room_name(args.str(1, "room name")?)?;
    Ok(Request::SeedSignal { kind, signal, room })
}

fn rename(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        nickname: String,
    }
    let body: Body = args.object()?;
    Ok(Request::Rename { nickname: validate::nickname(&body.nickname)? })
}

fn join(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        #[serde(default)]
        unlisted: bool,
        nickname: Option<String>,
        password: Option<String>,
        #[serde(rename = "hostKey")]
        host_key: Option<String>,
        #[serde(default, rename = "withHostKey")]
        with_host_key: bool,
    }
    let body: Body = args.object()?;
    let room = validate::room_name(&body.room)?;
    let nickname = body.nickname.as_deref().map(validate::nickname).transpose()?;
    let password = body.password.map(password).transpose()?;
    if body.host_key.as_ref().is_some_and(|key| key.is_empty() || key.len() > HOST_KEY_MAX) {
        return Err(ApiError::bad_request(format!("a host key is 1 to {HOST_KEY_MAX} characters")));
    }
    Ok(Request::Join {
        room,
        unlisted: body.unlisted,
        nickname,
        password,
        host_key: body.host_key,
        with_host_key: body.with_host_key,
    })
}

/// A field that may be `null`, told apart from one that is missing (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Longest host key accepted (ours are 22 characters).
pub const HOST_KEY_MAX: usize = 64;

/// Longest room password, in characters.
pub const PASSWORD_MAX: usize = 128;

fn password(text: String) -> Result<String, ApiError> {
    match text.chars().count() {
        1..=PASSWORD_MAX => Ok(text),
        _ => Err(ApiError::bad_request(format!("a password is 1 to {PASSWORD_MAX} characters"))),
    }
}

fn leave(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: Option<String>,
    }
    let body: Body = args.object()?;
    Ok(Request::Leave { room: body.room.as_deref().map(validate::room_name).transpose()? })
}

fn send(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        text: String,
    }
    let body: Body = args.object()?;
    validate::message(&body.text)?;
    Ok(Request::Send { room: validate::room_name(&body.room)?, text: body.text })
}

fn call_join(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        #[serde(default)]
        media: Media,
    }
    let body: Body = args.object()?;
    Ok(Request::CallJoin { room: validate::room_name(&body.room)?, media: body.media })
}

fn call_media(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        audio: bool,
        video: bool,
        screen: bool,
    }
    let body: Body = args.object()?;
    let media = Media { audio: body.audio, video: body.video, screen: body.screen };
    Ok(Request::CallMedia { room: validate::room_name(&body.room)?, media })
}

fn meeting(name: &str, args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        id: Option<String>,
        host: Option<bool>,
        locked: Option<bool>,
        #[serde(default)]
        bar: bool,
        raised: Option<bool>,
        ask: Option<Ask>,
        on: Option<bool>,
        admit: Option<bool>,
        emoji: Option<String>,
        #[serde(default, deserialize_with = "present")]
        password: Option<Option<String>>,
    }
    let body: Body = args.object()?;
    let room = validate::room_name(&body.room)?;
    let missing = |what: &str| ApiError::bad_request(format!("{what} is missing"));
    let id = || body.id.clone().ok_or_else(|| missing("id"));
    let control = match name {
        noom::ROOM_HOST => Control::Host { id: id()?, host: body.host.ok_or_else(|| missing("host"))? },
        noom::ROOM_LOCK => Control::Lock { locked: body.locked.ok_or_else(|| missing("locked"))? },
        noom::ROOM_REMOVE => Control::Remove { id: id()?, bar: body.bar },
        noom::ROOM_END => Control::End,
        noom::ROOM_HAND => Control::Hand { raised: body.raised.ok_or_else(|| missing("raised"))? },
        noom::CALL_MUTE => Control::Mute { id: body.id.clone() },
        noom::ROOM_WAITING_ROOM => Control::WaitingRoom { on: body.on.ok_or_else(|| missing("on"))? },
        noom::ROOM_ADMIT => Control::Admit { id: id()?, admit: body.admit.ok_or_else(|| missing("admit"))? },
        noom::ROOM_PASSWORD => {
            let given = body.password.clone().ok_or_else(|| missing("password"))?;
            Control::Password { password: given.map(password).transpose()? }
        }
        noom::ROOM_REACT => {
            let emoji = body.emoji.as_deref().ok_or_else(|| missing("emoji"))?;
            let emoji = REACTIONS
                .into_iter()
                .find(|known| *known == emoji)
                .ok_or_else(|| ApiError::bad_request(format!("emoji must be one of {}", REACTIONS.join(" "))))?;
            Control::React { emoji }
        }
        _ => Control::Ask { id: id()?, ask: body.ask.ok_or_else(|| missing("ask"))? },
    };
    Ok(Request::Meeting { room, control })
}

fn call_leave(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
    }
    let body: Body = args.object()?;
    Ok(Request::CallLeave { room: validate::room_name(&body.room)? })
}

fn signal(args: &Args) -> Result<Request, ApiError> {
    let request = match args.0.first() {
        Some(Value::Object(map)) => map,
        _ => return Err(ApiError::bad_request("the argument must be an object")),
    };
    let field = |key: &str| match request.get(key) {
        Some(Value::String(s)) => Ok(s.as_str()),
        _ => Err(ApiError::bad_request(format!("{key} must be a string"))),
    };
    let room = validate::room_name(field("room")?)?;
    let to = field("to")?.to_owned();
    Ok(Request::Signal { room, to, signal: Signal::from_request(request)? })
}

fn sfu_sdp(args: &Args) -> Result<(String, String), ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        sdp: String,
    }
    let body: Body = args.object()?;
    Ok((validate::room_name(&body.room)?, sdp(body.sdp)?))
}

fn sdp(sdp: String) -> Result<String, ApiError> {
    if sdp.is_empty() || sdp.len() > SFU_SDP_MAX {
        return Err(ApiError::new(
            ErrorCode::InvalidSignal,
            format!("sdp must be a session description of at most {SFU_SDP_MAX} bytes"),
        ));
    }
    Ok(sdp)
}

#[derive(Deserialize)]
struct Tile {
    id: String,
    height: u32,
}

fn tiles(tiles: Vec<Tile>) -> Result<Vec<(String, u32)>, ApiError> {
    if tiles.len() > VIEW_TILES_MAX {
        return Err(ApiError::bad_request(format!("tiles must list at most {VIEW_TILES_MAX}")));
    }
    if tiles.iter().any(|t| t.height == 0 || t.height > TILE_HEIGHT_MAX) {
        return Err(ApiError::bad_request(format!("a tile's height must be 1 to {TILE_HEIGHT_MAX} pixels")));
    }
    Ok(tiles.into_iter().map(|t| (t.id, t.height)).collect())
}

fn sfu_join(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        sdp: String,
        #[serde(default)]
        tiles: Option<Vec<Tile>>,
    }
    let body: Body = args.object()?;
    let room = validate::room_name(&body.room)?;
    let sdp = sdp(body.sdp)?;
    Ok(Request::SfuJoin { room, sdp, tiles: body.tiles.map(tiles).transpose()? })
}

fn sfu_view(args: &Args) -> Result<Request, ApiError> {
    #[derive(Deserialize)]
    struct Body {
        room: String,
        tiles: Vec<Tile>,
        #[serde(default)]
        people: Vec<String>,
    }
    let body: Body = args.object()?;
    let room = validate::room_name(&body.room)?;
    let tiles = tiles(body.tiles)?;
    if body.people.len() > VIEW_TILES_MAX {
        return Err(ApiError::bad_request(format!("people must list at most {VIEW_TILES_MAX}")));
    }
    Ok(Request::SfuView { room, tiles, people: body.people })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> Args {
        serde_json::from_value(value).unwrap()
    }

    fn code(name: &str, value: Value) -> ErrorCode {
        parse(name, &args(value)).expect("an event").unwrap_err().code
    }

    #[test]
    fn unknown_events_are_none() {
        assert!(parse("nope", &args(json!([]))).is_none());
        assert!(parse("", &args(json!([]))).is_none());
    }

    #[test]
    fn names_come_back_trimmed_and_valid() {
        assert_eq!(
            parse("room:join", &args(json!([{"room": "  hall ", "nickname": " Ann"}]))).unwrap().unwrap(),
            Request::Join {
                room: "hall".into(),
                unlisted: false,
                nickname: Some("Ann".into()),
                password: None,
                host_key: None,
                with_host_key: false
            }
        );
        assert_eq!(
            parse("new_message", &args(json!(["hi", " hall"]))).unwrap().unwrap(),
            Request::NewMessage { text: "hi".into(), room: "hall".into() }
        );
        assert_eq!(parse("directory:get", &args(json!([]))).unwrap().unwrap(), Request::Directory);
        assert_eq!(
            parse("room:leave", &args(json!([]))).unwrap().unwrap(),
            Request::Leave { room: None },
            "no argument reads as {{}}"
        );
    }

    #[test]
    fn each_check_has_its_code() {
        assert_eq!(code("room:join", json!(["hall"])), ErrorCode::BadRequest);
        assert_eq!(code("room:join", json!([{"room": 5}])), ErrorCode::BadRequest);
        assert_eq!(code("room:join", json!([{"room": ""}])), ErrorCode::InvalidRoom);
        assert_eq!(code("room:join", json!([{"room": "a", "nickname": ""}])), ErrorCode::InvalidNickname);
        assert_eq!(code("chat:send", json!([{"room": "", "text": ""}])), ErrorCode::InvalidMessage);
        assert_eq!(code("new_message", json!(["hi"])), ErrorCode::BadRequest);
        assert_eq!(code("new_message", json!(["", "x"])), ErrorCode::InvalidMessage);
        assert_eq!(code("offer", json!([{"type": "nope"}, "r"])), ErrorCode::InvalidSignal);
        assert_eq!(code("ice", json!([])), ErrorCode::BadRequest);
        assert_eq!(code("call:media", json!([{"room": "r", "audio": true}])), ErrorCode::BadRequest);
        assert_eq!(code("rtc:signal", json!([{"room": "r", "to": 1}])), ErrorCode::BadRequest);
        assert_eq!(code("rtc:signal", json!([{"room": "r", "to": "x"}])), ErrorCode::InvalidSignal);
        assert_eq!(code("sfu:join", json!([{"room": "r"}])), ErrorCode::BadRequest);
        assert_eq!(code("sfu:join", json!([{"room": "r", "sdp": ""}])), ErrorCode::InvalidSignal);
        assert_eq!(
            code("sfu:answer", json!([{"room": "r", "sdp": "x".repeat(SFU_SDP_MAX + 1)}])),
            ErrorCode::InvalidSignal
        );
        assert_eq!(
            code("sfu:view", json!([{"room": "r", "tiles": [{"id": "1", "height": 0}]}])),
            ErrorCode::BadRequest
        );
        let many: Vec<Value> = (0..=VIEW_TILES_MAX).map(|i| json!({"id": i.to_string(), "height": 90})).collect();
        assert_eq!(code("sfu:view", json!([{"room": "r", "tiles": many}])), ErrorCode::BadRequest);
        assert_eq!(
            parse("sfu:view", &args(json!([{"room": "r", "tiles": [{"id": "7", "height": 360}]}]))).unwrap().unwrap(),
            Request::SfuView { room: "r".into(), tiles: vec![("7".into(), 360)], people: vec![] }
        );
        assert_eq!(
            parse("sfu:view", &args(json!([{"room": "r", "tiles": [], "people": ["7"]}]))).unwrap().unwrap(),
            Request::SfuView { room: "r".into(), tiles: vec![], people: vec!["7".into()] }
        );
        assert_eq!(code("sfu:view", json!([{"room": "r", "tiles": [], "people": true}])), ErrorCode::BadRequest);
        let many: Vec<String> = (0..=VIEW_TILES_MAX).map(|i| i.to_string()).collect();
        assert_eq!(code("sfu:view", json!([{"room": "r", "tiles": [], "people": many}])), ErrorCode::BadRequest);
        // An offer may say what the browser shows already, with a view's limits.
        assert_eq!(
            parse("sfu:join", &args(json!([{"room": "r", "sdp": "v=0", "tiles": [{"id": "7", "height": 90}]}])))
                .unwrap()
                .unwrap(),
            Request::SfuJoin { room: "r".into(), sdp: "v=0".into(), tiles: Some(vec![("7".into(), 90)]) }
        );
        assert_eq!(
            parse("sfu:join", &args(json!([{"room": "r", "sdp": "v=0"}]))).unwrap().unwrap(),
            Request::SfuJoin { room: "r".into(), sdp: "v=0".into(), tiles: None }
        );
        assert_eq!(
            code("sfu:join", json!([{"room": "r", "sdp": "v=0", "tiles": [{"id": "1", "height": 9000}]}])),
            ErrorCode::BadRequest
        );
    }
}
