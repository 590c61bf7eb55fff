//! Real encoded media, prepared once: each simulcast layer of a camera as VP8 (libvpx) and a
//! voice as Opus (libopus), both by Debian's `ffmpeg` from its own test sources, kept under the
//! target directory and read back as frames. A publisher loops over them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// One simulcast layer of the camera, as the web client sends it (`docs/media.md`).
#[derive(Clone, Copy, Debug)]
pub struct Layer {
    pub rid: &'static str,
    pub width: u32,
    pub height: u32,
    pub kbps: u32,
}

/// Lowest first, as the web client orders its encodings.
pub const LAYERS: [Layer; 3] = [
    Layer { rid: "q", width: 320, height: 180, kbps: 150 },
    Layer { rid: "h", width: 640, height: 360, kbps: 500 },
    Layer { rid: "f", width: 1280, height: 720, kbps: 1700 },
];

pub const VIDEO_FPS: u32 = 30;
/// A keyframe every three seconds, as a browser's encoder sends unasked.
const KEYFRAME_EVERY: u32 = 90;
pub const AUDIO_FRAME_MS: u32 = 20;
const SECONDS: u32 = 10;

/// The frames of each layer (in `LAYERS` order) and of the voice, each with whether it is a
/// keyframe (always true for audio).
pub struct Encoded {
    pub video: Vec<Vec<Frame>>,
    pub audio: Vec<Frame>,
}

pub struct Frame {
    pub data: Vec<u8>,
    pub key: bool,
}

impl Encoded {
    /// Encodes what is not in `dir` yet, and reads it all.
    pub fn prepare(dir: &Path) -> Result<Encoded> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut video = Vec::new();
        for layer in LAYERS {
            let file = dir.join(format!("camera-{}p-{}k.ivf", layer.height, layer.kbps));
            if !file.exists() {
                let source = format!("testsrc2=size={}x{}:rate={VIDEO_FPS}", layer.width, layer.height);
                let rate = format!("{}k", layer.kbps);
                ffmpeg(
                    &file,
                    &["-f", "lavfi", "-i", &source, "-t", &SECONDS.to_string(), "-c:v", "libvpx"],
                    &[
                        "-b:v",
                        &rate,
                        "-minrate",
                        &rate,
                        "-maxrate",
                        &rate,
                        "-deadline",
                        "realtime",
                        "-cpu-used",
                        "8",
                        "-g",
                        &KEYFRAME_EVERY.to_string(),
                        "-auto-alt-ref",
                        "0",
                        "-f",
                        "ivf",
                    ],
                )?;
            }
            video.push(read_ivf(&file)?);
        }
        let file = dir.join("voice-32k.ogg");
        if !file.exists() {
            let source = "sine=frequency=220:sample_rate=48000";
            ffmpeg(
                &file,
                &["-f", "lavfi", "-i", source, "-t", &SECONDS.to_string(), "-c:a", "libopus"],
                &["-b:a", "32k", "-frame_duration", &AUDIO_FRAME_MS.to_string(), "-application", "voip", "-f", "ogg"],
            )?;
        }
        let audio = read_ogg_packets(&file)?.into_iter().map(|data| Frame { data, key: true }).collect();
        Ok(Encoded { video, audio })
    }
}

fn ffmpeg(out: &Path, input: &[&str], output: &[&str]) -> Result<()> {
    // Written beside, then renamed: a run stopped half-way leaves no truncated file to trust.
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(input)
        .args(output)
        .arg(&partial)
        .status()
        .context("cannot run ffmpeg (Debian's package ffmpeg) to prepare the media")?;
    ensure!(status.success(), "ffmpeg could not prepare {}", out.display());
    std::fs::rename(&partial, out)?;
    Ok(())
}

/// The frames of an IVF file: a 32-byte file header, then each frame's size (4 bytes), its
/// timestamp (8) and its bytes.
fn read_ivf(path: &Path) -> Result<Vec<Frame>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(bytes.len() >= 32 && &bytes[..4] == b"DKIF", "{} is not an IVF file", path.display());
    let mut at = u16::from_le_bytes([bytes[6], bytes[7]]) as usize;
    let mut frames = Vec::new();
    while at + 12 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at..at + 4].try_into()?) as usize;
        let data = bytes.get(at + 12..at + 12 + size).context("an IVF frame runs past the end")?;
        // VP8's frame tag: the lowest bit of the first byte is clear on a keyframe.
        frames.push(Frame { key: data.first().is_some_and(|b| b & 1 == 0), data: data.to_vec() });
        at += 12 + size;
    }
    ensure!(frames.first().is_some_and(|f| f.key), "{} does not start with a keyframe", path.display());
    Ok(frames)
}

/// The packets of an Ogg stream but its two headers (OpusHead, OpusTags): each page is a
/// 27-byte header, a table of segment sizes, then the segments; a packet ends with a segment
/// shorter than 255 bytes.
fn read_ogg_packets(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (mut at, mut packets, mut packet) = (0, Vec::new(), Vec::new());
    while at + 27 <= bytes.len() {
        if &bytes[at..at + 4] != b"OggS" {
            bail!("{} has a bad Ogg page at byte {at}", path.display());
        }
        let segments = bytes[at + 26] as usize;
        let table = bytes.get(at + 27..at + 27 + segments).context("a truncated Ogg page")?;
        let mut data = at + 27 + segments;
        for &size in table {
            let size = size as usize;
            packet.extend_from_slice(bytes.get(data..data + size).context("a truncated Ogg page")?);
            data += size;
            if size < 255 {
                packets.push(std::mem::take(&mut packet));
            }
        }
        at = data;
    }
    ensure!(packets.len() > 2, "{} holds no Opus packets", path.display());
    Ok(packets.split_off(2))
}
