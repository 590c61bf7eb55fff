//! How one receiver's stream of a forwarded track is numbered. The router forwards a publisher's
//! RTP packets as they are (str0m's RTP mode), but a receiver must see one unbroken stream while
//! the packets come from one simulcast layer, then another, and while some are left out (a paused
//! tile, a voice not forwarded in a large call, padding). So each receiver's copy gets sequence
//! numbers that run on without gaps, a media clock that goes on across a switch of layer instead
//! of jumping to the other layer's, and VP8 picture numbers (picture id, TL0PICIDX) that go on
//! too, as LiveKit's and mediasoup's forwarders do. Pure: numbers in, numbers out.

/// The first sequence number a receiver is sent. Below 2^16, so that SRTP's rollover counter
/// starts at 0, as the receiver assumes without being told otherwise.
const FIRST_SEQUENCE: u64 = 1;

/// A packet this far from the numbering's start, behind it or ahead of the newest, is no late or
/// lost packet of the source (those are within a second or so of it) but the source starting over
/// (a publisher's stream restarted under another SSRC): it is numbered on from it as a new source,
/// rather than dropped for good or leaving the receiver a gap it would ask to be filled.
const RESTART_AFTER: u64 = 3_000;

/// One receiver's numbering of one track.
#[derive(Debug, Default)]
pub(super) struct Rewriter {
    /// A frame's length in media clock ticks: a new source's clock goes on this far after the
    /// last packet sent.
    frame: u32,
    /// The publisher's sequence number the current numbering began at, and what it became.
    base: Option<(u64, u64)>,
    /// The highest sequence number sent.
    last_sequence: Option<u64>,
    /// The next packet begins a new numbering: packets of the source were left out.
    renumber: bool,
    /// The next packet begins another source: a layer switched to, or the track after a pause.
    switch: bool,
    time_offset: u32,
    /// The media time of the packet with the highest sequence number sent.
    last_time: Option<u32>,
    picture_offset: u16,
    last_picture: Option<u16>,
    tl0_offset: u8,
    last_tl0: Option<u8>,
}

/// A packet's numbers as its receiver is to see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rewritten {
    pub(super) sequence: u64,
    pub(super) time: u32,
    /// The VP8 picture id (15 bits), when the packet has one.
    pub(super) picture: Option<u16>,
    pub(super) tl0: Option<u8>,
}

/// The numbers a publisher's packet carries: its extended sequence number, media time, and VP8
/// picture id and TL0PICIDX when it has them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Numbers {
    pub(super) sequence: u64,
    pub(super) time: u32,
    pub(super) picture: Option<u16>,
    pub(super) tl0: Option<u8>,
}

const PICTURE_MASK: u16 = 0x7fff;

impl Rewriter {
    /// A numbering whose new sources go on `frame` ticks after the last packet sent.
    pub(super) fn new(frame: u32) -> Self {
        Self { frame, ..Self::default() }
    }

    /// The next packet forwarded comes from another source (it must start a keyframe): its
    /// clock and picture numbers go on from the last sent, a frame after it.
    pub(super) fn switch(&mut self) {
        self.switch = true;
    }

    /// A packet of the source is left out: the next one forwarded is numbered on from the last
    /// sent, so that the receiver sees no gap, and asks for nothing that was never sent.
    pub(super) fn skip(&mut self) {
        self.renumber = true;
    }

    /// The numbers `packet` is sent with; `None` for a packet from before the current numbering
    /// began (late, of a source or a stretch that was left): its place is taken.
    pub(super) fn rewrite(&mut self, packet: Numbers) -> Option<Rewritten> {
        if let (Some((since, from)), Some(last)) = (self.base, self.last_sequence) {
            let newest = since + (last - from);
            if packet.sequence + RESTART_AFTER < since || packet.sequence > newest + RESTART_AFTER {
                self.switch = true;
            }
        }
        if self.base.is_none() || self.renumber || self.switch {
            let next = self.last_sequence.map_or(FIRST_SEQUENCE, |last| last + 1);
            self.base = Some((packet.sequence, next));
            if std::mem::take(&mut self.switch) {
                if let Some(last) = self.last_time {
                    self.time_offset = last.wrapping_add(self.frame).wrapping_sub(packet.time);
                }
                if let (Some(last), Some(picture)) = (self.last_picture, packet.picture) {
                    self.picture_offset = last.wrapping_add(1).wrapping_sub(picture) & PICTURE_MASK;
                }
                if let (Some(last), Some(tl0)) = (self.last_tl0, packet.tl0) {
                    self.tl0_offset = last.wrapping_add(1).wrapping_sub(tl0);
                }
            }
            self.renumber = false;
        }
        let (since, from) = self.base?;
        let sequence = from + packet.sequence.checked_sub(since)?;
        let rewritten = Rewritten {
            sequence,
            time: packet.time.wrapping_add(self.time_offset),
            picture: packet.picture.map(|p| p.wrapping_add(self.picture_offset) & PICTURE_MASK),
            tl0: packet.tl0.map(|t| t.wrapping_add(self.tl0_offset)),
        };
        if self.last_sequence.is_none_or(|last| sequence > last) {
            self.last_sequence = Some(sequence);
            self.last_time = Some(rewritten.time);
            self.last_picture = rewritten.picture.or(self.last_picture);
            self.last_tl0 = rewritten.tl0.or(self.last_tl0);
        }
        Some(rewritten)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(sequence: u64, time: u32, picture: u16, tl0: u8) -> Numbers {
        Numbers { sequence, time, picture: Some(picture), tl0: Some(tl0) }
    }

    #[test]
    fn a_source_alone_is_renumbered_from_the_start_and_keeps_its_clock_and_pictures() {
        let mut rewriter = Rewriter::new(3_000);
        let sent: Vec<Rewritten> =
            (0..4).map(|i| rewriter.rewrite(numbers(70_000 + i, 1_000 + i as u32, 9, 3)).unwrap()).collect();
        assert_eq!(sent.iter().map(|r| r.sequence).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(sent[3].time, 1_003);
        assert_eq!((sent[0].picture, sent[0].tl0), (Some(9), Some(3)));
    }

    #[test]
    fn packets_left_out_leave_no_gap_and_late_ones_from_before_are_dropped() {
        let mut rewriter = Rewriter::new(3_000);
        assert_eq!(rewriter.rewrite(numbers(10, 0, 0, 0)).unwrap().sequence, 1);
        assert_eq!(rewriter.rewrite(numbers(12, 0, 0, 0)).unwrap().sequence, 3, "a gap of the publisher's own");
        rewriter.skip();
        assert_eq!(rewriter.rewrite(numbers(14, 0, 0, 0)).unwrap().sequence, 4, "13 left out: no gap");
        assert_eq!(rewriter.rewrite(numbers(15, 0, 0, 0)).unwrap().sequence, 5);
        assert_eq!(rewriter.rewrite(numbers(11, 0, 0, 0)), None, "from before the renumbering");
    }

    #[test]
    fn a_switch_goes_on_with_the_numbers_clock_and_pictures_of_the_source_before() {
        let mut rewriter = Rewriter::new(3_000);
        rewriter.rewrite(numbers(100, 50_000, 32_760, 250)).unwrap();
        rewriter.rewrite(numbers(101, 53_000, 32_767, 255)).unwrap();
        rewriter.switch();
        let first = rewriter.rewrite(numbers(9_000, 4_000_000_000, 500, 40)).unwrap();
        assert_eq!(first, Rewritten { sequence: 3, time: 56_000, picture: Some(0), tl0: Some(0) });
        let next = rewriter.rewrite(numbers(9_001, 4_000_003_000, 501, 41)).unwrap();
        assert_eq!(next, Rewritten { sequence: 4, time: 59_000, picture: Some(1), tl0: Some(1) });
        assert_eq!(rewriter.rewrite(numbers(8_999, 3_999_997_000, 499, 39)), None, "from before the switch");
    }

    #[test]
    fn a_source_that_starts_over_with_other_numbers_is_numbered_on_as_a_new_one() {
        let mut rewriter = Rewriter::new(3_000);
        rewriter.rewrite(numbers(40_000, 9_000, 100, 1)).unwrap();
        let restarted = rewriter.rewrite(numbers(12, 77, 5, 1)).unwrap();
        assert_eq!((restarted.sequence, restarted.time, restarted.picture), (2, 12_000, Some(101)));
        assert_eq!(rewriter.rewrite(numbers(13, 3_077, 6, 1)).unwrap().sequence, 3);
        let leapt = rewriter.rewrite(numbers(60_000, 6_077, 7, 1)).unwrap();
        assert_eq!(leapt.sequence, 4, "a leap far ahead leaves no gap of thousands");
    }

    #[test]
    fn a_late_packet_of_the_current_source_keeps_its_place() {
        let mut rewriter = Rewriter::new(3_000);
        rewriter.rewrite(numbers(5, 0, 1, 1)).unwrap();
        rewriter.rewrite(numbers(7, 6_000, 3, 1)).unwrap();
        let late = rewriter.rewrite(numbers(6, 3_000, 2, 1)).unwrap();
        assert_eq!((late.sequence, late.time), (2, 3_000));
        rewriter.switch();
        let switched = rewriter.rewrite(numbers(50, 0, 70, 9)).unwrap();
        assert_eq!((switched.sequence, switched.time, switched.picture), (4, 9_000, Some(4)), "on from the newest");
    }
}
