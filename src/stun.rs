//! STUN messages (RFC 8489), as far as Noom reads them itself before str0m or the TURN protocol
//! does: whether bytes are one, and one of their attributes. The media port routes a datagram of
//! a new source by its ICE user name ([`crate::sfu::demux`]); the TURN server checks a request's
//! credential before the protocol sees it ([`crate::turn::credentials`]).

pub const HEADER: usize = 20;
pub const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
pub const USERNAME: u16 = 0x0006;
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
pub const ERROR_CODE: u16 = 0x0009;

/// Whether `bytes` begin a STUN message: its first two bits clear, its magic cookie, and as many
/// bytes of attributes as its header says.
pub fn is_message(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER
        && bytes[0] & 0xc0 == 0
        && bytes[4..8] == MAGIC_COOKIE
        && bytes.len() >= HEADER + length(bytes)
}

/// The length of a message's attributes, as its header says.
fn length(message: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([message[2], message[3]]))
}

/// The first attribute of type `kind` of a STUN message: where its value starts in the message,
/// and its value. `None` for what is no STUN message, or one without it (or cut short before it).
pub fn attribute(message: &[u8], kind: u16) -> Option<(usize, &[u8])> {
    if !is_message(message) {
        return None;
    }
    let mut rest = &message[HEADER..HEADER + length(message)];
    let mut at = HEADER;
    while let [t0, t1, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let value = tail.get(..len)?;
        if u16::from_be_bytes([*t0, *t1]) == kind {
            return Some((at + 4, value));
        }
        // Values are padded to four bytes.
        let skip = len.next_multiple_of(4).min(tail.len());
        rest = &tail[skip..];
        at += 4 + skip;
    }
    None
}

/// A Binding request with these attributes, for tests.
#[cfg(test)]
pub fn binding_request(attributes: &[(u16, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, value) in attributes {
        body.extend(kind.to_be_bytes());
        body.extend((value.len() as u16).to_be_bytes());
        body.extend(*value);
        body.resize(body.len().next_multiple_of(4), 0);
    }
    let mut message = vec![0x00, 0x01];
    message.extend((body.len() as u16).to_be_bytes());
    message.extend(MAGIC_COOKIE);
    message.extend([7; 12]);
    message.extend(body);
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use binding_request as message;

    #[test]
    fn an_attribute_is_found_past_others_padded_and_where_its_value_starts() {
        let m = message(&[(0x0024, &[1, 2, 3]), (USERNAME, b"ab:cd"), (MESSAGE_INTEGRITY, &[9; 20])]);
        assert_eq!(attribute(&m, USERNAME), Some((32, &b"ab:cd"[..])));
        assert_eq!(attribute(&m, MESSAGE_INTEGRITY), Some((44, &[9; 20][..])));
        assert_eq!(attribute(&m, ERROR_CODE), None);
    }

    #[test]
    fn nothing_is_read_from_what_is_no_stun_message() {
        let m = message(&[(USERNAME, b"ab:cd")]);
        assert!(is_message(&m));
        assert!(!is_message(&m[..m.len() - 1]), "shorter than its header says");
        let mut cookie = m.clone();
        cookie[4] ^= 1;
        assert_eq!(attribute(&cookie, USERNAME), None);
        let mut channel_data = m.clone();
        channel_data[0] = 0x40;
        assert_eq!(attribute(&channel_data, USERNAME), None);
        assert_eq!(attribute(&[], USERNAME), None);
        // An attribute whose length runs past the message.
        let mut long = m.clone();
        long[23] = 200;
        assert_eq!(attribute(&long, USERNAME), None);
    }
}
