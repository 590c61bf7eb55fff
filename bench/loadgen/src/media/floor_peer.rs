//! One participant of the floor: the same prepared frames at the same pace as a participant of
//! Noom, cut into datagrams of a packet's size, through the floor's relay (`noom-floor
//! --media-relay`), with no WebRTC at all: no ICE, no encryption, no RTCP, no retransmission.
//!
//! A datagram is one byte of kind (`S` subscribe, `M` a part of a frame, `L` its last part, which
//! carries the stamp), the publisher (4 bytes) and the layer (1), then the bytes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use anyhow::Result;
use tokio::sync::{mpsc, oneshot};

use super::pace::{Due, Policer, Sends};
use super::participant::{Plan, Shared, Show};
use super::scenarios::layer_for;
use super::stamp::{self, AUDIO, Stamp};
use super::stats::Seen;
use crate::client::now_ns;

/// What a WebRTC packet of video carries at most, so that the floor sends as many datagrams.
const PAYLOAD: usize = 1_160;
const HEADER: usize = 6;

pub async fn run(
    plan: Plan,
    shared: Rc<Shared>,
    seen: Rc<RefCell<Seen>>,
    joined: oneshot::Sender<()>,
    mut orders: mpsc::UnboundedReceiver<Show>,
) -> Result<()> {
    let udp = super::participant::udp_socket(shared.address).await?;
    udp.connect(shared.server).await?;
    let _ = joined.send(());
    let start = Instant::now();
    let mut sends = Sends::new(start, plan.index);
    let mut policer = plan.slow_kbps.map(|kbps| Policer::new(kbps, start));
    let mut layers: Vec<u8> = Vec::new();
    let mut partial: HashMap<(u32, u8), usize> = HashMap::new();
    let mut buf = vec![0u8; 2048];
    let mut datagram = Vec::with_capacity(PAYLOAD + HEADER);
    loop {
        tokio::select! {
            received = udp.recv(&mut buf) => {
                let n = received?;
                let mut link = Link { policer: &mut policer, partial: &mut partial, seen: &seen };
                link.receive(&buf[..n]);
                while let Ok(n) = udp.try_recv(&mut buf) {
                    link.receive(&buf[..n]);
                }
            }
            _ = tokio::time::sleep_until(sends.next().into()) => {
                let now = Instant::now();
                if !plan.publishes {
                    sends.skip_to(now);
                    continue;
                }
                while let Some(due) = sends.due(now) {
                    let (frame, layer, n) = match due {
                        Due::Audio { n } => (&shared.media.audio[n as usize % shared.media.audio.len()], AUDIO, n),
                        Due::Video { layer, at, n } => {
                            if !layers.contains(&(layer as u8)) {
                                continue;
                            }
                            let frames = &shared.media.video[layer];
                            (&frames[at % frames.len()], layer as u8, n)
                        }
                    };
                    let stamped = Stamp { layer, publisher: plan.index, seq: n as u32, sent_ns: now_ns() }.append_to(&frame.data);
                    let parts = stamped.chunks(PAYLOAD).count();
                    for (i, part) in stamped.chunks(PAYLOAD).enumerate() {
                        datagram.clear();
                        datagram.push(if i + 1 == parts { b'L' } else { b'M' });
                        datagram.extend_from_slice(&plan.index.to_be_bytes());
                        datagram.push(layer);
                        datagram.extend_from_slice(part);
                        let _ = udp.try_send(&datagram);
                    }
                }
            }
            order = orders.recv() => match order {
                Some(show) => {
                    seen.borrow_mut().asked_ns = now_ns();
                    let wanted = show.tiles.iter().map(|&(who, height)| (who, layer_for(height)))
                        .chain(show.voices.iter().map(|&who| (who, AUDIO)));
                    for (who, layer) in wanted {
                        datagram.clear();
                        datagram.push(b'S');
                        datagram.extend_from_slice(&who.to_be_bytes());
                        datagram.push(layer);
                        udp.send(&datagram).await?;
                    }
                    layers = show.layers;
                }
                None => return Ok(()),
            },
        }
    }
}

/// What comes in, through the slow link if the participant is behind one.
struct Link<'a> {
    policer: &'a mut Option<Policer>,
    /// The bytes of each stream's frame so far.
    partial: &'a mut HashMap<(u32, u8), usize>,
    seen: &'a RefCell<Seen>,
}

impl Link<'_> {
    fn receive(&mut self, datagram: &[u8]) {
        if let Some(policer) = self.policer.as_mut()
            && !policer.admit(Instant::now(), datagram.len())
        {
            return;
        }
        let (Some(&kind), Some(publisher), Some(&layer)) = (datagram.first(), datagram.get(1..5), datagram.get(5))
        else {
            return;
        };
        let key = (u32::from_be_bytes(publisher.try_into().unwrap_or_default()), layer);
        let size = self.partial.entry(key).or_default();
        *size += datagram.len() - HEADER;
        if kind == b'L'
            && let Some(stamp) = stamp::read(&datagram[HEADER..])
        {
            let frame = std::mem::take(size);
            self.seen.borrow_mut().frame(now_ns(), frame, stamp, false);
        }
    }
}
