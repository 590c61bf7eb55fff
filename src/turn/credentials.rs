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

/// The USERNAME of a STUN message (RFC 8489), if it is one and has it; the rest of the message is
/// the TURN protocol's to read.
pub fn stun_username(message: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    if message.len() < 20 || message[0] & 0xc0 != 0 || message[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([message[2], message[3]]));
    let mut attributes = message.get(20..20 + length)?;
    while let [t0, t1, l0, l1, rest @ ..] = attributes {
        let (kind, len) = (u16::from_be_bytes([*t0, *t1]), usize::from(u16::from_be_bytes([*l0, *l1])));
        let value = rest.get(..len)?;
        if kind == USERNAME {
            return std::str::from_utf8(value).ok();
        }
        attributes = rest.get(len.next_multiple_of(4)..)?;
    }
    None
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
