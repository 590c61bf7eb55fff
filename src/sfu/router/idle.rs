//! Send streams that carry nothing are taken out of str0m until they do again.
//!
//! Each time str0m is polled or woken, it walks every stream of the connection (its pacer's
//! queues, its reports, its timers): a third of the server's time in a room of 20 (profiled:
//! `docs/media.md`, *Forwarding*). Many of a receiver's streams carry nothing for long: in a
//! call past `all_voices_up_to`, all but the loudest voices; the video of someone scrolled out of
//! view, or whose camera is off. Such a stream, [`SET_ASIDE_AFTER`] without a packet, is removed
//! from str0m (its m-line stays as negotiated) and declared again, with the same SSRCs and
//! settings, at its next packet. The receiver sees one stream whose packets paused: their
//! numbers are the router's own (`super::super::rewrite`), so they go on where they stopped.
//!
//! str0m makes a send stream, with new SSRCs, for each sending m-line without one when it
//! applies an answer, and lists the streams' SSRCs in its offers: every stream set aside is
//! declared again before an offer is made or an answer applied, and none is set aside while an
//! offer waits for its answer.

use std::time::{Duration, Instant};

use str0m::Rtc;

use super::{CallRouter, configure_send_stream};
use crate::sfu::track::{Negotiation, Receiving, Sent};

/// A send stream without a packet this long is set aside. Longer than a pause between two words
/// (Opus sends next to nothing in silence, but does send) and than a keyframe takes to come.
pub const SET_ASIDE_AFTER: Duration = Duration::from_secs(2);

impl CallRouter {
    /// Sets aside the send streams of every receiver that carried nothing for
    /// [`SET_ASIDE_AFTER`] (none of a receiver with an offer awaiting its answer).
    pub(super) fn set_aside_idle_streams(&mut self, now: Instant) {
        for p in self.participants.iter_mut().filter(|p| p.pending.is_none()) {
            for track in &mut p.receiving {
                let idle = track.last_written.is_none_or(|at| now.duration_since(at) >= SET_ASIDE_AFTER);
                if let (Negotiation::Open(_), Some(sending), false, true) =
                    (track.state, track.sending, track.set_aside, idle)
                {
                    p.rtc.direct_api().remove_stream_tx(sending.ssrc);
                    track.set_aside = true;
                }
            }
        }
    }
}

/// Declares `track`'s send stream again in `rtc`, as it was, if it was set aside.
pub(super) fn take_back(rtc: &mut Rtc, track: &mut Receiving, now: Instant) {
    let (Negotiation::Open(mid), Some(sending), true) = (track.state, track.sending, track.set_aside) else { return };
    let mut direct = rtc.direct_api();
    let stream = direct.declare_stream_tx(sending.ssrc, sending.rtx, mid, None);
    configure_send_stream(stream, track.kind, track.resend_window);
    track.set_aside = false;
    track.last_written = Some(now);
    // str0m counts what a stream sent from its declaration: the next report starts over.
    track.sent = Sent::default();
}

/// Declares again every send stream of a receiver that was set aside: before an offer or an
/// answer, which would otherwise give those m-lines new streams.
pub(super) fn take_all_back(rtc: &mut Rtc, receiving: &mut [Receiving], now: Instant) {
    for track in receiving {
        take_back(rtc, track, now);
    }
}
