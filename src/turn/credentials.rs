//! The credentials the TURN server takes: those Noom hands out with the ICE servers
//! ([`crate::ice`]), `<expiry>:<who>` with the password `base64(HMAC-SHA1(secret, username))`
//! (the "TURN REST API" scheme). The server never stores a password: it recomputes it from the
//! user name, and refuses a name whose time is past.

use crate::ice::turn_password;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not `<expiry>:<who>`.
    Malformed,
    /// Its expiry is past.
    Expired,
    /// Signed with another password than its own.
    WrongPassword,
}

/// The password of `username` if it is one of ours and still valid at `now_secs`.
pub fn password(secret: &str, username: &str, now_secs: u64) -> Result<String, Refused> {
    let (expiry, _who) = username.split_once(':').ok_or(Refused::Malformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| Refused::Malformed)?;
    if expiry <= now_secs {
        return Err(Refused::Expired);
    }
    Ok(turn_password(secret, username))
}

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const USERNAME: u16 = 0x0006;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;

/// The attributes of a STUN message (RFC 8489), each with where its value starts; `None` for
/// what is no STUN message.
fn attributes(message: &[u8]) -> Option<Vec<(u16, usize, &[u8])>> {
    if message.len() < 20 || message[0] & 0xc0 != 0 || message[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([message[2], message[3]]));
    let mut rest = message.get(20..20 + length)?;
    let mut at = 20;
    let mut found = Vec::new();
    while let [t0, t1, l0, l1, tail @ ..] = rest {
        let (kind, len) = (u16::from_be_bytes([*t0, *t1]), usize::from(u16::from_be_bytes([*l0, *l1])));
        found.push((kind, at + 4, tail.get(..len)?));
        let skip = len.next_multiple_of(4).min(tail.len());
        rest = &tail[skip..];
        at += 4 + skip;
    }
    Some(found)
}

/// The USERNAME of a STUN message, if it is one and has it; the rest of the message is the TURN
/// protocol's to read.
pub fn stun_username(message: &[u8]) -> Option<&str> {
    let found = attributes(message)?;
    let (_, _, value) = found.into_iter().find(|(kind, _, _)| *kind == USERNAME)?;
    std::str::from_utf8(value).ok()
}

/// Whether a STUN message's MESSAGE-INTEGRITY is right for the long-term credential `username`
/// and `password` in `realm` (RFC 8489 9.2); `None` if it carries none (a first request, which
/// the server answers with a challenge).
pub fn integrity_holds(message: &[u8], username: &str, realm: &str, password: &str) -> Option<bool> {
    use hmac::{Hmac, Mac};
    use md5::{Digest, Md5};
    let found = attributes(message)?;
    let (_, at, value) = found.into_iter().find(|(kind, _, _)| *kind == MESSAGE_INTEGRITY)?;
    let key = Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).expect("HMAC takes a key of any length");
    // Signed as if the message ended with MESSAGE-INTEGRITY (its 20 bytes from `at`, past the
    // 20 of the header): its length says so.
    let signed_length = at as u16;
    mac.update(&message[..2]);
    mac.update(&signed_length.to_be_bytes());
    mac.update(&message[4..at - 4]);
    Some(mac.verify_slice(value).is_ok())
}

/// A 401 (Unauthorized) error response to a STUN request, which ends a client's attempt at
/// once (unanswered, a browser waits 40 s before it gives up on the server). `None` for what is
/// no request.
pub fn unauthorized(request: &[u8]) -> Option<Vec<u8>> {
    attributes(request)?;
    let kind = u16::from_be_bytes([request[0], request[1]]);
    // The class bits (0x0110): 00 a request, 11 an error response.
    if kind & 0x0110 != 0 {
        return None;
    }
    let reason = b"Unauthorized";
    let value_length = 4 + reason.len();
    let mut response = Vec::with_capacity(20 + 4 + value_length.next_multiple_of(4));
    response.extend((kind | 0x0110).to_be_bytes());
    response.extend(((4 + value_length.next_multiple_of(4)) as u16).to_be_bytes());
    response.extend_from_slice(&request[4..20]);
    response.extend(ERROR_CODE.to_be_bytes());
    response.extend((value_length as u16).to_be_bytes());
    response.extend([0, 0, 4, 1]);
    response.extend_from_slice(reason);
    response.resize(response.len().next_multiple_of(4), 0);
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_of_ours_gets_its_password_until_it_expires() {
        assert_eq!(password("s3cret", "1600:abc", 1_599), Ok(turn_password("s3cret", "1600:abc")));
        assert_eq!(password("s3cret", "1600:abc", 1_600), Err(Refused::Expired));
        for malformed in ["abc", "soon:abc", ":abc", "-1:abc", ""] {
            assert_eq!(password("s3cret", malformed, 0), Err(Refused::Malformed), "{malformed:?}");
        }
    }

    #[test]
    fn the_user_name_is_read_from_a_stun_message_and_from_nothing_else() {
        let mut message = vec![0x00, 0x03, 0, 12, 0x21, 0x12, 0xa4, 0x42];
        message.extend([7; 12]);
        message.extend([0x00, 0x06, 0, 8]);
        message.extend(b"1600:abc");
        assert_eq!(stun_username(&message), Some("1600:abc"));
        // Cut short, a length past its end, channel data, nothing.
        assert_eq!(stun_username(&message[..30]), None);
        let mut long = message.clone();
        long[3] = 200;
        assert_eq!(stun_username(&long), None);
        assert_eq!(stun_username(&[0x40, 0x00, 0, 4, 1, 2, 3, 4]), None);
        assert_eq!(stun_username(&[]), None);
    }
}
