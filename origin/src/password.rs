//! Argon2id password hashing, off the async runtime and bounded in concurrency.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// Hashes and verifies passwords with Argon2id (m = 19 MiB, t = 2, p = 1: the argon2 crate's
/// defaults, OWASP's recommendation).
///
/// Each hash runs on the blocking pool so the async workers keep serving requests, and a
/// semaphore caps how many run at once: a login flood queues instead of taking all memory.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so an unknown email costs what a wrong
    /// password costs and response time does not reveal which accounts exist.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new() -> anyhow::Result<Self> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy = Argon2::default()
            .hash_password(b"tollgate-dummy-password", &salt)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("Failed to compute the dummy password hash")?
            .to_string();
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: dummy.into(),
        })
    }

    /// The PHC string of a fresh Argon2id hash.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("Failed to hash password: {e}"))
        })
        .await
        .context("password hashing task failed")?
    }

    /// Whether `password` matches `hash`; with no hash (unknown user) it spends the same time
    /// and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await.context("hasher closed")?;
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.to_string());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| anyhow::anyhow!("stored hash is invalid: {e}"))?;
            // Always run the verification, even for the dummy hash: that is the point of it.
            let matches = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(known && matches)
        })
        .await
        .context("password verification task failed")?
    }
}
