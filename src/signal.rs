//! WebRTC signalling payloads: what a browser may ask the server to relay to a peer.
//!
//! The server never interprets a description or a candidate; it only checks their shape and size
//! and rebuilds them from their known fields, so a peer receives nothing but what a browser's
//! `setRemoteDescription` and `addIceCandidate` take.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::validate::{ApiError, ErrorCode};

/// Largest session description accepted between browsers, in bytes of SDP.
pub const SDP_MAX: usize = 65_536;
/// Largest session description accepted from a browser by the media server (`sfu:join`,
/// `sfu:answer`): an answer to the server's offer holds two m-lines for each other person in the
/// call, about 1.9 KB a person from str0m, as much from Chrome; a call of 100 needs about 190 KB.
pub const SFU_SDP_MAX: usize = 512 * 1024;
/// Largest ICE candidate accepted, in bytes of its JSON.
pub const CANDIDATE_MAX: usize = 2_048;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidSignal, message)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    Offer,
    Answer,
    Pranswer,
    Rollback,
}

/// An `RTCSessionDescriptionInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: SdpType,
    pub sdp: String,
}

/// An `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// One signal for one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Description(SessionDescription),
    /// `None`: the sender has no more candidates.
    Candidate(Option<Candidate>),
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    value.as_object().ok_or_else(|| invalid(format!("{what} must be an object")))
}

/// A string field that may be absent or null.
fn optional_str(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{key} must be a string or null"))),
    }
}

impl SessionDescription {
    pub fn parse(value: &Value) -> Result<Self, ApiError> {
        let map = object(value, "description")?;
        let kind = match map.get("type").and_then(Value::as_str) {
            Some("offer") => SdpType::Offer,
            Some("answer") => SdpType::Answer,
            Some("pranswer") => SdpType::Pranswer,
            Some("rollback") => SdpType::Rollback,
            _ => return Err(invalid("description type must be offer, answer, pranswer or rollback")),
        };
        let sdp = match map.get("sdp") {
            Some(Value::String(sdp)) => sdp.clone(),
            // A rollback carries no SDP.
            None | Some(Value::Null) if kind == SdpType::Rollback => String::new(),
            _ => return Err(invalid("description sdp must be a string")),
        };
        if sdp.len() > SDP_MAX {
            return Err(invalid(format!("description sdp must be at most {SDP_MAX} bytes")));
        }
        Ok(Self { kind, sdp })
    }
}

impl Candidate {
    /// A candidate, or `None` for `null` (the end of candidates).
    pub fn parse(value: &Value) -> Result<Option<Self>, ApiError> {
        if value.is_null() {
            return Ok(None);
        }
        let map = object(value, "candidate")?;
        let candidate = match map.get("candidate") {
            Some(Value::String(c)) => c.clone(),
            _ => return Err(invalid("candidate.candidate must be a string")),
        };
        let sdp_m_line_index = match map.get("sdpMLineIndex") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|i| u16::try_from(i).ok())
                    .ok_or_else(|| invalid("candidate.sdpMLineIndex must be an integer from 0 to 65535"))?,
            ),
        };
        let parsed = Self {
            candidate,
            sdp_mid: optional_str(map, "sdpMid")?,
            sdp_m_line_index,
            username_fragment: optional_str(map, "usernameFragment")?,
        };
        let size = serde_json::to_vec(&parsed).map_or(usize::MAX, |json| json.len());
        if size > CANDIDATE_MAX {
            return Err(invalid(format!("candidate must be at most {CANDIDATE_MAX} bytes")));
        }
        Ok(Some(parsed))
    }
}

impl Signal {
    /// The signal of an `rtc:signal` request: exactly one of `description` and `candidate`.
    pub fn from_request(request: &Map<String, Value>) -> Result<Self, ApiError> {
        match (request.get("description"), request.get("candidate")) {
            (Some(d), None) => SessionDescription::parse(d).map(Signal::Description),
            (None, Some(c)) => Candidate::parse(c).map(Signal::Candidate),
            _ => Err(invalid("a signal needs exactly one of description and candidate")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn code<T: std::fmt::Debug>(r: Result<T, ApiError>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn descriptions_keep_only_their_known_fields() {
        let d = SessionDescription::parse(&json!({"type": "offer", "sdp": "v=0\r\n", "extra": 1})).unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), json!({"type": "offer", "sdp": "v=0\r\n"}));
        let rollback = SessionDescription::parse(&json!({"type": "rollback"})).unwrap();
        assert_eq!(rollback.sdp, "");
    }

    #[test]
    fn bad_descriptions_are_refused() {
        for bad in [
            json!("v=0"),
            json!({"type": "bogus", "sdp": ""}),
            json!({"type": "offer"}),
            json!({"type": "answer", "sdp": 5}),
            json!({"type": "offer", "sdp": "x".repeat(SDP_MAX + 1)}),
        ] {
            assert_eq!(code(SessionDescription::parse(&bad)), ErrorCode::InvalidSignal, "{bad}");
        }
        assert!(SessionDescription::parse(&json!({"type": "offer", "sdp": "x".repeat(SDP_MAX)})).is_ok());
    }

    #[test]
    fn candidates_are_checked_and_null_ends_them() {
        assert_eq!(Candidate::parse(&Value::Null).unwrap(), None);
        let c = Candidate::parse(&json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
            "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": null, "x": [1]}))
        .unwrap()
        .unwrap();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0})
        );
        for bad in [
            json!({}),
            json!({"candidate": 1}),
            json!({"candidate": "", "sdpMLineIndex": 70000}),
            json!({"candidate": "", "sdpMLineIndex": -1}),
            json!({"candidate": "", "sdpMid": 3}),
            json!({"candidate": "c".repeat(CANDIDATE_MAX)}),
            json!([1]),
        ] {
            assert_eq!(code(Candidate::parse(&bad)), ErrorCode::InvalidSignal, "{bad}");
        }
    }

    #[test]
    fn a_request_carries_exactly_one_signal() {
        let both = json!({"description": {"type": "offer", "sdp": ""}, "candidate": null});
        assert_eq!(code(Signal::from_request(both.as_object().unwrap())), ErrorCode::InvalidSignal);
        assert_eq!(code(Signal::from_request(&Map::new())), ErrorCode::InvalidSignal);
        let end = json!({"candidate": null});
        assert_eq!(Signal::from_request(end.as_object().unwrap()).unwrap(), Signal::Candidate(None));
    }
}
