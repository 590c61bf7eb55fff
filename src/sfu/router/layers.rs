//! Which layers each receiver gets: what its tiles want ([`CallRouter::show`]), what its bandwidth
//! allows ([`crate::sfu::allocator`]), which layers publishers need not send at all, and which
//! voices are forwarded in a large call.

use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::media::{MediaKind, Mid, Rid};

use super::{
    CallRouter, INITIAL_ESTIMATE, PAUSE_UNNEEDED_AFTER, RANK_VOICES_EVERY, RouterError, RouterOutput, VOICES_FORWARDED,
};
use crate::rooms::PersonId;
use crate::sfu::allocator::{self, Demand};
use crate::sfu::track::{Ceiling, Negotiation, Published, Wanted};

impl CallRouter {
    /// What `receiver` wants of `from`'s track `from_mid` (its mid in `from`'s own session): a
    /// layer, anything, or nothing (a tile it does not show). The publisher is asked for a
    /// keyframe of a layer newly wanted, which the switch waits for.
    pub fn set_wanted(
        &mut self,
        receiver: PersonId,
        from: PersonId,
        from_mid: Mid,
        wanted: Wanted,
        now: Instant,
    ) -> Result<(), RouterError> {
        let at = self.index(receiver).ok_or(RouterError::NotInCall)?;
        let track = self.participants[at]
            .receiving
            .iter_mut()
            .find(|t| t.from == from && t.from_mid == from_mid)
            .ok_or(RouterError::NoSuchTrack)?;
        track.wanted = wanted.clone();
        let current = track.current;
        let layer = self.published_track(from, from_mid).map(|t| t.resolve(&wanted));
        if let Some(Wanted::Layer(rid)) = layer
            && current != Some(rid)
        {
            self.request_keyframe(from, from_mid, Some(rid), now);
        }
        Ok(())
    }

    /// What `receiver` shows of the others: each tile's person and height in pixels; anyone else
    /// is not shown. Kept, so that a track that comes later (someone joins the call after their
    /// tile appeared, as the web client shows them) starts at its tile's layer, not the top one.
    pub fn show_tiles(
        &mut self,
        receiver: PersonId,
        tiles: Vec<(PersonId, u32)>,
        now: Instant,
    ) -> Result<(), RouterError> {
        let at = self.index(receiver).ok_or(RouterError::NotInCall)?;
        let here = self.participants.iter().map(|p| p.id);
        let elsewhere = self.remote.iter().map(|r| r.owner);
        let others: Vec<PersonId> = here.chain(elsewhere).filter(|id| *id != receiver).collect();
        for from in others {
            let height = tiles.iter().find(|(shown, _)| *shown == from).map(|(_, height)| *height);
            self.set_shown(at, from, height, now)?;
        }
        self.participants[at].tiles = Some(tiles);
        self.shown_changed(at, now);
        Ok(())
    }

    /// Shows `from` to `receiver` in a tile `height` pixels high, or not at all: each of their
    /// video tracks is sent in the layer that fits, or paused. Audio is not concerned.
    pub fn show(
        &mut self,
        receiver: PersonId,
        from: PersonId,
        height: Option<u32>,
        now: Instant,
    ) -> Result<(), RouterError> {
        let at = self.index(receiver).ok_or(RouterError::NotInCall)?;
        self.set_shown(at, from, height, now)?;
        self.shown_changed(at, now);
        Ok(())
    }

    /// What participant `at` wants of each of `from`'s video tracks, for a tile `height` high or
    /// none.
    fn set_shown(&mut self, at: usize, from: PersonId, height: Option<u32>, now: Instant) -> Result<(), RouterError> {
        let receiver = self.participants[at].id;
        let mids: Vec<Mid> = self.participants[at]
            .receiving
            .iter()
            .filter(|t| t.from == from && t.kind == MediaKind::Video)
            .map(|t| t.from_mid)
            .collect();
        let wanted = height.map_or(Wanted::Paused, Wanted::Fit);
        for mid in mids {
            self.set_wanted(receiver, from, mid, wanted.clone(), now)?;
        }
        Ok(())
    }

    /// What `at` shows changed: its bandwidth is shared again, and video it did not show, and
    /// shows now, is offered. A video track is offered to a receiver only once it is shown (or
    /// before the receiver first says what it shows), and stays offered: str0m keeps an m-line
    /// for good, and visits each for every packet its connection sends.
    fn shown_changed(&mut self, at: usize, now: Instant) {
        self.allocate(at, now);
        self.offer_if_needed(at, now);
        self.ask_nodes_for_layers(now);
    }

    /// Shares `at`'s bandwidth estimate among the video tracks it shows (see [`allocator`]), and
    /// tells str0m what to probe for.
    pub(super) fn allocate(&mut self, at: usize, now: Instant) {
        let Some(estimate) = self.participants[at].estimate else { return };
        let mut shown = Vec::new();
        let mut demands = Vec::new();
        for (index, track) in self.participants[at].receiving.iter().enumerate() {
            if track.kind != MediaKind::Video || !matches!(track.state, Negotiation::Open(_)) {
                continue;
            }
            let Some(published) = self.published_track(track.from, track.from_mid) else { continue };
            // A track not sent now costs nothing, and is not worth probing for.
            if !published.sending(now) {
                continue;
            }
            let Some(wanted) = published.wanted_index(&track.wanted) else { continue };
            let first = self.speaking.first() == Some(&track.from) || published.resumed(now);
            shown.push(index);
            let unsent = track.current.is_none() && !track.started;
            demands.push(Demand { layers: published.bitrates(), wanted, first, unsent });
        }
        let desired: u64 = demands.iter().map(|d| d.layers[d.wanted.min(d.layers.len() - 1)]).sum();
        let age = now.saturating_duration_since(self.participants[at].joined);
        let estimate = allocator::young_estimate(estimate, &demands, age, INITIAL_ESTIMATE);
        let allocation = allocator::allocate(estimate, &demands);
        let me = &mut self.participants[at];
        let applied = me.allocation.update(allocation, &demands, estimate, now).clone();
        // str0m pads up to `minimum`: enough to show whether the next step up would fit, so that
        // the estimate can grow while the media sent is less than it (a sender that sends only
        // what the estimate allows never learns that more would go through).
        let (spent, step) = allocator::cost_and_next_step(&demands, &applied);
        let minimum = allocator::estimate_for(spent + step.unwrap_or(0));
        let desired = allocator::estimate_for(desired).max(minimum);
        for track in &mut me.receiving {
            track.ceiling = Ceiling::None;
        }
        for (index, layer) in shown.into_iter().zip(applied) {
            me.receiving[index].ceiling = layer.map_or(Ceiling::Off, Ceiling::Layer);
        }
        me.probing = (minimum, desired);
        me.rtc.bwe().set_bitrate(Bitrate::bps(minimum), Bitrate::bps(desired));
    }

    /// Tells each publisher which layers of its simulcast tracks anyone receives, here or on
    /// another node, so that it stops encoding and sending the others (LiveKit calls this
    /// dynacast).
    pub(super) fn pause_unneeded_layers(&mut self, now: Instant) {
        let mut told = Vec::new();
        for at in 0..self.participants.len() {
            for t in 0..self.participants[at].published.len() {
                let track = &self.participants[at].published[t];
                if track.layers.is_empty() {
                    continue;
                }
                let from = self.participants[at].id;
                let mut needed = self.needed_layers(from, track);
                for (_, layers) in &track.relayed {
                    for (layer, rid) in track.layers.iter().enumerate() {
                        needed[layer] |= layers.contains(&Some(*rid));
                    }
                }
                let track = &mut self.participants[at].published[t];
                let mut active = Vec::with_capacity(needed.len());
                for (layer, needed) in needed.into_iter().enumerate() {
                    let since = &mut track.unneeded_since[layer];
                    *since = if needed { None } else { Some(since.unwrap_or(now)) };
                    active.push(since.is_none_or(|since| now.duration_since(since) < PAUSE_UNNEEDED_AFTER));
                }
                let unchanged = track.told_active.as_ref().map_or(active.iter().all(|a| *a), |told| *told == active);
                if !unchanged {
                    let rids = track.layers.iter().zip(&active).filter(|(_, a)| **a).map(|(rid, _)| *rid).collect();
                    track.told_active = Some(active);
                    told.push(RouterOutput::Layers { to: from, mid: track.mid, active: rids });
                }
            }
        }
        self.outputs.extend(told);
    }

    /// Which layers of `from`'s `track` (lowest first; one for a track without simulcast) someone
    /// here receives, or may soon.
    pub(super) fn needed_layers(&self, from: PersonId, track: &Published) -> Vec<bool> {
        let mut needed = vec![false; track.layers.len().max(1)];
        for receiving in self.participants.iter().flat_map(|p| &p.receiving) {
            if receiving.from != from || receiving.from_mid != track.mid {
                continue;
            }
            let index = |rid: Rid| track.layers.iter().position(|l| *l == rid);
            if let Some(current) = receiving.current.and_then(index) {
                needed[current] = true;
            }
            let wanted = match receiving.state {
                Negotiation::Open(_) => track.capped(track.resolve(&receiving.wanted), receiving.ceiling),
                // About to receive it: the lowest layer, to start with.
                Negotiation::Silent | Negotiation::ToOffer | Negotiation::Offered(_) => Wanted::Any,
                Negotiation::ToStop(_) | Negotiation::Stopping(_) => Wanted::Paused,
            };
            match wanted {
                Wanted::Layer(rid) => needed[index(rid).unwrap_or(0)] = true,
                Wanted::Any | Wanted::Fit(_) => needed[0] = true,
                Wanted::Paused => {}
            }
        }
        needed
    }

    /// A receiver's bandwidth estimate, as str0m's would say it.
    #[cfg(test)]
    pub(super) fn estimated(&mut self, id: PersonId, bitrate: u64, now: Instant) {
        let at = self.index(id).expect("in the call");
        self.participants[at].estimate = Some(bitrate);
        self.allocate(at, now);
    }

    /// What str0m was last asked to probe for on `id`'s connection: at least, at most.
    #[cfg(test)]
    pub(super) fn probing(&self, id: PersonId) -> (u64, u64) {
        self.participants[self.index(id).expect("in the call")].probing
    }

    /// Whether `from`'s voice is forwarded now: always in a call small enough (its people here
    /// and on other nodes), else when among the loudest or those told as speaking.
    pub(super) fn audible_now(&mut self, from: PersonId, now: Instant) -> bool {
        if self.participants.len() + self.remote.len() <= self.all_voices_up_to {
            return true;
        }
        if self.audible_at.is_none_or(|at| now.duration_since(at) >= RANK_VOICES_EVERY) {
            self.audible = self.speakers.loudest(VOICES_FORWARDED, now);
            for id in &self.speaking {
                if !self.audible.contains(id) {
                    self.audible.push(*id);
                }
            }
            self.audible_at = Some(now);
        }
        self.audible.contains(&from)
    }
}
