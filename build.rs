//! Builds the web client (`web/`, with npm) into `web/dist`, which the binary embeds, so a plain
//! `cargo build` from a clean checkout gives a complete server; and tells the binary the source's
//! revision (`NOOM_REVISION`), which `noom --version`, the logs and `/metrics` show.
//!
//! Set `NOOM_SKIP_WEB_BUILD=1` to embed `web/dist` as it is (for example when it was built
//! separately); a missing `web/dist` then gets a placeholder page. Set `NOOM_REVISION` where the
//! source is not a git checkout (a container build); otherwise git names the commit.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

/// What the web client is built from.
const WEB_INPUTS: [&str; 8] = [
    "web/src",
    "web/index.html",
    "web/admin.html",
    "web/package.json",
    "web/package-lock.json",
    "web/vite.config.ts",
    "web/public",
    "web/scripts",
];

fn main() {
    revision();
    for path in WEB_INPUTS {
        // A path that does not exist counts as changed on every build, which would run npm and
        // rebuild the server each time (web/public is only there if the client gets static files).
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-env-changed=NOOM_SKIP_WEB_BUILD");
    let web = Path::new("web");
    let dist = web.join("dist");
    if std::env::var_os("NOOM_SKIP_WEB_BUILD").is_some_and(|v| v != "0") {
        if !dist.join("index.html").exists() {
            std::fs::create_dir_all(&dist).expect("create web/dist");
            std::fs::write(
                dist.join("index.html"),
                "<!doctype html><title>Noom</title><p>The web client was not built (NOOM_SKIP_WEB_BUILD).</p>",
            )
            .expect("write placeholder");
        }
        return;
    }
    // This script runs again for a new commit too (see `revision`): the client is built only when
    // something it is built from is newer than it.
    let newest_input = WEB_INPUTS.iter().filter_map(|input| newest_under(Path::new(input))).max();
    if newest_input <= modified(&dist.join("index.html")) {
        return;
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    if !web.join("node_modules").exists() {
        run(Command::new(npm).args(["ci", "--no-audit", "--no-fund"]).current_dir(web), "npm ci");
    }
    run(Command::new(npm).args(["run", "build"]).current_dir(web), "npm run build");
}

fn run(command: &mut Command, what: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`{what}` in web/ failed ({status}); see its output above"),
        Err(e) => panic!(
            "`{what}` in web/ could not start ({e}). The web client needs Node.js 20 or later with npm: \
             install them (e.g. `apt-get install nodejs npm`), or set NOOM_SKIP_WEB_BUILD=1 to build the server alone."
        ),
    }
}

/// The source's revision, for the binary: `NOOM_REVISION` if set, else the commit git names, else
/// `unknown`. (Changes not committed do not show: this script does not run again for them.)
fn revision() {
    println!("cargo:rerun-if-env-changed=NOOM_REVISION");
    let from_git = || {
        let git = |args: &[&str]| Command::new("git").args(args).output().ok().filter(|o| o.status.success());
        let commit = String::from_utf8(git(&["rev-parse", "--short=12", "HEAD"])?.stdout).ok()?;
        // A new commit moves the branch's file (or packed-refs), and a checkout moves HEAD.
        for watched in [".git/HEAD", ".git/packed-refs"] {
            if Path::new(watched).exists() {
                println!("cargo:rerun-if-changed={watched}");
            }
        }
        if let Ok(head) = std::fs::read_to_string(".git/HEAD")
            && let Some(branch) = head.trim().strip_prefix("ref: ")
            && Path::new(".git").join(branch).exists()
        {
            println!("cargo:rerun-if-changed=.git/{branch}");
        }
        Some(commit.trim().to_owned())
    };
    let revision = std::env::var("NOOM_REVISION").ok().filter(|r| !r.is_empty()).or_else(from_git);
    println!("cargo:rustc-env=NOOM_REVISION={}", revision.as_deref().unwrap_or("unknown"));
}

/// When the newest file under `path` (a file, or a directory and everything below it) was changed.
fn newest_under(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.filter_map(|entry| newest_under(&entry.ok()?.path())).max()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
