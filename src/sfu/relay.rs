//! What two nodes' media servers say to each other when a call spans them (cascading, see
//! `docs/media.md`): the wire of their one connection, pure, so that it is tested and fuzzed
//! without a socket.
//!
//! A node dials another's web port, as browsers' media over TCP does, and tells it apart by its
//! first byte, [`MAGIC`]. After it come frames, each after its length in four bytes: control
//! messages ([`Control`], JSON: rare and small) and media packets ([`Media`], binary: every
//! packet of every track that crosses). The connection is TCP: nothing is lost between nodes, so
//! what crosses needs no repair of its own, and a receiver's losses are repaired by its own node.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use str0m::media::{MediaKind, Mid, Rid};
use str0m::rtp::VideoOrientation;

use crate::rooms::PersonId;

/// The first byte of a relay connection: never the first of an HTTP request (a letter), a TLS
/// handshake (22), or a browser's media over TCP (0, see `super::tcp`).
pub const MAGIC: u8 = 0xfe;
/// The version of this wire: a node refuses a connection of another.
pub const VERSION: u32 = 1;
/// The largest frame read: a control message listing a call's tracks, or a packet, is far less.
pub const FRAME_AT_MOST: usize = 256 * 1024;

const CONTROL: u8 = 1;
const MEDIA: u8 = 2;

/// A track of someone on the sending node, as the other node is to offer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    pub owner: PersonId,
    /// Its mid in its owner's own session: with the owner, what names the track between nodes.
    pub mid: String,
    pub video: bool,
    /// Its simulcast layers (rids), lowest first; none if it has one.
    #[serde(default)]
    pub layers: Vec<String>,
}

impl TrackInfo {
    pub fn kind(&self) -> MediaKind {
        if self.video { MediaKind::Video } else { MediaKind::Audio }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    /// The dialing node's first frame: its name, and the key the dialed node advertised (only
    /// nodes of the cluster know it).
    Hello { node: String, key: String, version: u32 },
    /// Everything people of the sender publish in `call`, whenever it changes: what the
    /// receiver offers its own people. Sent as soon as both carry people of the call.
    Tracks {
        call: String,
        tracks: Vec<TrackInfo>,
        /// The sender has just found the receiver in the call: the receiver is to tell its own.
        #[serde(default)]
        reply: bool,
    },
    /// The sender carries nobody of `call` any more: forward it nothing of the call.
    Left { call: String },
    /// The layers of a track the sender's people need now (`None`: the track has no layers);
    /// empty for none. Only those cross.
    Want { call: String, owner: PersonId, mid: String, layers: Vec<Option<String>> },
    /// A receiver on the sender's side needs a keyframe of that layer.
    Keyframe { call: String, owner: PersonId, mid: String, rid: Option<String> },
    /// Nothing else to say for a while: the connection is alive.
    Keepalive,
}

/// One RTP packet of a track, as it crosses: what a receiver's copy is rewritten from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub call: String,
    pub owner: PersonId,
    pub mid: Mid,
    pub rid: Option<Rid>,
    pub packet: Packet,
}

/// An RTP packet's numbers and payload, and the header extensions a receiver is given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Packet {
    /// Its sequence number, extended to 64 bits.
    pub sequence: u64,
    pub time: u32,
    pub marker: bool,
    pub audio_level: Option<i8>,
    pub voice_activity: Option<bool>,
    pub video_orientation: Option<VideoOrientation>,
    /// Empty for padding.
    pub payload: Arc<[u8]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Control(Control),
    Media(Media),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a malformed relay frame: {}", self.0)
    }
}

impl Frame {
    /// The frame with its four bytes of length before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0; 4];
        match self {
            Frame::Control(control) => {
                out.push(CONTROL);
                serde_json::to_writer(&mut out, control).expect("a control message serializes");
            }
            Frame::Media(media) => {
                out.push(MEDIA);
                short(&mut out, media.call.as_bytes());
                out.extend_from_slice(&media.owner.to_bytes());
                short(&mut out, media.mid.as_bytes());
                short(&mut out, media.rid.as_ref().map_or(&[][..], |rid| rid.as_bytes()));
                let p = &media.packet;
                out.extend_from_slice(&p.sequence.to_be_bytes());
                out.extend_from_slice(&p.time.to_be_bytes());
                let flags = u8::from(p.marker)
                    | u8::from(p.audio_level.is_some()) << 1
                    | u8::from(p.voice_activity.is_some()) << 2
                    | u8::from(p.voice_activity == Some(true)) << 3
                    | u8::from(p.video_orientation.is_some()) << 4;
                out.push(flags);
                out.push(p.audio_level.unwrap_or(0) as u8);
                out.push(p.video_orientation.map_or(0, |o| o as u8));
                out.extend_from_slice(&p.payload);
            }
        }
        let length = u32::try_from(out.len() - 4).expect("a frame is small");
        out[..4].copy_from_slice(&length.to_be_bytes());
        out
    }

    /// A frame's body (what follows its length).
    pub fn decode(body: &[u8]) -> Result<Frame, Malformed> {
        let (&kind, rest) = body.split_first().ok_or(Malformed("empty"))?;
        match kind {
            CONTROL => serde_json::from_slice(rest).map(Frame::Control).map_err(|_| Malformed("control message")),
            MEDIA => decode_media(rest).map(Frame::Media),
            _ => Err(Malformed("unknown kind")),
        }
    }
}

/// A name (a room's, a mid, a rid) after its length in two bytes. Room names are far shorter
/// than that allows; a longer name would be cut, never a panic.
fn short(out: &mut Vec<u8>, bytes: &[u8]) {
    let length = bytes.len().min(usize::from(u16::MAX));
    out.extend_from_slice(&(length as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..length]);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("cut short"));
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn short(&mut self) -> Result<&'a str, Malformed> {
        let n = u16::from_be_bytes(self.array()?);
        std::str::from_utf8(self.take(n.into())?).map_err(|_| Malformed("a name not UTF-8"))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        Ok(self.take(N)?.try_into().expect("N bytes taken"))
    }
}

fn decode_media(body: &[u8]) -> Result<Media, Malformed> {
    let mut r = Reader(body);
    let call = r.short()?.to_owned();
    let owner = PersonId::from_bytes(r.array()?);
    let mid = Mid::from(r.short()?);
    let rid = Some(r.short()?).filter(|rid| !rid.is_empty()).map(Rid::from);
    let sequence = u64::from_be_bytes(r.array()?);
    let time = u32::from_be_bytes(r.array()?);
    let [flags, level, orientation] = r.array()?;
    let packet = Packet {
        sequence,
        time,
        marker: flags & 1 != 0,
        audio_level: (flags & 2 != 0).then_some(level as i8),
        voice_activity: (flags & 4 != 0).then_some(flags & 8 != 0),
        video_orientation: (flags & 16 != 0).then(|| VideoOrientation::from(orientation)),
        payload: r.0.into(),
    };
    Ok(Media { call, owner, mid, rid, packet })
}

/// Splits frames off the front of what a connection read: each complete frame's body in turn,
/// `Ok(None)` when the next is not all there yet.
pub fn next_frame(buffer: &[u8]) -> Result<Option<(&[u8], usize)>, Malformed> {
    let Some(head) = buffer.get(..4) else { return Ok(None) };
    let length = u32::from_be_bytes(head.try_into().expect("four bytes")) as usize;
    if length > FRAME_AT_MOST {
        return Err(Malformed("too long"));
    }
    Ok(buffer.get(4..4 + length).map(|body| (body, 4 + length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(rid: Option<&str>, packet: Packet) -> Frame {
        Frame::Media(Media {
            call: "a room".into(),
            owner: PersonId::from_bytes([7; 16]),
            mid: Mid::from("1"),
            rid: rid.map(Rid::from),
            packet,
        })
    }

    fn round_trip(frame: Frame) {
        let bytes = frame.encode();
        let (body, used) = next_frame(&bytes).unwrap().expect("a whole frame");
        assert_eq!(used, bytes.len());
        assert_eq!(Frame::decode(body), Ok(frame));
    }

    #[test]
    fn frames_read_back_as_written() {
        round_trip(media(
            Some("h"),
            Packet {
                sequence: 1 << 40,
                time: 90_000,
                marker: true,
                payload: vec![1, 2, 3].into(),
                ..Packet::default()
            },
        ));
        round_trip(media(
            None,
            Packet {
                sequence: 5,
                audio_level: Some(-30),
                voice_activity: Some(false),
                video_orientation: Some(VideoOrientation::Deg90),
                ..Packet::default()
            },
        ));
        round_trip(Frame::Control(Control::Tracks {
            call: "a room".into(),
            tracks: vec![TrackInfo {
                owner: PersonId::from_bytes([1; 16]),
                mid: "0".into(),
                video: true,
                layers: vec!["q".into(), "h".into()],
            }],
            reply: true,
        }));
        round_trip(Frame::Control(Control::Want {
            call: "r".into(),
            owner: PersonId::from_bytes([2; 16]),
            mid: "1".into(),
            layers: vec![None, Some("f".into())],
        }));
    }

    #[test]
    fn a_frame_cut_short_waits_for_the_rest_and_one_too_long_is_refused() {
        let bytes = Frame::Control(Control::Left { call: "r".into() }).encode();
        for cut in 0..bytes.len() {
            assert_eq!(next_frame(&bytes[..cut]), Ok(None));
        }
        assert_eq!(next_frame(&[0, 0x10, 0, 0, 1]), Err(Malformed("too long")));
    }

    #[test]
    fn malformed_bodies_are_refused_not_panicked_on() {
        let whole = media(Some("q"), Packet { payload: vec![9; 10].into(), ..Packet::default() }).encode();
        let body = &whole[4..];
        // Every cut of a media frame's header is refused (the payload may be any length).
        for cut in 0..body.len() - 10 {
            assert!(Frame::decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        assert!(Frame::decode(&[3, 1, 2]).is_err());
        assert!(Frame::decode(&[CONTROL, b'{']).is_err());
        assert!(Frame::decode(&[MEDIA, 0, 2, 0xff, 0xfe]).is_err());
    }
}
