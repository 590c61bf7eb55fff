//! One participant of a call through Janus's VideoRoom, driven as janus.js drives it: a
//! publisher handle that joins the room and publishes the camera (simulcast from its offer, its
//! rids named lowest first) and the voice; once told what to show, a subscriber handle that
//! joins with the streams it wants (the tiles' cameras, the voices it hears), answers Janus's
//! offer, and picks each camera's layer with `configure` and `substream`. Two connections, on
//! the participant's one socket.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer};
use tokio::sync::{mpsc, oneshot};

use super::janus::Janus;
use super::participant::{self, Command, Peer, Plan, Shared, Show};
use super::scenarios::layer_for;
use super::stats::Seen;
use crate::client::now_ns;

/// Creates the rooms of a run, each for `size` publishers.
pub async fn create_rooms(server: SocketAddr, rooms: impl Iterator<Item = String>, size: usize) -> Result<()> {
    let (janus, _) = Janus::connect(server).await?;
    let handle = janus.attach().await?;
    for room in rooms {
        let create = json!({
            "request": "create", "room": room, "publishers": size,
            "videocodec": "vp8", "audiocodec": "opus", "notify_joining": false,
        });
        janus.message(handle, create, None).await?;
    }
    Ok(())
}

/// Joins the room (publishing, when the plan says so) and runs until the driver drops its
/// sender of orders; says so through `joined` once in the room.
pub async fn run(
    plan: Plan,
    shared: Rc<Shared>,
    seen: Rc<RefCell<Seen>>,
    joined: oneshot::Sender<()>,
    mut orders: mpsc::UnboundedReceiver<Show>,
) -> Result<()> {
    let (janus, mut pushes) = Janus::connect(shared.server).await?;
    let peer = Peer::new(plan.clone(), &shared, seen.clone()).await?;
    let local = peer.local();
    let (commands, obeyed) = mpsc::unbounded_channel();
    let mut media = tokio::task::spawn_local(peer.run(obeyed));
    let gone = || anyhow!("the participant's media stopped");
    if plan.publishes {
        let handle = janus.attach().await?;
        let join = json!({
            "request": "join", "ptype": "publisher", "room": plan.room,
            "id": plan.index.to_string(), "display": format!("load {}", plan.index),
        });
        janus.message(handle, join, None).await?;
        let mut rtc = participant::connection(local)?;
        let (offer, pending, audio, video) = participant::offer_to_send(&mut rtc)?;
        let jsep = json!({ "type": "offer", "sdp": offer.to_sdp_string(), "trickle": false, "rid_order": "lmh" });
        let (_, answer) = janus.message(handle, json!({ "request": "publish" }), Some(jsep)).await?;
        rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(sdp_of(&answer)?)?)?;
        shared.mids.borrow_mut().insert(plan.index, (audio, video));
        commands.send(Command::Send { rtc, audio, video }).map_err(|_| gone())?;
        // Janus knows the feed once its connection is up: subscribing before is refused.
        loop {
            let push = pushes.recv().await;
            if push.as_ref().is_some_and(|p| p["janus"] == "webrtcup" && p["sender"] == handle) {
                break;
            }
            note(push)?;
        }
    }
    shared.ids.borrow_mut().insert(plan.index, plan.index.to_string());
    let _ = joined.send(());
    loop {
        tokio::select! {
            order = orders.recv() => {
                let Some(show) = order else { break };
                subscribe(&janus, &plan, &shared, &seen, local, &show, &commands).await?;
            }
            push = pushes.recv() => note(push)?,
            ended = &mut media => return ended?.and_then(|()| Err(gone())),
        }
    }
    drop(commands);
    media.await?
}

/// What Janus says unasked that ends the participant: the connection gone, a hangup.
fn note(push: Option<Value>) -> Result<()> {
    let Some(push) = push else { bail!("the connection to Janus closed") };
    match push["janus"].as_str() {
        Some("closed") => bail!("the connection to Janus closed: {}", push["reason"]),
        Some("hangup") => bail!("Janus hung up: {}", push["reason"]),
        _ => Ok(()),
    }
}

/// How often, and how far apart, a subscriber's join refused for a feed or a stream not yet
/// listed is asked again: on a loaded machine (the test command's smoke, debug builds) the
/// VideoRoom listed a feed's streams more than 3 s after its `webrtcup`.
const JOIN_TRIES: usize = 50;
const JOIN_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// Whether the VideoRoom refused a subscriber's join for a feed or a stream it does not list yet.
fn not_listed_yet(refusal: &str) -> bool {
    refusal.contains("No such mid") || refusal.contains("No such feed")
}

/// A subscriber handle for what `show` names, its connection handed to the peer, each
/// camera's layer chosen by its tile's height.
async fn subscribe(
    janus: &Janus,
    plan: &Plan,
    shared: &Shared,
    seen: &RefCell<Seen>,
    local: SocketAddr,
    show: &Show,
    commands: &mpsc::UnboundedSender<Command>,
) -> Result<()> {
    let heights: HashMap<String, u32> = show.tiles.iter().map(|(who, h)| (who.to_string(), *h)).collect();
    let streams: Vec<Value> = {
        let mids = shared.mids.borrow();
        let cameras = show.tiles.iter().filter_map(|(who, _)| Some((*who, mids.get(who)?.1)));
        let voices = show.voices.iter().filter_map(|who| Some((*who, mids.get(who)?.0)));
        cameras.chain(voices).map(|(who, mid)| json!({ "feed": who.to_string(), "mid": mid.to_string() })).collect()
    };
    if streams.is_empty() {
        return Ok(());
    }
    let handle = janus.attach().await?;
    seen.borrow_mut().asked_ns = now_ns();
    let join = json!({ "request": "join", "ptype": "subscriber", "room": plan.room, "streams": streams });
    // A feed's connection can be up (`webrtcup`) a while before the VideoRoom lists the feed and
    // its every stream: a join naming one of those is refused, and asked again.
    let mut tries = 0;
    let (attached, offer) = loop {
        match janus.message(handle, join.clone(), None).await {
            Err(e) if tries < JOIN_TRIES && not_listed_yet(&e.to_string()) => {
                tries += 1;
                tokio::time::sleep(JOIN_AGAIN_AFTER).await;
            }
            answered => break answered?,
        }
    };
    let mut rtc = participant::connection(local)?;
    let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(sdp_of(&offer)?)?)?;
    let jsep = json!({ "type": "answer", "sdp": answer.to_sdp_string(), "trickle": false });
    janus.message(handle, json!({ "request": "start" }), Some(jsep)).await?;
    commands.send(Command::Receive(rtc)).map_err(|_| anyhow!("the participant's media stopped"))?;
    let layers: Vec<Value> = attached["streams"]
        .as_array()
        .context("Janus attached no streams")?
        .iter()
        .filter(|s| s["type"] == "video")
        .filter_map(|s| {
            let height = heights.get(s["feed_id"].as_str()?)?;
            Some(json!({ "mid": s["mid"], "substream": layer_for(*height) }))
        })
        .collect();
    if !layers.is_empty() {
        janus.message(handle, json!({ "request": "configure", "streams": layers }), None).await?;
    }
    Ok(())
}

fn sdp_of(jsep: &Option<Value>) -> Result<&str> {
    jsep.as_ref().and_then(|j| j["sdp"].as_str()).context("Janus sent no SDP")
}
