//! Who is speaking in a call, from the audio level each browser writes in its packets (RFC 6464:
//! 0 is the loudest, -127 silence), as the loudest first, told a few times a second at most.
//!
//! Each person's loudness is smoothed over about a fifth of a second, so that a cough or the gap
//! between two words moves nothing; someone whose audio stops (Opus sends next to nothing in
//! silence) is quiet at once. Two voices about as loud keep their order.

use std::time::{Duration, Instant};

use crate::rooms::PersonId;

/// The speakers are told at most this often.
pub const UPDATE_EVERY: Duration = Duration::from_millis(250);
/// At most this many speakers are told, the loudest first.
pub const MAX_SPEAKERS: usize = 3;
/// Quieter than this (in dB below the loudest) is not speaking.
const THRESHOLD: f32 = 50.0;
/// Audio not heard for this long is silence.
const SILENT_AFTER: Duration = Duration::from_millis(600);
/// Each frame moves the smoothed loudness this far towards its own.
const SMOOTHING: f32 = 0.2;
/// A speaker passes another only when louder by this much.
const MARGIN: f32 = 3.0;

#[derive(Default)]
pub struct Speakers {
    people: Vec<Voice>,
    told: Vec<PersonId>,
    next_update: Option<Instant>,
    /// Tell at the next update even if nothing changed.
    must_tell: bool,
}

struct Voice {
    id: PersonId,
    /// Smoothed, from 0 (silence) to 127 (the loudest).
    loudness: f32,
    last_heard: Instant,
}

impl Speakers {
    /// A frame of `id`'s audio came with this level and voice activity flag.
    pub fn heard(&mut self, id: PersonId, level: i8, voice: bool, now: Instant) {
        let frame = if voice { f32::from(level.clamp(-127, 0)) + 127.0 } else { 0.0 };
        match self.people.iter_mut().find(|v| v.id == id) {
            Some(v) => {
                // After a silence, start from silence.
                if now.duration_since(v.last_heard) > SILENT_AFTER {
                    v.loudness = 0.0;
                }
                v.loudness += (frame - v.loudness) * SMOOTHING;
                v.last_heard = now;
            }
            None => self.people.push(Voice { id, loudness: frame * SMOOTHING, last_heard: now }),
        }
    }

    pub fn forget(&mut self, id: PersonId) {
        self.people.retain(|v| v.id != id);
    }

    /// The `n` loudest now, louder than silence, loudest first: no smoothing of the order, so that
    /// someone who starts speaking is among them at once.
    pub fn loudest(&self, n: usize, now: Instant) -> Vec<PersonId> {
        let mut loud: Vec<(PersonId, f32)> = self
            .people
            .iter()
            .filter(|v| now.duration_since(v.last_heard) <= SILENT_AFTER && v.loudness > 127.0 - THRESHOLD)
            .map(|v| (v.id, v.loudness))
            .collect();
        loud.sort_by(|a, b| b.1.total_cmp(&a.1));
        loud.into_iter().take(n).map(|(id, _)| id).collect()
    }

    /// Someone new is listening: the speakers are told again at the next update, changed or not.
    pub fn tell_again(&mut self) {
        self.must_tell = true;
    }

    /// The speakers, loudest first, when they changed since last told (or someone new listens)
    /// and it is time to tell.
    pub fn update(&mut self, now: Instant) -> Option<Vec<PersonId>> {
        if self.next_update.is_some_and(|next| now < next) {
            return None;
        }
        let loudness = |v: &Voice| {
            if now.duration_since(v.last_heard) > SILENT_AFTER { 0.0 } else { v.loudness }
        };
        let mut speaking: Vec<(PersonId, f32)> = self
            .people
            .iter()
            .map(|v| (v.id, loudness(v)))
            .filter(|(_, loudness)| *loudness > 127.0 - THRESHOLD)
            .collect();
        // Loudest first, but one told before keeps its place over one not louder by the margin:
        // each told speaker counts a margin louder than the one told after it, and than anyone
        // not told. (Comparing "within the margin" pairwise is no order at all: with many voices
        // about as loud, the sort found that out and panicked.)
        let told = self.told.len();
        let rank = |id: PersonId| self.told.iter().position(|t| *t == id).unwrap_or(told);
        let held = |(id, loudness): &(PersonId, f32)| loudness + MARGIN * (told - rank(*id)) as f32;
        speaking.sort_by(|a, b| held(b).total_cmp(&held(a)).then_with(|| rank(a.0).cmp(&rank(b.0))));
        let speakers: Vec<PersonId> = speaking.into_iter().take(MAX_SPEAKERS).map(|(id, _)| id).collect();
        if speakers == self.told && !self.must_tell {
            return None;
        }
        self.must_tell = false;
        self.next_update = Some(now + UPDATE_EVERY);
        self.told = speakers.clone();
        Some(speakers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    /// Feeds `seconds` of 20 ms frames, each person at their level (`None`: no audio at all),
    /// and returns every update told.
    fn talk(
        s: &mut Speakers,
        now: &mut Instant,
        seconds: f32,
        levels: &[(PersonId, Option<i8>)],
    ) -> Vec<Vec<PersonId>> {
        let mut told = Vec::new();
        for _ in 0..(seconds / 0.02) as usize {
            *now += FRAME;
            for (id, level) in levels {
                if let Some(level) = level {
                    s.heard(*id, *level, *level > -60, *now);
                }
            }
            told.extend(s.update(*now));
        }
        told
    }

    #[test]
    fn the_loudest_first_the_silent_left_out_and_a_speaker_who_stops_is_gone_at_once() {
        let (a, b, c) = (PersonId::random(), PersonId::random(), PersonId::random());
        let (mut s, mut now) = (Speakers::default(), Instant::now());
        let told = talk(&mut s, &mut now, 1.0, &[(a, Some(-20)), (b, Some(-40)), (c, Some(-100))]);
        assert_eq!(told.last().unwrap(), &vec![a, b], "c is silent");
        // a stops sending (Opus in silence): gone within the silence bound and an update.
        let told = talk(&mut s, &mut now, 1.0, &[(a, None), (b, Some(-40)), (c, Some(-100))]);
        assert_eq!(told.last().unwrap(), &vec![b]);
        s.forget(b);
        let told = talk(&mut s, &mut now, 0.5, &[(c, Some(-100))]);
        assert_eq!(told.last().unwrap(), &Vec::<PersonId>::new());
    }

    #[test]
    fn told_a_few_times_a_second_at_most_however_the_voices_move() {
        let (a, b) = (PersonId::random(), PersonId::random());
        let (mut s, mut now) = (Speakers::default(), Instant::now());
        let mut told = 0;
        // Every 100 ms the other one is much louder.
        for i in 0..20 {
            let (loud, soft) = if i % 2 == 0 { (a, b) } else { (b, a) };
            told += talk(&mut s, &mut now, 0.1, &[(loud, Some(-10)), (soft, Some(-45))]).len();
        }
        assert!(told <= (2.0 / UPDATE_EVERY.as_secs_f32()) as usize + 1, "{told} updates in 2 s");
    }

    #[test]
    fn two_voices_about_as_loud_keep_their_order() {
        let (a, b) = (PersonId::random(), PersonId::random());
        let (mut s, mut now) = (Speakers::default(), Instant::now());
        talk(&mut s, &mut now, 1.0, &[(a, Some(-30)), (b, Some(-45))]);
        let told = talk(&mut s, &mut now, 2.0, &[(a, Some(-30)), (b, Some(-29))]);
        assert!(told.is_empty(), "a stays first: {told:?}");
        let told = talk(&mut s, &mut now, 2.0, &[(a, Some(-30)), (b, Some(-15))]);
        assert_eq!(told.last().unwrap(), &vec![b, a]);
    }

    #[test]
    fn many_voices_about_as_loud_are_ranked_without_fail() {
        // Pairwise "within the margin" comparisons are not transitive; a sort given them may
        // panic. Fifty voices a decibel apart, told, then rearranged.
        let mut speakers = Speakers::default();
        let start = Instant::now();
        let people: Vec<PersonId> = (0..50).map(|_| PersonId::random()).collect();
        for round in 0..20u32 {
            let now = start + UPDATE_EVERY * (round + 1);
            for (i, id) in people.iter().enumerate() {
                let level = -(((i as u32 * 7 + round * 13) % 50) as i8);
                speakers.heard(*id, level, true, now);
            }
            if let Some(told) = speakers.update(now) {
                assert!(told.len() <= MAX_SPEAKERS);
            }
        }
    }
}
