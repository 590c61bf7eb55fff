//! The calls the media benchmark makes: who is in which room, who publishes, what each shows.

use super::encoded::LAYERS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    /// One room of 50: each shows 25 tiles at the low layer and the speaker at the high one.
    Grid,
    /// Many rooms of 4: everyone shows the three others at the high layer.
    SmallRooms,
    /// One speaker and many listeners showing the speaker large.
    Webinar,
    /// A room where every tenth subscriber is behind a slow link.
    SlowTenth,
    /// Rooms of growing size, everyone showing everyone at the middle layer, until the server
    /// no longer holds the goals' loss and latency: the streams one core carries.
    Capacity,
}

impl Name {
    pub fn parse(s: &str) -> Option<Name> {
        [Name::Grid, Name::SmallRooms, Name::Webinar, Name::SlowTenth, Name::Capacity].into_iter().find(|n| n.id() == s)
    }

    pub fn id(self) -> &'static str {
        match self {
            Name::Grid => "grid",
            Name::SmallRooms => "rooms-of-4",
            Name::Webinar => "webinar",
            Name::SlowTenth => "slow-tenth",
            Name::Capacity => "capacity",
        }
    }
}

/// A scenario at one size.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: Name,
    pub rooms: usize,
    pub room_size: usize,
    /// The kbit/s of the slow link, for `SlowTenth` (none: the same room without it).
    pub slow_kbps: Option<u32>,
}

pub const HIGH: u32 = 720;
pub const MIDDLE: u32 = 360;
pub const LOW: u32 = 180;
/// The speaker everyone shows large in a grid or a webinar.
pub const SPEAKER: usize = 0;
/// In a call larger than this, Noom forwards only the 3 loudest voices (`--all-voices-up-to`).
const ALL_VOICES_UP_TO: usize = 12;
const LOUDEST: usize = 3;

impl Scenario {
    pub fn participants(&self) -> usize {
        self.rooms * self.room_size
    }

    pub fn publishes(&self, at: usize) -> bool {
        self.name != Name::Webinar || at == SPEAKER
    }

    pub fn slow(&self, at: usize) -> bool {
        self.name == Name::SlowTenth && self.slow_kbps.is_some() && at % 10 == 9
    }

    /// What participant `at` of a room shows: (who, at which height), by place in the room.
    pub fn view(&self, at: usize) -> Vec<(usize, u32)> {
        let n = self.room_size;
        let others = (1..n).map(|step| (at + step) % n);
        match self.name {
            Name::SmallRooms => others.map(|o| (o, HIGH)).collect(),
            Name::SlowTenth | Name::Capacity => others.map(|o| (o, MIDDLE)).collect(),
            Name::Webinar => {
                if at == SPEAKER {
                    Vec::new()
                } else {
                    vec![(SPEAKER, HIGH)]
                }
            }
            Name::Grid => {
                let mut tiles: Vec<_> = others.filter(|&o| o != SPEAKER).take(25).map(|o| (o, LOW)).collect();
                if at != SPEAKER {
                    tiles.push((SPEAKER, HIGH));
                }
                tiles
            }
        }
    }

    /// The voices participant `at` hears, as Noom forwards them: everyone's in a small call,
    /// the loudest few in a large one (here all speak equally loud: the first few).
    pub fn voices(&self, at: usize) -> Vec<usize> {
        let publishers = (0..self.room_size).filter(|&p| p != at && self.publishes(p));
        if self.room_size > ALL_VOICES_UP_TO { publishers.take(LOUDEST).collect() } else { publishers.collect() }
    }
}

/// What a step of the capacity sweep must hold to count as carried (the media server's goals,
/// `docs/benchmarks.md`): frames lost under 0.5% and video's p99 added latency under 20 ms, with
/// every participant seeing video and none failing.
pub const CARRIED_LOSS_UNDER: f64 = 0.5;
pub const CARRIED_P99_UNDER_MS: f64 = 20.0;
/// A step where the generator spent this share of its core or more measured the generator too:
/// the sweep stops there, and the server carried at least that step.
pub const GENERATOR_BOUND_AT: f64 = 0.9;
/// How a step of the sweep is labelled in the report, before its room's size.
pub const CAPACITY_LABEL: &str = "capacity: room of ";
/// The room sizes of the sweep, at full scale: one room of each, in turn, each on a fresh server.
pub const CAPACITY_SIZES: [usize; 10] = [12, 14, 16, 18, 20, 22, 24, 26, 28, 32];

/// The simulcast layer a tile of this height gets: the smallest at least as tall, else the top.
pub fn layer_for(height: u32) -> u8 {
    LAYERS.iter().position(|l| l.height >= height).unwrap_or(LAYERS.len() - 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_shows_25_tiles_low_and_the_speaker_high() {
        let grid = Scenario { name: Name::Grid, rooms: 1, room_size: 50, slow_kbps: None };
        let view = grid.view(7);
        assert_eq!(view.len(), 26);
        assert_eq!(view.iter().filter(|(_, h)| *h == LOW).count(), 25);
        assert!(view.contains(&(SPEAKER, HIGH)));
        assert!(!view.iter().any(|(who, _)| *who == 7));
        assert_eq!(grid.voices(7).len(), 3);
        assert_eq!(layer_for(LOW), 0);
        assert_eq!(layer_for(HIGH), 2);
    }
}
