//! Authentication as extractors: [`AuthUser`] for bearer tokens, [`ClientInfo`] for who is
//! calling from where, both reading the edge's signed assertion through [`EdgeAssertion`].

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use sha2::{Digest as _, Sha256};
use tollgate_shared::assertion::{AssertionClaims, AssertionError};
use tollgate_shared::decision::{check_token, decide_reseeded, Decision, RevocationLookup};
use tollgate_shared::upstash::ValidationLookup;
use tollgate_shared::{jwt, AccessClaims, Identity, Rejection};

use crate::domain::{clip, MAX_USER_AGENT_CHARS};
use crate::error::ApiError;
use crate::redis::StoreError;
use crate::state::AppState;

/// A request whose bearer token passed all five layers: format, signature, jti exists, user
/// exists, version matches.
///
/// Through the edge (a valid assertion for this origin, method and path) that is the edge's
/// word, and the request costs the origin no Redis call at all: the edge made the one round trip.
/// Otherwise the origin checks itself with one `MGET`, and reads the database only when the
/// user's version key is missing from Redis, to re-seed it.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub identity: Identity,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let checked = Self::authenticate(parts, state).await;
        if let Err(e) = &checked {
            crate::monitoring::bearer_rejected(e);
        }
        checked
    }
}

impl AuthUser {
    async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match EdgeAssertion::of(parts, state).await? {
            EdgeAssertion::Valid(claims) if claims.ver_checked => {
                if let Some(id) = claims.identity() {
                    return Ok(Self {
                        identity: Identity {
                            user_id: id.user_id,
                            jti: id.jti,
                            token_id: id.token_id,
                            token_version: id.token_version,
                        },
                    });
                }
                // An anonymous assertion on a protected route: the edge's route table calls
                // this route public. Without REQUIRE_EDGE the origin decides itself below.
                if edge_required(state) {
                    return Err(ApiError::Assertion(AssertionError::Unchecked));
                }
            }
            // The edge verified the token and its jti but found the version key missing: only
            // we can re-seed it, so we check ourselves.
            EdgeAssertion::Valid(_) => {}
            EdgeAssertion::Absent if edge_required(state) => {
                return Err(ApiError::Assertion(AssertionError::Missing));
            }
            EdgeAssertion::Absent => {}
        }
        let identity = self_check(parts, state).await?;
        Ok(Self { identity })
    }
}

fn edge_required(state: &AppState) -> bool {
    state.settings.edge.as_ref().is_some_and(|e| e.require)
}

/// The origin's own check of the request's bearer token.
async fn self_check(parts: &Parts, state: &AppState) -> Result<Identity, ApiError> {
    let header = match parts.headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::Token(Rejection::Malformed))?,
        ),
    };
    check_authorization(state, header).await
}

/// The bearer check of an `Authorization` value, wherever it came from: the request's header
/// (above) or the devices page's access-token cookie ([`crate::pages`]).
pub(crate) async fn check_authorization(
    state: &AppState,
    header: Option<&str>,
) -> Result<Identity, ApiError> {
    let token = jwt::bearer_token(header).map_err(ApiError::Token)?;
    Ok(check_access_token(state, token).await?.1)
}

/// The whole check of one access token, wherever it came from (a bearer header, or the form of
/// an RFC 7662 introspection): the pipeline shared with the edge, then the re-seed of a missing
/// version key from SQL. `Err(ApiError::Token(_))` is a refusal; any other error means the
/// revocation state is unknown.
pub async fn check_access_token(
    state: &AppState,
    token: &str,
) -> Result<(AccessClaims, Identity), ApiError> {
    let now = crate::domain::now();
    let checked = check_token(token, |t| verified_claims(state, t, now), &Redis(state))
        .await?
        .map_err(ApiError::Token)?;
    let identity = match checked.decision {
        Decision::Accept(identity) => identity,
        Decision::Reject(rejection) => return Err(ApiError::Token(rejection)),
        Decision::VersionMissing => {
            let version = reseed_version(state, &checked.claims.sub).await?;
            decide_reseeded(
                &checked.claims,
                checked.lookup.jti_record.as_deref(),
                version,
            )
            .map_err(ApiError::Token)?
        }
    };
    Ok((checked.claims, identity))
}

/// The origin's Redis as the shared bearer check's lookup.
struct Redis<'a>(&'a AppState);

impl RevocationLookup for Redis<'_> {
    type Error = StoreError;

    async fn lookup(&self, claims: &AccessClaims) -> Result<ValidationLookup, StoreError> {
        self.0.redis.lookup(&claims.jti, &claims.sub).await
    }
}

/// The token's claims: from the cache of tokens already verified (still unexpired), or from a
/// full signature and claims check whose success is then cached until the token's `exp`. The
/// cache key is a hash of the token's exact bytes, so a tampered token never matches.
pub(crate) fn verified_claims(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<AccessClaims, Rejection> {
    if token.len() > jwt::MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(claims) = state.verified.get(&key, now) {
        return Ok(claims);
    }
    let claims = jwt::verify(
        token,
        &state.keys.view_at(now).verifying,
        &state.validation,
        now,
    )?;
    state.verified.insert(key, claims.clone(), claims.exp, now);
    Ok(claims)
}

/// Reads the user's version from SQL and writes it back to Redis (only if still missing).
async fn reseed_version(state: &AppState, user_id: &str) -> Result<Option<u64>, ApiError> {
    let Some(user) = state.db.user_by_id(user_id).await? else {
        return Ok(None);
    };
    let version = u64::try_from(user.token_version).unwrap_or(0);
    state.redis.seed_version(user_id, version).await?;
    tracing::info!(
        user_id,
        version,
        "re-seeded user version key from the database"
    );
    Ok(Some(version))
}

/// The edge's assertion on this request, verified once and kept in the request's extensions
/// for every extractor that asks.
#[derive(Debug, Clone)]
pub enum EdgeAssertion {
    /// None came (or the origin does not trust an edge).
    Absent,
    /// Valid for this origin, method and path; anonymous or naming a user.
    Valid(Box<AssertionClaims>),
}

impl EdgeAssertion {
    /// The assertion's verdict: an invalid assertion is refused outright (401
    /// `assertion_invalid`), never ignored — whoever sent it is not the edge we trust.
    pub async fn of(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(known) = parts.extensions.get::<Result<Self, AssertionError>>() {
            return known.clone().map_err(ApiError::Assertion);
        }
        let verdict = match &state.edge {
            None => Ok(Self::Absent),
            Some(verifier) => match tollgate_upstream::assertion_header(parts) {
                Err(rejection) => Err(rejection.0),
                Ok(None) => Ok(Self::Absent),
                Ok(value) => verifier
                    .verify_claims(value, parts.method.as_str(), parts.uri.path())
                    .await
                    .map(|claims| Self::Valid(Box::new(claims))),
            },
        };
        parts.extensions.insert(verdict.clone());
        verdict.map_err(ApiError::Assertion)
    }
}

/// The caller's address and user agent, recorded on device sessions and used by rate limits.
///
/// The address is, in order: the one the edge signed into its assertion; with `REQUIRE_EDGE`,
/// the direct peer and nothing else; otherwise the rightmost `X-Forwarded-For` hop outside
/// `TRUSTED_PROXIES` when the peer is one of them, else the peer. A caller-sent
/// `X-Forwarded-For` from anywhere else is never believed.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let signed = match EdgeAssertion::of(parts, state).await? {
            EdgeAssertion::Valid(claims) => claims.ip.and_then(|ip| ip.parse::<IpAddr>().ok()),
            EdgeAssertion::Absent => None,
        };
        let ip = match signed {
            Some(ip) => Some(ip),
            None if edge_required(state) => peer,
            None => peer.map(|peer| {
                let forwarded = parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                client_address(peer, forwarded, &state.settings.trusted_proxies)
            }),
        };
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| clip(ua, MAX_USER_AGENT_CHARS))
            .filter(|ua| !ua.is_empty());
        Ok(Self {
            ip: ip.map(|ip| ip.to_string()),
            user_agent,
        })
    }
}

/// Walks `X-Forwarded-For` from the right while each hop is a trusted proxy: the first hop that
/// is not one is the client. A peer that is not a trusted proxy is itself the client, and an
/// unparsable hop stops the walk at the last trusted address (never a caller-chosen value).
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_through_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let xff = |v: &'static str| std::iter::once(v);
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            client_address(ip("203.0.113.5"), xff("1.2.3.4"), &trusted),
            ip("203.0.113.5")
        );
        // Through one trusted proxy: the hop it appended.
        assert_eq!(
            client_address(ip("10.0.0.1"), xff("6.6.6.6, 198.51.100.7"), &trusted),
            ip("198.51.100.7")
        );
        // Through two: skip the trusted hop.
        assert_eq!(
            client_address(ip("10.0.0.1"), xff("198.51.100.7, 10.0.0.2"), &trusted),
            ip("198.51.100.7")
        );
        // Garbage on the right stops at the last trusted address.
        assert_eq!(
            client_address(ip("10.0.0.1"), xff("198.51.100.7, junk"), &trusted),
            ip("10.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("10.0.0.1"), std::iter::empty(), &trusted),
            ip("10.0.0.1")
        );
        // Nothing trusted: never the header.
        assert_eq!(
            client_address(ip("10.0.0.1"), xff("1.2.3.4"), &[]),
            ip("10.0.0.1")
        );
    }
}
