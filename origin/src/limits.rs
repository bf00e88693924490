//! Login and registration limits, counted in Redis so every origin instance shares them.
//!
//! Logins count **failures only**: a successful login reads the counters and writes nothing, so
//! thousands of users behind one carrier NAT all log in, and no counter key is ever created for
//! them. Failures are counted three ways in one atomic step:
//!
//! | counter | subject | limit (default) | refuses |
//! |---|---|---|---|
//! | `login:fail:ip` | client address, IPv6 by /64 | `LOGIN_RATE_LIMIT_PER_IP` (30) | every email from that address |
//! | `login:fail:email-ip` | hash of (email, address) | `LOGIN_RATE_LIMIT_PER_EMAIL` (10) | that email from that address |
//! | `login:fail:email` | hash of the email | `LOGIN_FAILURE_CAP_PER_EMAIL` (300) | that email from every address |
//!
//! all per `LOGIN_RATE_WINDOW_SECS` (60). Only the last refuses an email everywhere, and it is far
//! above the others, so wrong passwords sent for someone's email from other addresses never stop
//! the owner logging in from an address that has not failed — until an attacker spends 300
//! guesses a minute from 30+ networks, which is logged when it trips.
//!
//! The check runs before any password hashing and the count after it, so concurrent failures may
//! overshoot a limit by at most the number of verifications in flight (bounded by the hasher).
//!
//! Registrations count every attempt per address: `REGISTER_RATE_LIMIT_PER_IP` (20) per
//! `REGISTER_RATE_WINDOW_SECS` (3600).

use std::net::IpAddr;

use tollgate_shared::digest::sha256_hex;

use crate::auth::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const FAIL_IP: &str = "login:fail:ip";
const FAIL_EMAIL_IP: &str = "login:fail:email-ip";
const FAIL_EMAIL: &str = "login:fail:email";
const REGISTER_IP: &str = "register:ip";

/// The address a limit counts against: an IPv4 address as is (IPv4-mapped IPv6 included), an
/// IPv6 address by its /64 — one customer's network, which hands its hosts any number of
/// addresses. `unknown` when the address could not be read.
pub fn address_subject(ip: Option<&str>) -> String {
    match ip.and_then(|ip| ip.parse::<IpAddr>().ok()) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// What names an email in a counter key and in the log: SHA-256 hex over length-prefixed
/// parts, so neither Redis nor a log line holds the address in clear, and ("ab", "c") never
/// names the same counter as ("a", "bc"). A type of its own so a raw email cannot be passed
/// where a counter subject is meant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EmailDigest(String);

impl EmailDigest {
    fn of(parts: &[&str]) -> Self {
        let mut input = Vec::new();
        for part in parts {
            input.extend_from_slice(&part.len().to_be_bytes());
            input.extend_from_slice(part.as_bytes());
        }
        Self(sha256_hex(&input))
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

/// One login attempt's counters, checked before the password is verified and counted only if
/// it turns out wrong.
#[derive(Debug)]
pub struct LoginAttempt {
    address: String,
    email_address: EmailDigest,
    email: EmailDigest,
}

impl LoginAttempt {
    /// Refuses with 429 when the address, the (email, address) pair or the email as a whole has
    /// used up its failures for the window. Reads only; creates no key.
    pub async fn check(state: &AppState, client: &ClientInfo, email: &str) -> ApiResult<Self> {
        let address = address_subject(client.ip.as_deref());
        let attempt = Self {
            email_address: EmailDigest::of(&[email, &address]),
            email: EmailDigest::of(&[email]),
            address,
        };
        let s = &state.settings;
        let counters = state
            .redis
            .counters(&[
                (FAIL_IP, &attempt.address),
                (FAIL_EMAIL_IP, attempt.email_address.as_str()),
                (FAIL_EMAIL, attempt.email.as_str()),
            ])
            .await?;
        let limits = [
            s.login_limit_per_ip,
            s.login_limit_per_email,
            s.login_failure_cap_per_email,
        ];
        for ((count, ttl), limit) in counters.into_iter().zip(limits) {
            if count >= limit {
                return Err(ApiError::RateLimited {
                    retry_after: retry_after(ttl, s.login_window),
                });
            }
        }
        Ok(attempt)
    }

    /// Counts a wrong password (or unknown email) against all three counters.
    pub async fn failed(self, state: &AppState) -> ApiResult<()> {
        let window = state.settings.login_window;
        let counts = state
            .redis
            .count_failure(&[
                (FAIL_IP, &self.address, window),
                (FAIL_EMAIL_IP, self.email_address.as_str(), window),
                (FAIL_EMAIL, self.email.as_str(), window),
            ])
            .await?;
        if counts.get(2) == Some(&state.settings.login_failure_cap_per_email) {
            // Once per window: the count passes the cap exactly once.
            tracing::warn!(
                email_hash = self.email.as_str(),
                address = %self.address,
                cap = state.settings.login_failure_cap_per_email,
                window,
                "login failure cap reached for an email: refusing it from every address until \
                 the window ends"
            );
        }
        Ok(())
    }
}

/// Counts a registration attempt from this address; 429 past the limit.
pub async fn check_registration(state: &AppState, client: &ClientInfo) -> ApiResult<()> {
    let s = &state.settings;
    let address = address_subject(client.ip.as_deref());
    let (count, ttl) = state
        .redis
        .hit(REGISTER_IP, &address, s.register_window)
        .await?;
    if count > s.register_limit_per_ip {
        return Err(ApiError::RateLimited { retry_after: ttl });
    }
    Ok(())
}

/// Seconds until a counter's window ends; the whole window if Redis gave no TTL.
fn retry_after(ttl: i64, window: u64) -> u64 {
    u64::try_from(ttl).ok().filter(|t| *t > 0).unwrap_or(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_ipv4_per_address() {
        assert_eq!(address_subject(Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(address_subject(Some("::ffff:203.0.113.9")), "203.0.113.9");
        let a = address_subject(Some("2001:db8:1:2:aaaa::1"));
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(address_subject(Some("2001:db8:1:2:ffff:ffff:ffff:ffff")), a);
        assert_ne!(address_subject(Some("2001:db8:1:3::1")), a);
        assert_eq!(address_subject(Some("::1")), "0:0:0:0::/64");
        assert_eq!(address_subject(None), "unknown");
        assert_eq!(address_subject(Some("not an ip")), "unknown");
    }

    #[test]
    fn digests_separate_their_parts() {
        assert_ne!(EmailDigest::of(&["ab", "c"]), EmailDigest::of(&["a", "bc"]));
        assert_eq!(EmailDigest::of(&["a"]).as_str().len(), 64);
    }
}
