//! Builds the web client (`web/`, with npm) into `web/dist`, which the binary embeds, so a plain
//! `cargo build` from a clean checkout gives a complete server.
//!
//! Set `NOOM_SKIP_WEB_BUILD=1` to embed `web/dist` as it is (for example when it was built
//! separately); a missing `web/dist` then gets a placeholder page.

use std::path::Path;
use std::process::Command;

fn main() {
    for path in [
        "web/src",
        "web/index.html",
        "web/admin.html",
        "web/package.json",
        "web/package-lock.json",
        "web/vite.config.ts",
        "web/public",
        "web/scripts",
    ] {
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
