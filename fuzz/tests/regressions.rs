//! Replays every input kept for the fuzz targets (the seeds, and the regressions: inputs that
//! once broke a rule, kept after the fix) under plain `cargo test`, so none can break again.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.expect("a readable folder").path();
            let input = std::fs::read(&path).expect("a readable input");
            let outcome = std::panic::catch_unwind(|| run(&input));
            assert!(outcome.is_ok(), "{} broke {target}", path.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no inputs kept for {target}");
}

#[test]
fn events() {
    replay("event", noom_fuzz::event);
}

#[test]
fn room_state() {
    replay("rooms", noom_fuzz::rooms);
}

#[test]
fn cluster_ops() {
    replay("cluster_op", noom_fuzz::cluster_op);
}

#[test]
fn media_datagrams() {
    replay("media_datagram", noom_fuzz::media_datagram);
}

#[test]
fn turn_messages() {
    replay("turn_message", noom_fuzz::turn_message);
}

#[test]
fn relay_frames() {
    replay("relay_frame", noom_fuzz::relay_frame);
}

#[test]
fn plain_websocket_frames() {
    replay("ws_frame", noom_fuzz::ws_frame);
}

#[test]
fn the_fuzzer_picks_from_every_event_a_client_may_send() {
    use noom::events;
    let mut declared: Vec<&str> = events::seed::EMITTED.iter().chain(events::noom::EMITTED).copied().collect();
    let mut picked = noom_fuzz::EVENTS.to_vec();
    declared.sort_unstable();
    declared.dedup();
    picked.sort_unstable();
    assert_eq!(picked, declared);
}
