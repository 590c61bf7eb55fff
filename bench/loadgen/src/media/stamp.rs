//! The stamp at the end of every frame a synthetic publisher sends: who sent it, which layer,
//! its number in that layer, and when (this process's clock, which its receivers share). A
//! media server forwards a frame's bytes unchanged, so the receiver reads the stamp back.

/// The layer number of audio; video layers are 0, 1, 2, lowest first.
pub const AUDIO: u8 = 255;
const MAGIC: &[u8; 4] = b"NMLD";
pub const LEN: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub layer: u8,
    pub publisher: u32,
    pub seq: u32,
    pub sent_ns: u64,
}

impl Stamp {
    /// `frame` with the stamp after it.
    pub fn append_to(&self, frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame.len() + LEN);
        out.extend_from_slice(frame);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[self.layer, 0, 0, 0]);
        out.extend_from_slice(&self.publisher.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.sent_ns.to_be_bytes());
        out
    }
}

/// The stamp at the end of `frame`, if it has one.
pub fn read(frame: &[u8]) -> Option<Stamp> {
    let tail = frame.get(frame.len().checked_sub(LEN)?..)?;
    if &tail[..4] != MAGIC {
        return None;
    }
    Some(Stamp {
        layer: tail[4],
        publisher: u32::from_be_bytes(tail[8..12].try_into().ok()?),
        seq: u32::from_be_bytes(tail[12..16].try_into().ok()?),
        sent_ns: u64::from_be_bytes(tail[16..24].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_from_the_end_of_its_frame() {
        let stamp = Stamp { layer: 2, publisher: 7, seq: 90, sent_ns: 123_456_789 };
        let frame = stamp.append_to(&[0x10, 1, 2, 3]);
        assert_eq!(read(&frame), Some(stamp));
        assert_eq!(&frame[..4], &[0x10, 1, 2, 3]);
        assert_eq!(read(&frame[1..frame.len() - 1]), None);
        assert_eq!(read(&[1, 2]), None);
    }
}
