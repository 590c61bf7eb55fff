//! HTTPS: a certificate from PEM files, reloaded when they change (renewal without a restart), or
//! one made at start for given host names (a LAN, a test).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use sha2::{Digest, Sha256};

use crate::config::Config;

/// How often the certificate files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// The TLS configuration `config` asks for, if any.
pub async fn load(config: &Config) -> anyhow::Result<Option<RustlsConfig>> {
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let rustls = RustlsConfig::from_pem_file(cert, key)
            .await
            .with_context(|| format!("--tls-cert {} and --tls-key {}", cert.display(), key.display()))?;
        tokio::spawn(reload_on_change(rustls.clone(), cert.clone(), key.clone()));
        return Ok(Some(rustls));
    }
    if config.tls_self_signed.is_empty() {
        return Ok(None);
    }
    let made = rcgen::generate_simple_self_signed(config.tls_self_signed.clone())
        .context("--tls-self-signed: cannot make a certificate for those names")?;
    let cert = made.cert.pem();
    println!("{}", trust_instructions(&config.tls_self_signed, made.cert.der(), &cert));
    let rustls = RustlsConfig::from_pem(cert.into_bytes(), made.signing_key.serialize_pem().into_bytes())
        .await
        .context("--tls-self-signed")?;
    Ok(Some(rustls))
}

/// What a person must do for browsers to accept a certificate made at start.
fn trust_instructions(names: &[String], der: &[u8], pem: &str) -> String {
    let fingerprint: Vec<String> = Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "HTTPS with a self-signed certificate for {names}, made at start (a new one each time).\n\
         SHA-256 fingerprint: {fingerprint}\n\
         Browsers warn about it until it is trusted: accept the warning once per browser, or save the\n\
         certificate below as noom.crt and trust it (Linux: sudo cp noom.crt /usr/local/share/ca-certificates/\n\
         && sudo update-ca-certificates; Chromium and Firefox: Settings, Certificates, Authorities, Import).\n\
         For a server others use, give it a real certificate with --tls-cert and --tls-key.\n{pem}",
        names = names.join(", "),
        fingerprint = fingerprint.join(":"),
    )
}

/// When a file was last changed, and its size: what tells a renewal.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Loads the certificate again whenever its files change; a bad pair keeps the previous one.
async fn reload_on_change(rustls: RustlsConfig, cert: PathBuf, key: PathBuf) {
    let mut last = (stamp(&cert), stamp(&key));
    loop {
        tokio::time::sleep(RELOAD_CHECK).await;
        let now = (stamp(&cert), stamp(&key));
        if now == last {
            continue;
        }
        last = now;
        match rustls.reload_from_pem_file(&cert, &key).await {
            Ok(()) => tracing::info!(cert = %cert.display(), "certificate reloaded"),
            Err(e) => tracing::warn!(cert = %cert.display(), "certificate not reloaded, the previous one stays: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instructions_name_the_hosts_and_the_fingerprint() {
        let text = trust_instructions(&["noom.lan".into(), "10.0.0.2".into()], b"der", "PEM");
        assert!(text.contains("noom.lan, 10.0.0.2"));
        // SHA-256 of "der".
        assert!(text.contains("SHA-256 fingerprint: 50:50:D8"));
        assert!(text.ends_with("PEM"));
    }
}
