//! The credentials the TURN server takes: those Noom hands out with the ICE servers
//! ([`crate::ice`]), `<expiry>:<who>` with the password `base64(HMAC-SHA1(secret, username))`
//! (the "TURN REST API" scheme). The server never stores a password: it recomputes it from the
//! user name, and refuses a name whose time is past.

use crate::ice::turn_password;
use crate::stun;

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

/// The USERNAME of a STUN message, if it is one and has it; the rest of the message is the TURN
/// protocol's to read.
pub fn stun_username(message: &[u8]) -> Option<&str> {
    let (_, value) = stun::attribute(message, stun::USERNAME)?;
    std::str::from_utf8(value).ok()
}

/// Whether a STUN message's MESSAGE-INTEGRITY is right for the long-term credential `username`
/// and `password` in `realm` (RFC 8489 9.2); `None` if it carries none (a first request, which
/// the server answers with a challenge).
pub fn integrity_holds(message: &[u8], username: &str, realm: &str, password: &str) -> Option<bool> {
    use hmac::{Hmac, Mac};
    use md5::{Digest, Md5};
    let (at, value) = stun::attribute(message, stun::MESSAGE_INTEGRITY)?;
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
    if !stun::is_message(request) {
        return None;
    }
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
    response.extend(stun::ERROR_CODE.to_be_bytes());
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// An Allocate request signed with the long-term credential of `2000:fuzz` (its password made
    /// from the secret `secret`) in the realm `noom`, by another implementation (Python's hmac
    /// and hashlib); then the same with a FINGERPRINT after it, which the signature leaves out.
    const SIGNED: &str = "000300442112a442070707070707070707070707001900041100000000060009323030303a66757a7a000000001400046e6f6f6d001500056e6f6e6365000000000800141f47f0dee1a7876ce33ff9b8c0ba4a8e593e95c4";
    const SIGNED_THEN_FINGERPRINT: &str = "0003004c2112a442070707070707070707070707001900041100000000060009323030303a66757a7a000000001400046e6f6f6d001500056e6f6e6365000000000800141f47f0dee1a7876ce33ff9b8c0ba4a8e593e95c48028000400000000";

    #[test]
    fn a_request_signed_with_its_own_password_holds_and_one_signed_with_another_does_not() {
        let password = turn_password("secret", "2000:fuzz");
        for message in [SIGNED, SIGNED_THEN_FINGERPRINT].map(hex) {
            assert_eq!(stun_username(&message), Some("2000:fuzz"));
            assert_eq!(integrity_holds(&message, "2000:fuzz", "noom", &password), Some(true));
            assert_eq!(integrity_holds(&message, "2000:fuzz", "noom", "another"), Some(false));
            assert_eq!(integrity_holds(&message, "2000:fuzz", "elsewhere", &password), Some(false));
        }
        let mut tampered = hex(SIGNED);
        tampered[25] ^= 1;
        assert_eq!(integrity_holds(&tampered, "2000:fuzz", "noom", &password), Some(false));
        // Unsigned: a first request, which the server challenges.
        assert_eq!(integrity_holds(&hex(SIGNED)[..60], "2000:fuzz", "noom", &password), None);
    }

    #[test]
    fn a_refusal_is_a_401_error_response_to_that_request_and_nothing_answers_a_response() {
        let request = hex(SIGNED);
        let response = unauthorized(&request).unwrap();
        assert_eq!(u16::from_be_bytes([response[0], response[1]]), 0x0113, "an Allocate error response");
        assert_eq!(usize::from(u16::from_be_bytes([response[2], response[3]])), response.len() - 20);
        assert_eq!(response[4..20], request[4..20], "the request's cookie and transaction");
        assert_eq!(response[20..24], [0x00, 0x09, 0x00, 16], "ERROR-CODE");
        assert_eq!(response[24..28], [0, 0, 4, 1], "401");
        assert_eq!(unauthorized(&response), None, "a response is not answered");
        assert_eq!(unauthorized(b"not a STUN message at all"), None);
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
