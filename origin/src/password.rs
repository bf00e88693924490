//! Argon2id password hashing, off the async runtime and bounded in concurrency.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString,
};
use argon2::Argon2;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::monitoring::{names, GaugeHeld};

/// Hashes and verifies passwords with Argon2id (m = 19 MiB, t = 2, p = 1: the argon2 crate's
/// defaults, OWASP's recommendation).
///
/// Each hash runs on the blocking pool so the async workers keep serving requests, and
/// semaphores cap how many run at once: a flood queues instead of taking all memory. Logins
/// (`verify`) and registrations (`hash`) have separate budgets, so a registration flood queues
/// behind its own permits and never takes a login's.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    /// Verifications at once: twice the cores.
    login_permits: Arc<Semaphore>,
    /// New hashes at once: half the cores (at least one), so registrations can never take more
    /// than half the machine from logins.
    register_permits: Arc<Semaphore>,
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
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            login_permits: Arc::new(Semaphore::new(cores * 2)),
            register_permits: Arc::new(Semaphore::new((cores / 2).max(1))),
            dummy_hash: dummy.into(),
        })
    }

    /// The PHC string of a fresh Argon2id hash, under the registration budget.
    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let _permit = queued(&self.register_permits, "register").await?;
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
        let _permit = queued(&self.login_permits, "login").await?;
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

/// A permit from `permits`, counted in the Argon2 queue gauges: waiting until it comes, then in
/// flight for as long as the returned guard lives.
async fn queued<'a>(
    permits: &'a Semaphore,
    pool: &'static str,
) -> anyhow::Result<(SemaphorePermit<'a>, GaugeHeld)> {
    let waiting = GaugeHeld::hold(names::ARGON2_WAITING, pool);
    let permit = permits.acquire().await.context("hasher closed")?;
    drop(waiting);
    Ok((permit, GaugeHeld::hold(names::ARGON2_IN_FLIGHT, pool)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registrations_using_their_whole_budget_never_hold_up_a_login() {
        let hasher = PasswordHasher::new().expect("hasher");
        let stored = hasher.hash("the password".into()).await.expect("hash");
        // Every registration permit taken, as by a flood of registrations in flight.
        let register = hasher.register_permits.clone();
        let n = u32::try_from(register.available_permits()).expect("permits");
        let _flood = register.acquire_many_owned(n).await.expect("permits");
        // A generous bound: this is "completes at all", not a latency figure.
        let login = tokio::time::timeout(
            Duration::from_secs(30),
            hasher.verify("the password".into(), Some(stored)),
        )
        .await
        .expect("a login verified while registrations held their whole budget");
        assert!(login.expect("verify"));
        let queued = tokio::time::timeout(
            Duration::from_millis(200),
            hasher.hash("another password".into()),
        )
        .await;
        assert!(queued.is_err(), "a registration ran past its budget");
    }
}
