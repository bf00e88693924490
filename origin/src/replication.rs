//! Revocations that wait for Redis replicas (`REDIS_WAIT_REPLICAS`, `REDIS_WAIT_TIMEOUT_MS`).
//!
//! Where something reads revocation state from a replica (the edge through a bridge on a read
//! replica, a second region), "logged out" must mean "refused everywhere", not "refused once
//! replication catches up". So with a bound configured, every revocation — the four logouts,
//! account deletion and the reuse-detection revocation of a refresh — runs its script and then
//! `WAIT numreplicas timeout` before the logout answers.
//!
//! Why a connection of its own per revocation: `WAIT` blocks the *connection* that issued it
//! until the replicas acknowledged that connection's writes, and a blocked connection runs
//! nothing else meanwhile. On the origin's one shared multiplexed connection a lagging replica
//! would stall every request for up to the bound; on one shared revocation connection, each
//! logout would queue behind the others' waits. A fresh connection costs one connect (a
//! loopback or LAN round trip) per logout, only when the bound is on, and covers exactly the
//! revocation's own writes.
//!
//! On timeout the logout still answers success — the primary holds the revocation, and the
//! database already did — but the shortfall is reported: the metric
//! `tollgate_revocation_replication_timeouts_total` and a warn log naming the step and the
//! replica counts (never a key, token or user secret).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{FromRedisValue, ScriptInvocation};

use crate::redis::StoreError;

/// How many replicas a revocation waits for, and for how long at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBound {
    /// `REDIS_WAIT_REPLICAS`: replicas that must acknowledge (0: off, the default).
    pub replicas: u32,
    /// `REDIS_WAIT_TIMEOUT_MS`: the longest a logout waits for them.
    pub timeout: Duration,
}

/// The metric counting revocations whose replicas did not all acknowledge within the bound.
pub const TIMEOUTS_METRIC: &str = "tollgate_revocation_replication_timeouts_total";

/// What a revocation needs to wait for replicas: a client to open its own connection with.
pub(crate) struct Replication {
    client: redis::Client,
    bound: WaitBound,
    /// Per-process count of the metric, for `/ready`-style checks and tests.
    timeouts: AtomicU64,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl Replication {
    pub(crate) fn new(client: redis::Client, bound: WaitBound) -> Self {
        Self {
            client,
            bound,
            timeouts: AtomicU64::new(0),
        }
    }

    pub(crate) fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    /// Runs `script` on a connection of its own (within `deadline`), then `WAIT`s for the
    /// replicas within the bound. A script failure is the caller's error (503, retryable: every
    /// revocation is idempotent); a shortfall of replicas after the script succeeded is only
    /// reported.
    pub(crate) async fn revoke<T: FromRedisValue>(
        &self,
        what: &'static str,
        script: ScriptInvocation<'static>,
        deadline: Duration,
    ) -> Result<T, StoreError> {
        let mut conn =
            tokio::time::timeout(deadline, self.client.get_multiplexed_async_connection())
                .await
                .map_err(|_| StoreError::Timeout("connect for revocation"))?
                .map_err(|e| StoreError::Redis("connect for revocation", e))?;
        let result: T = tokio::time::timeout(deadline, script.invoke_async(&mut conn))
            .await
            .map_err(|_| StoreError::Timeout(what))?
            .map_err(|e| StoreError::Redis(what, e))?;
        let timeout_ms = u64::try_from(self.bound.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.bound.replicas).arg(timeout_ms);
        let wait = cmd.query_async::<u64>(&mut conn);
        // Redis answers WAIT by its own timeout; ours only covers a connection that died.
        let acked = match tokio::time::timeout(self.bound.timeout + deadline, wait).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer to WAIT".to_owned()),
        };
        match acked {
            Ok(n) if n >= u64::from(self.bound.replicas) => {}
            outcome => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(TIMEOUTS_METRIC).increment(1);
                tracing::warn!(
                    step = what,
                    wanted = self.bound.replicas,
                    acknowledged = outcome.as_ref().ok().copied().unwrap_or(0),
                    error = outcome.err().as_deref().unwrap_or(""),
                    timeout_ms,
                    "revocation not acknowledged by every replica within the bound: replicas \
                     may accept the revoked tokens until they catch up"
                );
            }
        }
        Ok(result)
    }
}
