//! What each receiver's bandwidth allows: of the video tracks it shows, which layer of each it is
//! sent, within its estimate (str0m's, from TWCC feedback), shared across its tracks.
//!
//! As the best media servers do (Jitsi Videobridge's allocation, LiveKit's stream allocator,
//! mediasoup's distribution of the available bitrate): first every track its lowest layer, the
//! most important first, as long as they fit; then, in the same order, each track one layer up at
//! a time, until none can go up within the estimate or each has the layer its tile wants. A track
//! whose lowest layer does not fit is not sent, except the first: as Jitsi Videobridge does for
//! its on-stage participant, one picture always moves, at its lowest layer (an estimate can fall
//! far for a moment, when everyone's video starts at once; a link that truly cannot carry it shows
//! as loss on the quality bars); a young connection has every lowest layer budgeted
//! ([`young_estimate`]). Who speaks, and a track just sent again after a pause (its viewers
//! were watching it another way), come first; then the others in the order the receiver shows them.
//!
//! Switching down is at once, as soon as what a receiver gets no longer fits its whole estimate;
//! switching up needs room within [`VIDEO_SHARE`] of it, and waits until the estimate has allowed
//! it for [`UP_AFTER`] ([`Hysteresis`]), so that an estimate that swings does not make layers
//! flap (each switch costs a keyframe).

use std::time::{Duration, Instant};

/// How long an estimate must allow more before a receiver is switched up.
pub const UP_AFTER: Duration = Duration::from_secs(3);

/// The share of the estimate video may be raised into: the rest is headroom for audio,
/// retransmissions and the estimate's own error.
const VIDEO_SHARE: f64 = 0.85;

/// The share of the estimate what a receiver gets may use before it is lowered. Between this and
/// [`VIDEO_SHARE`], what it gets is kept: str0m's estimator (Google congestion control) answers a
/// moment of queueing by setting the estimate to 0.85 times the rate acknowledged, which is
/// about what is sent plus its padding, and then climbs back over seconds. Lowered at 0.85 of
/// that, every such moment cost a receiver its layer for the [`UP_AFTER`] that follows; in the
/// media benchmark's webinar, half the listeners sat on the middle layer at any time.
const KEEP_SHARE: f64 = 1.0;

/// One video track a receiver shows, as the allocator sees it.
#[derive(Debug, Clone)]
pub struct Demand {
    /// Each layer's bitrate, in bits a second, lowest first (one entry without simulcast).
    pub layers: Vec<u64>,
    /// The highest layer its tile wants (an index into `layers`).
    pub wanted: usize,
    /// Served first: someone speaking, or a track just sent again (see `Published::resumed`).
    pub first: bool,
    /// Nothing of it was sent to this receiver yet: a picture appearing (someone who joined, or
    /// came back) is not held back as a raise is ([`Hysteresis`]).
    pub unsent: bool,
}

/// Of each demand, the layer sent (an index), or `None`: nothing fits.
pub type Allocation = Vec<Option<usize>>;

/// The layers that fit `estimate` bits a second, for `demands` in the order the receiver shows
/// them.
pub fn allocate(estimate: u64, demands: &[Demand]) -> Allocation {
    let budget = (estimate as f64 * VIDEO_SHARE) as u64;
    let mut order: Vec<usize> = (0..demands.len()).collect();
    // Stable: among equals, the receiver's own order.
    order.sort_by_key(|at| !demands[*at].first);
    let mut chosen: Allocation = vec![None; demands.len()];
    let mut spent = 0u64;
    for (rank, &at) in order.iter().enumerate() {
        let Some(&lowest) = demands[at].layers.first() else { continue };
        if rank == 0 || spent + lowest <= budget {
            chosen[at] = Some(0);
            spent += lowest;
        }
    }
    loop {
        let mut raised = false;
        for &at in &order {
            let demand = &demands[at];
            let Some(layer) = chosen[at] else { continue };
            let top = demand.wanted.min(demand.layers.len() - 1);
            if layer >= top {
                continue;
            }
            let more = demand.layers[layer + 1].saturating_sub(demand.layers[layer]);
            if spent + more <= budget {
                chosen[at] = Some(layer + 1);
                spent += more;
                raised = true;
            }
        }
        if !raised {
            return chosen;
        }
    }
}

/// How long a receiver's connection is young (see [`young_estimate`]).
pub const YOUNG_FOR: Duration = Duration::from_secs(8);

/// The estimate to share among a young connection's tracks: at least what every track's lowest
/// layer takes, up to `initial` (what str0m assumes of any new connection). In its first seconds
/// a connection carries little, and the estimator answers the least queueing with 0.85 times
/// what was acknowledged: on a busy machine, estimates fell from 1 Mbit/s to 150 kbit/s within a
/// second of connecting and took five more to climb back, and a picture arriving meanwhile (the
/// others of a call that moved to another node) stayed dark while the first one moved. Raises
/// above the lowest layers still wait for the estimate.
pub fn young_estimate(estimate: u64, demands: &[Demand], age: Duration, initial: u64) -> u64 {
    if age >= YOUNG_FOR {
        return estimate;
    }
    let lowest: u64 = demands.iter().filter_map(|d| d.layers.first()).sum();
    // Rounded up, so that the budget taken back from it holds every lowest layer.
    let needed = (lowest as f64 / VIDEO_SHARE).ceil() as u64 + 1;
    estimate.max(needed.min(initial))
}

/// The estimate that would carry this much video (the inverse of the share video gets).
pub fn estimate_for(video: u64) -> u64 {
    (video as f64 / VIDEO_SHARE) as u64
}

/// What `allocation` costs, and the least more that would raise one track a step toward what its
/// tile wants (starting one not sent counts as a step); `None` when every track has its wish.
pub fn cost_and_next_step(demands: &[Demand], allocation: &Allocation) -> (u64, Option<u64>) {
    let mut spent = 0;
    let mut step: Option<u64> = None;
    for (demand, chosen) in demands.iter().zip(allocation) {
        let top = demand.wanted.min(demand.layers.len().saturating_sub(1));
        let more = match *chosen {
            Some(layer) => {
                spent += demand.layers[layer];
                (layer < top).then(|| demand.layers[layer + 1].saturating_sub(demand.layers[layer]))
            }
            None => demand.layers.first().copied(),
        };
        if let Some(more) = more {
            step = Some(step.map_or(more, |s| s.min(more)));
        }
    }
    (spent, step)
}

/// The allocation a receiver is given: lower at once when what it gets no longer fits the
/// estimate (or its tile wants less), a raise once the new allocation has held; kept otherwise.
///
/// A change that only moves the budget from one track to another (the speaker changed, a track
/// sent again) waits as a raise does: applying its lowering at once and its raise later would
/// leave both tracks low, or off, meanwhile; and a speaker who speaks briefly should not cost
/// everyone a keyframe each way. A track nothing of which was sent yet is the exception: the new
/// allocation that starts it is applied at once, for a newcomer's tile left dark for the wait
/// (3 s, and longer when the estimate dips meanwhile) looked like a failed call.
#[derive(Debug, Default)]
pub struct Hysteresis {
    current: Allocation,
    /// Since when the allocation computed has differed from the current one by a raise somewhere.
    higher_since: Option<Instant>,
}

impl Hysteresis {
    /// Takes a new allocation computed for the same demands as the last (a different number of
    /// demands starts afresh) within `estimate`; returns the one to apply.
    pub fn update(&mut self, computed: Allocation, demands: &[Demand], estimate: u64, now: Instant) -> &Allocation {
        if computed.len() != self.current.len() {
            self.current = computed;
            self.higher_since = None;
            return &self.current;
        }
        // A tile that wants less gets less at once, whatever the estimate.
        for ((old, new), demand) in self.current.iter_mut().zip(&computed).zip(demands) {
            let top = demand.wanted.min(demand.layers.len().saturating_sub(1));
            if old.is_some_and(|layer| layer > top) {
                *old = *new;
            }
        }
        let cost = |allocation: &Allocation| cost_and_next_step(demands, allocation).0;
        // What is computed may exceed the estimate by the first track's lowest layer (see
        // `allocate`): what costs no more still fits.
        let keep = ((estimate as f64 * KEEP_SHARE) as u64).max(cost(&computed));
        if cost(&self.current) > keep {
            // Down at once, where it went down: what it gets now does not fit.
            for (old, new) in self.current.iter_mut().zip(&computed) {
                if new < old {
                    *old = *new;
                }
            }
        }
        if !computed.iter().zip(&self.current).any(|(new, old)| new > old) {
            self.higher_since = None;
            return &self.current;
        }
        let starts = demands.iter().zip(&computed).zip(&self.current);
        if starts.into_iter().any(|((demand, new), old)| demand.unsent && new.is_some() && old.is_none()) {
            self.current = computed;
            self.higher_since = None;
            return &self.current;
        }
        let since = *self.higher_since.get_or_insert(now);
        if now.duration_since(since) >= UP_AFTER {
            self.current = computed;
            self.higher_since = None;
        }
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMERA: [u64; 3] = [150_000, 500_000, 1_700_000];

    fn camera(wanted: usize, first: bool) -> Demand {
        Demand { layers: CAMERA.to_vec(), wanted, first, unsent: false }
    }

    #[test]
    fn a_young_connection_gets_every_lowest_layer_whatever_its_estimate_and_no_more() {
        let demands = [camera(2, false), camera(2, false), camera(2, false)];
        let young = young_estimate(150_000, &demands, Duration::from_secs(2), 1_000_000);
        assert_eq!(allocate(young, &demands), vec![Some(0); 3]);
        // Up to what any new connection is assumed to carry.
        let many = vec![camera(2, false); 20];
        assert_eq!(young_estimate(150_000, &many, Duration::from_secs(2), 1_000_000), 1_000_000);
        // A higher estimate stays, and once grown up the estimate is the estimator's.
        assert_eq!(young_estimate(2_000_000, &demands, Duration::from_secs(2), 1_000_000), 2_000_000);
        let grown = young_estimate(150_000, &demands, YOUNG_FOR, 1_000_000);
        assert_eq!(allocate(grown, &demands), vec![Some(0), None, None]);
    }

    #[test]
    fn a_picture_nothing_of_which_was_sent_starts_at_once_and_one_sent_before_waits() {
        let start = Instant::now();
        let later = start + Duration::from_millis(100);
        // Room for one low picture and then for two: the second, new, starts at once.
        for (unsent, expected) in [(true, vec![Some(0), Some(0)]), (false, vec![Some(0), None])] {
            let mut h = Hysteresis::default();
            let demands = [camera(2, false), Demand { unsent, ..camera(2, false) }];
            h.update(vec![Some(0), None], &demands, 200_000, start);
            assert_eq!(h.update(vec![Some(0), Some(0)], &demands, 400_000, later), &expected, "unsent: {unsent}");
        }
    }

    #[test]
    fn a_free_link_gets_every_tile_the_layer_it_wants() {
        let demands = [camera(2, false), camera(0, false), camera(1, false)];
        assert_eq!(allocate(10_000_000, &demands), vec![Some(2), Some(0), Some(1)]);
    }

    #[test]
    fn a_slow_link_gets_everyone_low_before_anyone_high() {
        // 1 Mbit/s: 850 kbit/s for video. Three lows (450), then one up to the middle (+350).
        let demands = [camera(2, false), camera(2, false), camera(2, false)];
        assert_eq!(allocate(1_000_000, &demands), vec![Some(1), Some(0), Some(0)]);
    }

    #[test]
    fn the_speaker_comes_first() {
        let demands = [camera(2, false), camera(2, true)];
        assert_eq!(allocate(800_000, &demands), vec![Some(0), Some(1)]);
        // Too little for two lows: the first one only.
        assert_eq!(allocate(200_000, &demands), vec![None, Some(0)]);
    }

    #[test]
    fn when_nothing_fits_the_first_still_gets_its_lowest_layer_and_no_other_does() {
        assert_eq!(allocate(50_000, &[camera(2, false)]), vec![Some(0)]);
        assert_eq!(allocate(50_000, &[camera(2, false), camera(2, true), camera(2, false)]), vec![None, Some(0), None]);
        assert_eq!(allocate(50_000, &[]), Vec::<Option<usize>>::new());
    }

    #[test]
    fn the_next_step_is_the_cheapest_raise_toward_what_the_tiles_want() {
        let demands = [camera(2, false), camera(0, false), camera(1, false)];
        assert_eq!(cost_and_next_step(&demands, &vec![Some(0), Some(0), None]), (300_000, Some(150_000)));
        assert_eq!(cost_and_next_step(&demands, &vec![Some(1), Some(0), Some(0)]), (800_000, Some(350_000)));
        assert_eq!(cost_and_next_step(&demands, &vec![Some(2), Some(0), Some(1)]), (2_350_000, None));
    }

    #[test]
    fn down_at_once_up_only_after_it_held() {
        let start = Instant::now();
        let mut h = Hysteresis::default();
        let one = [camera(2, false)];
        let mut update = |allocation: Vec<Option<usize>>, estimate: u64, at: Instant| {
            h.update(allocation, &one, estimate, at).clone()
        };
        assert_eq!(update(vec![Some(2)], 5_000_000, start), vec![Some(2)]);
        assert_eq!(update(vec![Some(0)], 200_000, start + Duration::from_secs(1)), vec![Some(0)], "down at once");
        let up = start + Duration::from_secs(2);
        assert_eq!(update(vec![Some(2)], 5_000_000, up), vec![Some(0)], "not up yet");
        assert_eq!(update(vec![Some(2)], 5_000_000, up + UP_AFTER / 2), vec![Some(0)]);
        assert_eq!(update(vec![Some(2)], 5_000_000, up + UP_AFTER), vec![Some(2)], "up once it held");
        // An estimate that dips resets the wait.
        assert_eq!(update(vec![Some(1)], 1_000_000, up + UP_AFTER * 2), vec![Some(1)]);
        let later = up + UP_AFTER * 2 + Duration::from_millis(100);
        assert_eq!(update(vec![Some(2)], 5_000_000, later), vec![Some(1)]);
        assert_eq!(update(vec![Some(1)], 1_000_000, later + UP_AFTER / 2), vec![Some(1)]);
        assert_eq!(update(vec![Some(2)], 5_000_000, later + UP_AFTER), vec![Some(1)], "the wait began again");
    }

    #[test]
    fn what_is_sent_is_kept_while_it_fits_the_whole_estimate() {
        let start = Instant::now();
        let mut h = Hysteresis::default();
        let one = [camera(2, false)];
        assert_eq!(h.update(vec![Some(2)], &one, 5_000_000, start), &vec![Some(2)]);
        // 1.8 Mbit/s leaves no room to raise to the top layer (1.7), but it still carries it.
        let dip = start + Duration::from_secs(1);
        assert_eq!(allocate(1_800_000, &one), vec![Some(1)]);
        assert_eq!(h.update(vec![Some(1)], &one, 1_800_000, dip), &vec![Some(2)], "kept");
        assert_eq!(h.update(vec![Some(1)], &one, 1_600_000, dip), &vec![Some(1)], "no longer fits");
        // A tile that wants less gets less at once, whatever the estimate.
        let mut h = Hysteresis::default();
        h.update(vec![Some(2)], &one, 5_000_000, start);
        assert_eq!(h.update(vec![Some(0)], &[camera(0, false)], 5_000_000, dip), &vec![Some(0)]);
    }

    #[test]
    fn a_picture_handed_over_to_another_waits_and_is_never_off_meanwhile() {
        // Room for one low picture: the speaker changes from the second to the first.
        let start = Instant::now();
        let mut h = Hysteresis::default();
        let demands = [camera(2, true), camera(2, false)];
        let before = vec![None, Some(0)];
        assert_eq!(h.update(before.clone(), &demands, 200_000, start), &before);
        let handed = vec![Some(0), None];
        assert_eq!(
            h.update(handed.clone(), &demands, 200_000, start + Duration::from_secs(1)),
            &before,
            "the old one stays"
        );
        assert_eq!(
            h.update(handed.clone(), &demands, 200_000, start + Duration::from_secs(1) + UP_AFTER),
            &handed,
            "once it held"
        );
        // The estimate falls under what is sent: down at once, the raise still waiting.
        let mut h = Hysteresis::default();
        let both = vec![Some(1), Some(0)];
        h.update(both, &demands, 1_000_000, start);
        assert_eq!(
            h.update(vec![None, Some(0)], &demands, 100_000, start + Duration::from_secs(1)),
            &vec![None, Some(0)]
        );
        assert_eq!(
            h.update(vec![Some(0), None], &demands, 200_000, start + Duration::from_secs(2)),
            &vec![None, Some(0)]
        );
    }
}
