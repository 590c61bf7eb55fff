//! The secrets of rooms and of the admin panel. Room passwords are kept only as Argon2id hashes
//! (PHC strings), made and checked on the blocking threads, since each takes tens of milliseconds
//! of one core by design. Host keys are long and random, so a plain hash of each will do.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// The hash of a password, with a random salt and Argon2's default cost (19 MiB, 2 passes).
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hash =
            Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("hash: {e}"))?;
        Ok(hash.to_string())
    })
    .await?
}

/// Whether `password` is the one `hash` was made from. A hash that cannot be read matches nothing.
pub async fn matches(password: String, hash: std::sync::Arc<str>) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false)
}

/// A new host key: 128 random bits, URL-safe, to go in a link.
pub fn new_host_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

/// What a room keeps of its host key.
pub fn host_key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets are the same, in a time that does not tell how much of them is.
pub fn same_secret(given: &str, secret: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(secret.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_keys_are_random_and_kept_hashed() {
        let key = super::new_host_key();
        assert_eq!(key.len(), 22);
        assert_ne!(key, super::new_host_key());
        let hash = super::host_key_hash(&key);
        assert!(!hash.contains(&key) && hash.len() == 64);
        assert!(super::same_secret(&super::host_key_hash(&key), &hash));
        assert!(!super::same_secret(&super::host_key_hash("other"), &hash));
    }

    #[tokio::test]
    async fn a_password_matches_its_hash_and_nothing_else_does() {
        let hash: std::sync::Arc<str> = super::hash("open sesame".into()).await.unwrap().into();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("open sesame"));
        assert!(super::matches("open sesame".into(), hash.clone()).await);
        assert!(!super::matches("open sesame ".into(), hash.clone()).await);
        assert!(!super::matches("open sesame".into(), "not a hash".into()).await);
        assert_ne!(*super::hash("open sesame".into()).await.unwrap(), *hash, "salted");
    }
}
