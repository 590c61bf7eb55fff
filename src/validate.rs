//! Input limits and the errors that answer bad input.
//!
//! Every name and message from the network passes through here before it touches any state.

use serde::{Deserialize, Serialize};

pub const NICKNAME_MAX: usize = 32;
pub const ROOM_NAME_MAX: usize = 64;
pub const MESSAGE_MAX: usize = 2_000;

/// The `code` of an error answer, as listed in `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidNickname,
    InvalidRoom,
    InvalidMessage,
    NotInRoom,
    RateLimited,
    TooManyRooms,
    Overloaded,
    NotInCall,
    PeerUnavailable,
    CallFull,
    InvalidSignal,
    /// The admin API: no token, or the wrong one.
    Unauthorized,
    /// The admin API: no such room or person.
    NotFound,
    /// The admin API of a server started without an admin token.
    AdminDisabled,
    /// The admin API: the action needs other nodes, and the link to them is down.
    ClusterUnavailable,
    /// A host's control, asked by someone who is not a host of the room.
    Forbidden,
    /// The room is locked: nobody new may enter.
    RoomLocked,
    /// A host removed this person from the room for good.
    Barred,
    /// Newcomers to the room wait until a host lets them in.
    WaitingRoom,
    /// The room needs its password, and none was given.
    PasswordRequired,
    /// The password given is not the room's.
    WrongPassword,
    /// The host key given is not the room's.
    BadHostKey,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidNickname,
        ErrorCode::InvalidRoom,
        ErrorCode::InvalidMessage,
        ErrorCode::NotInRoom,
        ErrorCode::RateLimited,
        ErrorCode::TooManyRooms,
        ErrorCode::Overloaded,
        ErrorCode::NotInCall,
        ErrorCode::PeerUnavailable,
        ErrorCode::CallFull,
        ErrorCode::InvalidSignal,
        ErrorCode::Unauthorized,
        ErrorCode::NotFound,
        ErrorCode::AdminDisabled,
        ErrorCode::ClusterUnavailable,
        ErrorCode::Forbidden,
        ErrorCode::RoomLocked,
        ErrorCode::Barred,
        ErrorCode::WaitingRoom,
        ErrorCode::PasswordRequired,
        ErrorCode::WrongPassword,
        ErrorCode::BadHostKey,
    ];

    /// The code as the wire has it: `bad_request`, `call_full`...
    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// An error answer: `{ "error": { "code", "message" } }` on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl Serialize for ApiError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            code: ErrorCode,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct Wrapper<'a> {
            error: Body<'a>,
        }
        Wrapper { error: Body { code: self.code, message: &self.message } }.serialize(s)
    }
}

/// Whether `c` is invisible in a name and could only make one name look like another, or turn the
/// text around it backwards: format characters (zero-width spaces and joiners, direction
/// overrides and isolates, the byte-order mark), fillers that draw nothing (Hangul's), variation
/// selectors and tags.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Pictographs, which a zero-width joiner may join into one (👩‍💻).
fn is_pictograph(c: char) -> bool {
    matches!(c, '\u{2600}'..='\u{27BF}' | '\u{1F000}'..='\u{1FAFF}')
}

/// A name as it is kept and shown: invisible characters taken out (a joiner between two
/// pictographs kept), in Unicode's composed form (NFC), so that one name has one spelling.
pub fn normalise_name(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let chars: Vec<char> = raw.chars().collect();
    let visible = chars.iter().enumerate().filter(|&(i, &c)| {
        let joins_pictographs = c == '\u{200D}'
            && i > 0
            && chars.get(i + 1).is_some_and(|&next| is_pictograph(next))
            && is_pictograph(chars[i - 1]);
        !is_invisible(c) || joins_pictographs
    });
    visible.map(|(_, &c)| c).nfc().collect()
}

/// A trimmed name of 1 to `max` characters without control characters, normalised (see
/// [`normalise_name`]).
fn name(raw: &str, max: usize, what: &str, code: ErrorCode) -> Result<String, ApiError> {
    let normalised = normalise_name(raw);
    let trimmed = normalised.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > max {
        return Err(ApiError::new(code, format!("{what} must be 1 to {max} characters")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::new(code, format!("{what} must not contain control characters")));
    }
    Ok(trimmed.to_owned())
}

pub fn nickname(raw: &str) -> Result<String, ApiError> {
    name(raw, NICKNAME_MAX, "nickname", ErrorCode::InvalidNickname)
}

pub fn room_name(raw: &str) -> Result<String, ApiError> {
    name(raw, ROOM_NAME_MAX, "room name", ErrorCode::InvalidRoom)
}

/// A chat message is kept as sent once it passes: 1 to 2,000 characters, not only white
/// space, no control characters but line feed and tab.
pub fn message(raw: &str) -> Result<(), ApiError> {
    let err = |m: &str| Err(ApiError::new(ErrorCode::InvalidMessage, m));
    if raw.trim().is_empty() {
        return err("message must not be empty");
    }
    if raw.chars().count() > MESSAGE_MAX {
        return err("message must be at most 2000 characters");
    }
    if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return err("message must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The web client checks as you type against its copy of these limits, and sets them as
    /// `maxlength`: the copy must say what the server enforces.
    #[test]
    fn the_web_client_knows_the_limits() {
        let client = include_str!("../web/src/validate.ts");
        let limits = &client[client.find("export const LIMITS = {").expect("LIMITS in validate.ts")..];
        let limits = &limits[..limits.find('}').expect("LIMITS closes")];
        let limit = |name: &str| -> usize {
            let line = limits
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{name}:")))
                .unwrap_or_else(|| panic!("no {name} in LIMITS"));
            line.split(':').nth(1).unwrap().trim().trim_end_matches(',').replace('_', "").parse().unwrap()
        };
        assert_eq!(limit("nickname"), NICKNAME_MAX);
        assert_eq!(limit("room"), ROOM_NAME_MAX);
        assert_eq!(limit("message"), MESSAGE_MAX);
        assert_eq!(limit("password"), crate::requests::PASSWORD_MAX);
    }

    #[test]
    fn nicknames_are_trimmed_and_bounded() {
        assert_eq!(nickname("  Ann  ").unwrap(), "Ann");
        assert_eq!(nickname(&"가".repeat(32)).unwrap().chars().count(), 32);
        for bad in ["", "   ", &"a".repeat(33), "a\u{0}b", "tab\there", "\u{7f}"] {
            assert_eq!(nickname(bad).unwrap_err().code, ErrorCode::InvalidNickname, "{bad:?}");
        }
    }

    #[test]
    fn room_names_are_bounded() {
        assert_eq!(room_name(&"r".repeat(64)).unwrap().len(), 64);
        assert_eq!(room_name(&"r".repeat(65)).unwrap_err().code, ErrorCode::InvalidRoom);
        assert_eq!(room_name("a\nb").unwrap_err().code, ErrorCode::InvalidRoom);
    }

    #[test]
    fn names_lose_invisible_characters_and_take_one_spelling() {
        assert_eq!(nickname("Ali\u{200B}ce").unwrap(), "Alice");
        assert_eq!(nickname("\u{202E}ecilA").unwrap(), "ecilA", "no direction override");
        assert_eq!(nickname("\u{2066}Bob\u{2069}").unwrap(), "Bob");
        assert_eq!(nickname("\u{FEFF}Zoë").unwrap(), "Zo\u{00EB}");
        assert_eq!(nickname("Zoe\u{0308}").unwrap(), "Zo\u{00EB}", "composed (NFC)");
        assert_eq!(nickname("👩\u{200D}💻 Dev").unwrap(), "👩\u{200D}💻 Dev", "a joined pictograph stays");
        assert_eq!(nickname("a\u{200D}b").unwrap(), "ab");
        assert_eq!(nickname("한\u{3164}글").unwrap(), "한글");
        assert!(nickname("\u{200B}\u{200B}").is_err(), "nothing visible is no name");
        assert!(nickname("\u{3164}").is_err());
        assert_eq!(room_name("stand\u{200B}up").unwrap(), "standup");
    }

    #[test]
    fn messages_allow_newlines_but_not_other_controls() {
        assert!(message("line one\nline two\tend").is_ok());
        assert!(message(&"m".repeat(2000)).is_ok());
        assert!(message(&"m".repeat(2001)).is_err());
        assert!(message(" \n ").is_err());
        assert!(message("bell\u{7}").is_err());
    }

    #[test]
    fn errors_serialise_as_the_protocol_says() {
        let json = serde_json::to_value(ApiError::new(ErrorCode::NotInRoom, "nope")).unwrap();
        assert_eq!(json, serde_json::json!({"error": {"code": "not_in_room", "message": "nope"}}));
    }
}
