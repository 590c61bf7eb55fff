//! What the router tells of each participant's media, for the admin panel.

use std::net::SocketAddr;

use serde::Serialize;
use str0m::media::{MediaKind, Rid};
use str0m::net::Protocol;

use super::CallRouter;
use crate::rooms::PersonId;
use crate::sfu::track::{Ceiling, Negotiation, Wanted};

/// One participant's media, as the admin panel shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantStats {
    pub id: PersonId,
    pub connected: bool,
    /// `udp` or `tcp`, once connected (`relay` for one whose datagrams come from a TURN
    /// server's relay, as the admin panel tells it).
    pub transport: Option<&'static str>,
    /// Where its datagrams come from.
    #[serde(skip)]
    pub remote: Option<SocketAddr>,
    /// Its connection's bandwidth estimate, bits a second.
    pub estimate: Option<u64>,
    /// What it publishes, all tracks, bits a second.
    pub publishing: Option<u64>,
    pub published: Vec<PublishedStats>,
    pub receiving: Vec<ReceivingStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublishedStats {
    pub kind: &'static str,
    /// Its layers, lowest first (one, named `null`, without simulcast).
    pub layers: Vec<LayerStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerStats {
    pub rid: Option<String>,
    /// Bits a second, as received.
    pub bitrate: Option<u64>,
    /// Picture height, from its last keyframe.
    pub height: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceivingStats {
    pub from: PersonId,
    pub kind: &'static str,
    /// The layer it is sent now, if any.
    pub layer: Option<String>,
    /// Whether its frames go to the receiver now.
    pub sending: bool,
    /// Bits a second, as sent.
    pub bitrate: Option<u64>,
    /// The share lost on the way, as the receiver reported it (0 to 1).
    pub loss: Option<f32>,
}

fn kind_name(kind: MediaKind) -> &'static str {
    if kind == MediaKind::Audio { "audio" } else { "video" }
}

impl CallRouter {
    /// Each participant's media: what they publish, what they receive, how fast, with what loss.
    pub fn stats(&self) -> Vec<ParticipantStats> {
        self.participants
            .iter()
            .map(|p| ParticipantStats {
                id: p.id,
                connected: p.connected,
                transport: p.transport.map(|(proto, _)| if proto == Protocol::Udp { "udp" } else { "tcp" }),
                remote: p.transport.map(|(_, remote)| remote),
                estimate: p.estimate,
                publishing: p.publishing.bitrate,
                published: p
                    .published
                    .iter()
                    .map(|track| {
                        let rids: Vec<Option<Rid>> = if track.layers.is_empty() {
                            vec![None]
                        } else {
                            track.layers.iter().copied().map(Some).collect()
                        };
                        let layers = rids
                            .into_iter()
                            .map(|rid| LayerStats {
                                rid: rid.map(|r| r.to_string()),
                                bitrate: track.rates.iter().find(|(l, _)| *l == rid).and_then(|(_, m)| m.bitrate),
                                height: rid.and_then(|r| track.heights.iter().find(|(l, _)| *l == r).map(|(_, h)| *h)),
                            })
                            .collect();
                        PublishedStats { kind: kind_name(track.kind), layers }
                    })
                    .collect(),
                receiving: p
                    .receiving
                    .iter()
                    .filter(|t| matches!(t.state, Negotiation::Open(_)))
                    .map(|t| ReceivingStats {
                        from: t.from,
                        kind: kind_name(t.kind),
                        layer: t.current.map(|r| r.to_string()),
                        sending: t.wanted != Wanted::Paused && t.ceiling != Ceiling::Off,
                        bitrate: t.sent.bitrate,
                        loss: t.sent.loss,
                    })
                    .collect(),
            })
            .collect()
    }
}
