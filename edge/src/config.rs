//! The Worker's configuration, read from `Env` once per request by [`Settings::from_env`].
//!
//! Workers have no start-up hook that may fail, so a bad value cannot stop a deploy: instead
//! every request answers 503 `unavailable` and logs which variable is wrong, and nothing is ever
//! served with a half-read configuration.

use std::time::Duration;

use tollgate_shared::jwt::{HmacSecret, Jwks, KeySet, Validation, VerifyingKey};
use tollgate_shared::KeySchema;
use worker::{Env, Url};

/// Why the configuration was refused; names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.var, self.reason)
    }
}

/// The Upstash REST token. `Debug` never prints it.
#[derive(Clone)]
pub(crate) struct UpstashToken(String);

impl UpstashToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for UpstashToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstashToken(<redacted>)")
    }
}

/// Everything a request needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `ORIGIN_URL`: where requests are forwarded; its path (if any) prefixes the request's.
    pub origin: Url,
    /// `UPSTASH_REDIS_REST_URL`: the Upstash REST endpoint (or the REST bridge).
    pub upstash_url: Url,
    /// `UPSTASH_REDIS_REST_TOKEN` (secret).
    pub upstash_token: UpstashToken,
    /// `UPSTASH_TIMEOUT_MS` (default 1000): past it the request fails closed with 503.
    pub upstash_timeout: Duration,
    /// `REDIS_KEY_PREFIX` (default empty): must equal the origin's, or every token reads as
    /// revoked.
    pub keys: KeySchema,
    /// `TOLLGATE_JWKS` (secret, the origin's public JWKS) and/or `JWT_SECRET` (secret, HS256,
    /// with the origin's derived kid). At least one key is required.
    pub key_set: KeySet,
    /// `JWT_ISSUER` (default `tollgate`) and `JWT_AUDIENCE` (default `tollgate-api`).
    pub validation: Validation,
}

impl Settings {
    /// Reads every binding through `env.var`, which returns plain vars and secrets alike.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))
    }

    /// Reads configuration through `get`, so tests can supply a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Empty counts as unset, as at the origin.
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let required = |var: &'static str| {
            get(var).ok_or_else(|| ConfigError {
                var,
                reason: "is not set".into(),
            })
        };
        let origin = http_url("ORIGIN_URL", &required("ORIGIN_URL")?)?;
        let upstash_url = http_url(
            "UPSTASH_REDIS_REST_URL",
            &required("UPSTASH_REDIS_REST_URL")?,
        )?;
        let upstash_token = UpstashToken(required("UPSTASH_REDIS_REST_TOKEN")?);
        let upstash_timeout = match get("UPSTASH_TIMEOUT_MS") {
            None => Duration::from_millis(1000),
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(ConfigError {
                        var: "UPSTASH_TIMEOUT_MS",
                        reason: "must be a whole number of milliseconds greater than 0".into(),
                    })
                }
            },
        };
        let key_set = key_set(get("TOLLGATE_JWKS"), get("JWT_SECRET"))?;
        let keys =
            KeySchema::configured(get("REDIS_KEY_PREFIX").unwrap_or_default()).map_err(|e| {
                ConfigError {
                    var: "REDIS_KEY_PREFIX",
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            origin,
            upstash_url,
            upstash_token,
            upstash_timeout,
            keys,
            key_set,
            validation: Validation {
                issuer: get("JWT_ISSUER").unwrap_or_else(|| "tollgate".into()),
                audience: get("JWT_AUDIENCE").unwrap_or_else(|| "tollgate-api".into()),
                leeway: tollgate_shared::jwt::DEFAULT_LEEWAY_SECS,
            },
        })
    }
}

fn http_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| ConfigError {
        var,
        reason: format!("is not a URL: {e}"),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError {
            var,
            reason: "must be an http:// or https:// URL with a host".into(),
        });
    }
    Ok(url)
}

/// The verification keys: the JWKS's Ed25519 keys plus the HS256 secret under the kid the origin
/// derives from it, so neither side needs a configured kid.
fn key_set(jwks: Option<String>, secret: Option<String>) -> Result<KeySet, ConfigError> {
    let mut set = KeySet::new();
    if let Some(raw) = jwks {
        let jwks: Jwks = serde_json::from_str(&raw).map_err(|e| ConfigError {
            var: "TOLLGATE_JWKS",
            reason: format!("is not a JWKS: {e}"),
        })?;
        set.extend_from_jwks(&jwks).map_err(|e| ConfigError {
            var: "TOLLGATE_JWKS",
            reason: e.to_string(),
        })?;
    }
    if let Some(raw) = secret {
        let secret = HmacSecret::new(raw.into_bytes()).map_err(|e| ConfigError {
            var: "JWT_SECRET",
            reason: e.to_string(),
        })?;
        set.insert(secret.kid(), VerifyingKey::HS256(secret));
    }
    if set.is_empty() {
        return Err(ConfigError {
            var: "TOLLGATE_JWKS",
            reason: "no verification key: set TOLLGATE_JWKS and/or JWT_SECRET".into(),
        });
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA","use":"sig"}]}"#;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("ORIGIN_URL", "http://127.0.0.1:8080"),
            ("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:8079"),
            ("UPSTASH_REDIS_REST_TOKEN", "t"),
            ("TOLLGATE_JWKS", JWKS),
        ]
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = load(&minimal()).expect("loads");
        assert_eq!(s.upstash_timeout, Duration::from_millis(1000));
        assert_eq!(s.validation.issuer, "tollgate");
        assert_eq!(s.validation.audience, "tollgate-api");
        assert_eq!(s.keys.prefix(), "");
        assert_eq!(s.key_set.len(), 1);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value) in [
            ("ORIGIN_URL", "not a url"),
            ("ORIGIN_URL", "ftp://x"),
            ("UPSTASH_REDIS_REST_URL", ""),
            ("UPSTASH_REDIS_REST_TOKEN", " "),
            ("UPSTASH_TIMEOUT_MS", "0"),
            ("UPSTASH_TIMEOUT_MS", "soon"),
            ("TOLLGATE_JWKS", "{"),
            ("JWT_SECRET", "short"),
        ] {
            let mut pairs = minimal();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            let err = load(&pairs).expect_err(var);
            assert_eq!(err.var, var, "{value}");
            assert!(!err.to_string().contains("short"));
        }
    }

    #[test]
    fn a_key_is_required_and_the_hmac_kid_is_derived() {
        let mut pairs = minimal();
        pairs.retain(|(k, _)| *k != "TOLLGATE_JWKS");
        assert_eq!(load(&pairs).expect_err("no key").var, "TOLLGATE_JWKS");
        let secret = "0123456789abcdef0123456789abcdef";
        pairs.push(("JWT_SECRET", secret));
        let s = load(&pairs).expect("loads");
        let kid = HmacSecret::new(secret.as_bytes().to_vec())
            .expect("long enough")
            .kid();
        assert!(s.key_set.get(&kid).is_some());
    }

    #[test]
    fn debug_hides_the_upstash_token() {
        let mut pairs = minimal();
        pairs.retain(|(k, _)| *k != "UPSTASH_REDIS_REST_TOKEN");
        pairs.push(("UPSTASH_REDIS_REST_TOKEN", "sekrit-token"));
        let s = load(&pairs).expect("loads");
        assert!(!format!("{s:?}").contains("sekrit"));
    }
}
