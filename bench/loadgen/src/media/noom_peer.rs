//! One participant of a call through Noom's media server, signalled over Socket.IO as the web
//! client is: `room:join`, `call:join`, `sfu:join` with its offer (and the tiles of those already
//! in the call), then every `sfu:offer` answered, `sfu:view` for what it shows, `sfu:layers`
//! obeyed. One connection sends and receives.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use str0m::change::{SdpAnswer, SdpOffer};
use tokio::sync::{mpsc, oneshot};

use super::participant::{self, Command, Peer, Plan, Shared, Show};
use super::sio::{CLOSED, Socket};
use super::stats::Seen;
use crate::client::now_ns;

/// Joins the call and runs until the driver drops its sender of orders; says so through
/// `joined` once in the call.
pub async fn run(
    plan: Plan,
    shared: Rc<Shared>,
    seen: Rc<RefCell<Seen>>,
    joined: oneshot::Sender<()>,
    mut orders: mpsc::UnboundedReceiver<Show>,
) -> Result<()> {
    let (sio, mut pushes) = Socket::connect(shared.server).await?;
    let nickname = format!("load {}", plan.index);
    let entered = sio.call("room:join", json!({ "room": plan.room, "nickname": nickname })).await?;
    let id = entered["self"]["id"].as_str().context("room:join answered no id")?.to_string();
    let media = json!({ "audio": plan.publishes, "video": plan.publishes, "screen": false });
    let call = sio.call("call:join", json!({ "room": plan.room, "media": media })).await?;
    if call["via"] != "sfu" {
        bail!("the call is not through the media server: {call}");
    }
    shared.ids.borrow_mut().insert(plan.index, id);

    let peer = Peer::new(plan.clone(), &shared, seen.clone()).await?;
    let mut rtc = participant::connection(peer.local())?;
    let (offer, pending, audio, video) = participant::offer_to_send(&mut rtc)?;
    seen.borrow_mut().asked_ns = now_ns();
    let mut join = json!({ "room": plan.room, "sdp": offer.to_sdp_string() });
    let tiles = tiles_of(&plan.tiles, &shared.ids.borrow());
    if !tiles.is_empty() {
        join["tiles"] = tiles.into();
    }
    let answer = sio.call("sfu:join", join).await?;
    let answer = SdpAnswer::from_sdp_string(answer["sdp"].as_str().context("sfu:join answered no sdp")?)?;
    rtc.sdp_api().accept_answer(pending, answer)?;
    let (commands, obeyed) = mpsc::unbounded_channel();
    let _ = commands.send(Command::Send { rtc, audio, video });
    let mut media = tokio::task::spawn_local(peer.run(obeyed));
    let _ = joined.send(());

    let gone = || anyhow!("the participant's media stopped");
    loop {
        tokio::select! {
            push = pushes.recv() => {
                let Some((event, data)) = push else { bail!("the signalling connection closed") };
                match event.as_str() {
                    "sfu:offer" => {
                        let offer = SdpOffer::from_sdp_string(data["sdp"].as_str().context("an offer without sdp")?)?;
                        let (answer, answered) = oneshot::channel();
                        commands.send(Command::Offer(offer, answer)).map_err(|_| gone())?;
                        let answer = answered.await.map_err(|_| gone())??;
                        sio.emit("sfu:answer", json!({ "room": plan.room, "sdp": answer.to_sdp_string() }))?;
                    }
                    "sfu:layers" => {
                        let active = data["active"].as_array().context("sfu:layers without active")?;
                        let active = active.iter().filter_map(|a| a.as_str().map(str::to_string)).collect();
                        commands.send(Command::Layers(active)).map_err(|_| gone())?;
                    }
                    "sfu:closed" => bail!("the media server closed the connection"),
                    CLOSED => bail!("the signalling connection closed: {data}"),
                    _ => {}
                }
            }
            order = orders.recv() => {
                let Some(show) = order else { break };
                let tiles = tiles_of(&show.tiles, &shared.ids.borrow());
                sio.emit("sfu:view", json!({ "room": plan.room, "tiles": tiles }))?;
            }
            ended = &mut media => return ended?.and_then(|()| Err(gone())),
        }
    }
    drop(commands);
    media.await?
}

/// Tiles as `sfu:view` and `sfu:join` give them: of those in the call, by person id.
fn tiles_of(tiles: &[(u32, u32)], ids: &HashMap<u32, String>) -> Vec<serde_json::Value> {
    tiles.iter().filter_map(|(who, height)| Some(json!({ "id": ids.get(who)?, "height": height }))).collect()
}
