//! HTTPS: a certificate from PEM files, reloaded when they change (renewal without a restart), or
//! one made at start for given host names (a LAN, a test).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::config::Config;
use crate::origin::PublicUrl;

/// How often the certificate files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// The TLS configuration `config` asks for, if any.
/// Certificate files are read again when `reload` is notified, besides when they change.
pub async fn load(config: &Config, reload: Arc<Notify>) -> anyhow::Result<Option<RustlsConfig>> {
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let rustls = RustlsConfig::from_pem_file(cert, key)
            .await
            .with_context(|| format!("--tls-cert {} and --tls-key {}", cert.display(), key.display()))?;
        tokio::spawn(reload_on_change(rustls.clone(), cert.clone(), key.clone(), reload));
        return Ok(Some(rustls));
    }
    if config.tls_self_signed.is_empty() {
        return Ok(None);
    }
    let kept = config.state_dir().map(|dir| dir.join(SELF_SIGNED_DIR));
    let (cert, key, made) = match kept.as_deref().and_then(|dir| kept_self_signed(dir, &config.tls_self_signed)) {
        Some((cert, key)) => (cert, key, false),
        None => {
            let made = rcgen::generate_simple_self_signed(config.tls_self_signed.clone())
                .context("--tls-self-signed: cannot make a certificate for those names")?;
            let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
            match &kept {
                Some(dir) => keep_self_signed(dir, &config.tls_self_signed, &cert, &key)
                    .with_context(|| format!("--state-dir: cannot keep the certificate in {}", dir.display()))?,
                None => tracing::warn!("no --state-dir and no home directory: the certificate is new at every start"),
            }
            (cert, key, true)
        }
    };
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).context("--tls-self-signed: the kept certificate")?;
    println!("{}", trust_instructions(&config.tls_self_signed, &der, &cert, made, kept.as_deref()));
    let rustls = RustlsConfig::from_pem(cert.into_bytes(), key.into_bytes()).await.context("--tls-self-signed")?;
    Ok(Some(rustls))
}

/// Where in the state directory the self-signed certificate is kept.
const SELF_SIGNED_DIR: &str = "self-signed";

/// The certificate and key kept in `dir`, if they were made for `names`.
fn kept_self_signed(dir: &Path, names: &[String]) -> Option<(String, String)> {
    let kept_names = std::fs::read_to_string(dir.join("names")).ok()?;
    if kept_names.lines().collect::<Vec<_>>() != names.iter().map(String::as_str).collect::<Vec<_>>() {
        return None;
    }
    Some((std::fs::read_to_string(dir.join("cert.pem")).ok()?, std::fs::read_to_string(dir.join("key.pem")).ok()?))
}

/// Keeps a certificate made for `names`, its key readable by this user alone.
fn keep_self_signed(dir: &Path, names: &[String], cert: &str, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(dir.join("key.pem"))?;
    file.write_all(key.as_bytes())?;
    std::fs::write(dir.join("cert.pem"), cert)?;
    // Last: what says the pair is whole.
    std::fs::write(dir.join("names"), names.join("\n"))
}

/// The name browsers reach this server's HTTPS at, which its certificate holds: the first
/// HTTPS `--public-url`'s, else the first of `--tls-self-signed`, else the first DNS name of
/// `--tls-cert` that is not a wildcard. TURN over TLS is handed out under it.
pub fn served_name(config: &Config) -> Option<String> {
    let public = config.public_url.iter().filter_map(|url| PublicUrl::parse(url).ok()).find(|url| url.https);
    if let Some(url) = public {
        return Some(url.host);
    }
    if let Some(name) = config.tls_self_signed.iter().find(|name| !name.is_empty()) {
        return Some(name.clone());
    }
    let cert = CertificateDer::from_pem_file(config.tls_cert.as_ref()?).ok()?;
    let parsed = webpki::EndEntityCert::try_from(&cert).ok()?;
    parsed.valid_dns_names().find(|name| !name.starts_with('*')).map(str::to_owned)
}

/// What a person must do for browsers to accept a self-signed certificate: `made` now, and kept
/// in `kept` if anywhere.
fn trust_instructions(names: &[String], der: &[u8], pem: &str, made: bool, kept: Option<&Path>) -> String {
    let fingerprint: Vec<String> = Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect();
    let origin = match (made, kept) {
        (true, Some(dir)) => format!("made now and kept in {} for the next start", dir.display()),
        (false, Some(dir)) => format!("the one kept in {} (delete it for a new one)", dir.display()),
        (_, None) => "made at start (a new one each time: there is no --state-dir)".to_owned(),
    };
    format!(
        "HTTPS with a self-signed certificate for {names}, {origin}.\n\
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

/// Loads the certificate again whenever its files change, or `reload` is notified (SIGHUP); a bad
/// pair keeps the previous one.
async fn reload_on_change(rustls: RustlsConfig, cert: PathBuf, key: PathBuf, reload: Arc<Notify>) {
    let mut last = (stamp(&cert), stamp(&key));
    loop {
        let asked = tokio::select! {
            () = tokio::time::sleep(RELOAD_CHECK) => false,
            () = reload.notified() => true,
        };
        let now = (stamp(&cert), stamp(&key));
        if now == last && !asked {
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

    fn config(args: &[&str]) -> Config {
        use clap::Parser;
        Config::parse_from([&["noom"], args].concat())
    }

    #[test]
    fn the_served_name_is_the_public_urls_then_the_self_signed_ones_then_the_certificates() {
        let both =
            config(&["--public-url", "http://plain.example,https://meet.example:8443", "--tls-self-signed", "lan"]);
        assert_eq!(served_name(&both).as_deref(), Some("meet.example"));
        assert_eq!(served_name(&config(&["--tls-self-signed", "10.0.0.2,lan"])).as_deref(), Some("10.0.0.2"));
        assert_eq!(served_name(&config(&[])), None);

        let made = rcgen::generate_simple_self_signed(vec!["*.example".into(), "meet.example".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("noom-served-name-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let files = config(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
        assert_eq!(served_name(&files).as_deref(), Some("meet.example"), "not the wildcard");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_instructions_name_the_hosts_and_the_fingerprint() {
        let text = trust_instructions(&["noom.lan".into(), "10.0.0.2".into()], b"der", "PEM", true, None);
        assert!(text.contains("noom.lan, 10.0.0.2"));
        // SHA-256 of "der".
        assert!(text.contains("SHA-256 fingerprint: 50:50:D8"));
        assert!(text.ends_with("PEM"));
    }

    #[test]
    fn a_self_signed_certificate_is_kept_for_the_same_names_only() {
        let dir = std::env::temp_dir().join(format!("noom-kept-{}", std::process::id()));
        let names = vec!["noom.lan".to_owned(), "10.0.0.2".to_owned()];
        assert_eq!(kept_self_signed(&dir, &names), None, "nothing kept yet");
        keep_self_signed(&dir, &names, "CERT", "KEY").unwrap();
        assert_eq!(kept_self_signed(&dir, &names), Some(("CERT".into(), "KEY".into())));
        assert_eq!(kept_self_signed(&dir, &names[..1]), None, "other names: a new one");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key is this user's alone");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
