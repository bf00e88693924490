//! The Worker's configuration: read from `Env` and validated once per isolate ([`current`]),
//! re-read only when the isolate is handed a different `Env` (a new deployment or secret).
//!
//! Workers have no start-up hook that may fail, so a bad value cannot stop a deploy: instead
//! every request answers 503 `unavailable` and logs which variable or route entry is wrong, and
//! nothing is ever served with a half-read configuration.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;
use tollgate_shared::config::Vars;
use tollgate_shared::json;
use tollgate_shared::jwt::{HmacSecret, Jwk, Jwks, KeySet, Validation, VerifyingKey};
use tollgate_shared::KeySchema;
use worker::wasm_bindgen::JsValue;
use worker::{js_sys, Env};

use crate::crypto::EdgeSigner;
use crate::routes::RouteTable;
use crate::weburl::{self, WebUrl};

/// Why the configuration was refused; names the variable (or route entry), never a value.
pub(crate) use tollgate_shared::config::ConfigError;

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

/// How the edge signs identity assertions for upstreams.
#[derive(Debug, Clone)]
pub(crate) struct Assertions {
    /// The first key of `EDGE_SIGNING_KEYS`.
    pub signer: EdgeSigner,
    /// The public halves of every key in `EDGE_SIGNING_KEYS`, served at
    /// [`tollgate_shared::assertion::JWKS_PATH`] so upstreams can verify across a rotation.
    pub jwks_json: String,
    /// `EDGE_ISSUER` (default `tollgate-edge`).
    pub issuer: String,
    /// `ASSERTION_TTL_SECS` (default 30, at most 60).
    pub ttl: i64,
}

/// Everything a request needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `TOLLGATE_ROUTES` (or, when unset, the origin's own routes on `ORIGIN_URL`).
    pub routes: RouteTable,
    /// `UPSTASH_REDIS_REST_URL`: the Upstash REST endpoint (or the REST bridge).
    pub upstash_url: WebUrl,
    /// `UPSTASH_REDIS_REST_TOKEN` (secret): give the edge a read-only token.
    pub upstash_token: UpstashToken,
    /// `UPSTASH_STRICT_URL` and `UPSTASH_STRICT_TOKEN` (secret): the revocation state that
    /// `strict` routes read — the primary, single-region database, never a read region — so a
    /// logout is refused there on the very next request whatever the replicas' lag. Required when
    /// a route is strict.
    pub upstash_strict: Option<(WebUrl, UpstashToken)>,
    /// `UPSTASH_TIMEOUT_MS` (default 1000): past it the request fails closed with 503.
    pub upstash_timeout: Duration,
    /// `REDIS_KEY_PREFIX` (default empty): must equal the origin's, or every token reads as
    /// revoked.
    pub keys: KeySchema,
    /// `TOLLGATE_JWKS` (secret, the origin's public JWKS) and/or `JWT_SECRET` (secret, HS256,
    /// with the origin's derived kid): the static keys.
    pub key_set: KeySet,
    /// `JWKS_URL` (+ `JWKS_CACHE_SECS`, `JWKS_MIN_REFETCH_SECS`): the origin's JWKS, fetched and
    /// cached, so origin key rotation needs no redeploy. At least one source of keys is required.
    pub jwks: Option<crate::keys::JwksSource>,
    /// `JWT_ISSUER` (default `tollgate`), `JWT_AUDIENCE` (default `tollgate-api`) and
    /// `ACCESS_TOKEN_TTL_SECS` (default 900): must equal the origin's.
    pub validation: Validation,
    /// `EDGE_SIGNING_KEYS` (secret), `EDGE_ISSUER`, `ASSERTION_TTL_SECS`.
    pub assertions: Assertions,
}

/// Settings as parsed: shared by every request of the isolate.
pub(crate) type Loaded = Result<Rc<Settings>, Rc<ConfigError>>;

thread_local! {
    /// The settings this isolate parsed, with the `Env` they were parsed from.
    static CURRENT: RefCell<Option<(Env, Loaded)>> = const { RefCell::new(None) };
}

/// The settings for `env`: parsed on the isolate's first request and reused while the runtime
/// hands us the same `Env` object, so a request pays for no JSON or key parsing.
pub(crate) fn current(env: &Env) -> Loaded {
    CURRENT.with(|cell| {
        if let Some((seen, settings)) = cell.borrow().as_ref() {
            if js_sys::Object::is(seen, env) {
                return settings.clone();
            }
        }
        let settings = Settings::from_env(env).map(Rc::new).map_err(Rc::new);
        *cell.borrow_mut() = Some((env.clone(), settings.clone()));
        settings
    })
}

impl Settings {
    /// Reads every binding: plain vars and secrets as strings, `TOLLGATE_ROUTES` as a TOML
    /// table (an object binding) or a JSON string.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let raw = |name: &str| js_sys::Reflect::get(env, &JsValue::from_str(name)).ok();
        Self::from_lookup(|name| {
            let value = raw(name)?;
            if let Some(s) = value.as_string() {
                return Some(s);
            }
            if value.is_object() {
                return js_sys::JSON::stringify(&value).ok().map(String::from);
            }
            None
        })
    }

    /// Reads configuration through `get`, so tests can supply a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Empty counts as unset, as at the origin: both read through `Vars`.
        let vars = Vars::new(get);
        let get = |name: &str| vars.get(name);
        let required = |var: &str| vars.required(var);
        let allow_http = vars.flag("ALLOW_INSECURE_HTTP", false)?;
        let routes = match get("TOLLGATE_ROUTES") {
            Some(json) => RouteTable::parse(&json, allow_http).map_err(|e| ConfigError {
                // The whole table (not JSON, or not a table) or one entry of it.
                var: match e.entry.as_str() {
                    "TOLLGATE_ROUTES" => e.entry,
                    entry => format!("TOLLGATE_ROUTES: {entry}"),
                },
                reason: e.reason,
            })?,
            None => origin_routes(&required("ORIGIN_URL")?, allow_http)?,
        };
        let upstash_url = http_url(
            "UPSTASH_REDIS_REST_URL",
            &required("UPSTASH_REDIS_REST_URL")?,
            allow_http,
        )?;
        let upstash_token = UpstashToken(required("UPSTASH_REDIS_REST_TOKEN")?);
        let upstash_strict = match vars.get("UPSTASH_STRICT_URL") {
            Some(raw) => Some((
                http_url("UPSTASH_STRICT_URL", &raw, allow_http)?,
                UpstashToken(required("UPSTASH_STRICT_TOKEN")?),
            )),
            None if routes.has_strict() => {
                return Err(ConfigError::new(
                    "UPSTASH_STRICT_URL",
                    "is not set, but a route in TOLLGATE_ROUTES is strict",
                ))
            }
            None => None,
        };
        let upstash_timeout = Duration::from_millis(vars.positive("UPSTASH_TIMEOUT_MS", 1000)?);
        let jwks = match get("JWKS_URL") {
            None => None,
            Some(raw) => Some(crate::keys::JwksSource {
                url: http_url("JWKS_URL", &raw, allow_http)?,
                ttl: Duration::from_secs(vars.positive("JWKS_CACHE_SECS", 300)?),
                min_refetch: Duration::from_secs(vars.positive("JWKS_MIN_REFETCH_SECS", 30)?),
                timeout: upstash_timeout,
            }),
        };
        let key_set = key_set(get("TOLLGATE_JWKS"), vars.jwt_secret()?, jwks.is_some())?;
        let keys = vars.key_schema()?;
        let access_ttl = vars.positive("ACCESS_TOKEN_TTL_SECS", 900)?;
        let ttl = vars.positive("ASSERTION_TTL_SECS", 30)?;
        if ttl > tollgate_shared::assertion::MAX_LIFETIME_SECS.unsigned_abs() {
            return Err(ConfigError::new("ASSERTION_TTL_SECS", "must be at most 60"));
        }
        let (signer, jwks_json) = signing_keys(&required("EDGE_SIGNING_KEYS")?)?;
        Ok(Self {
            routes,
            upstash_url,
            upstash_token,
            upstash_strict,
            upstash_timeout,
            keys,
            key_set,
            jwks,
            validation: Validation::new(
                vars.issuer(),
                vars.audience(),
                i64::try_from(access_ttl).unwrap_or(i64::MAX),
            ),
            assertions: Assertions {
                signer,
                jwks_json,
                issuer: get("EDGE_ISSUER").unwrap_or_else(|| "tollgate-edge".into()),
                ttl: i64::try_from(ttl).unwrap_or(30),
            },
        })
    }
}

/// Without `TOLLGATE_ROUTES`: the origin's own API on `ORIGIN_URL`, as it always was.
fn origin_routes(origin: &str, allow_http: bool) -> Result<RouteTable, ConfigError> {
    RouteTable::origin_only(origin, allow_http)
        .map_err(|e| ConfigError::new("ORIGIN_URL", e.reason))
}

fn http_url(var: &str, raw: &str, allow_http: bool) -> Result<WebUrl, ConfigError> {
    let url = weburl::parse(raw.trim())
        .map_err(|e| ConfigError::new(var, format!("is not a URL: {e}")))?;
    let scheme_ok = url.scheme == "https" || (allow_http && url.scheme == "http");
    if !scheme_ok || url.host.is_empty() {
        return Err(ConfigError::new(
            var,
            "must be an https:// URL with a host (http:// only with ALLOW_INSECURE_HTTP=true)",
        ));
    }
    Ok(url)
}

/// The verification keys: the JWKS's Ed25519 keys plus the HS256 secret under the kid the origin
/// derives from it, so neither side needs a configured kid.
fn key_set(
    jwks: Option<String>,
    secret: Option<HmacSecret>,
    remote: bool,
) -> Result<KeySet, ConfigError> {
    let mut set = KeySet::new();
    if let Some(raw) = jwks {
        let jwks: Jwks = json::from_str(&raw)
            .map_err(|e| ConfigError::new("TOLLGATE_JWKS", format!("is not a JWKS: {e}")))?;
        set.extend_from_jwks(&jwks)
            .map_err(|e| ConfigError::new("TOLLGATE_JWKS", e.to_string()))?;
    }
    if let Some(secret) = secret {
        set.insert(secret.kid(), VerifyingKey::HS256(secret));
    }
    if set.is_empty() && !remote {
        return Err(ConfigError::new(
            "TOLLGATE_JWKS",
            "no verification key: set JWKS_URL, TOLLGATE_JWKS and/or JWT_SECRET",
        ));
    }
    Ok(set)
}

/// One private Ed25519 JWK of `EDGE_SIGNING_KEYS`. `x` is required: the edge has no curve code
/// to derive it from `d` (WebCrypto signs); the first signature checks that they match.
#[derive(Deserialize)]
struct PrivateJwk {
    kty: String,
    crv: String,
    kid: String,
    d: String,
    #[serde(default)]
    x: Option<String>,
}

#[derive(Deserialize)]
struct PrivateJwks {
    keys: Vec<PrivateJwk>,
}

/// `EDGE_SIGNING_KEYS`: a JWKS of private Ed25519 keys (`tollgate-origin edge-key generate`).
/// The first signs; all are published, so a new key can be published before it signs and an old
/// one kept verifying while upstreams' caches turn over.
fn signing_keys(raw: &str) -> Result<(EdgeSigner, String), ConfigError> {
    const VAR: &str = "EDGE_SIGNING_KEYS";
    let parsed: PrivateJwks =
        json::from_str(raw).map_err(|_| ConfigError::new(VAR, "is not a JWKS of private keys"))?;
    let bytes32 = |b64: &str| -> Option<[u8; 32]> {
        URL_SAFE_NO_PAD
            .decode(b64.as_bytes())
            .ok()
            .and_then(|d| d.try_into().ok())
    };
    let mut signers = Vec::new();
    let mut public = Vec::new();
    for jwk in parsed.keys {
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" || jwk.kid.is_empty() {
            return Err(ConfigError::new(VAR, "keys must be OKP/Ed25519 with a kid"));
        }
        let seed = bytes32(&jwk.d).ok_or_else(|| {
            ConfigError::new(VAR, format!("key {}: d is not 32 base64url bytes", jwk.kid))
        })?;
        let x = jwk.x.as_deref().and_then(bytes32).ok_or_else(|| {
            ConfigError::new(VAR, format!("key {}: x is not 32 base64url bytes", jwk.kid))
        })?;
        public.push(Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(x),
            kid: jwk.kid.clone(),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        });
        signers.push(EdgeSigner::new(jwk.kid, seed, x));
    }
    let Some(first) = signers.into_iter().next() else {
        return Err(ConfigError::new(VAR, "holds no key"));
    };
    let json = serde_json::to_string(&Jwks { keys: public })
        .map_err(|_| ConfigError::new(VAR, "could not be published"))?;
    Ok((first, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA","use":"sig"}]}"#;
    /// RFC 8037 A.1's private key.
    const EDGE_KEYS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"edge-1","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    fn minimal() -> Vec<(&'static str, &'static str)> {
        vec![
            ("ORIGIN_URL", "https://origin.example"),
            ("UPSTASH_REDIS_REST_URL", "https://eu1.upstash.io"),
            ("UPSTASH_REDIS_REST_TOKEN", "t"),
            ("TOLLGATE_JWKS", JWKS),
            ("EDGE_SIGNING_KEYS", EDGE_KEYS),
        ]
    }

    fn with(var: &'static str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut pairs = minimal();
        pairs.retain(|(k, _)| *k != var);
        pairs.push((var, value));
        pairs
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = load(&minimal()).expect("loads");
        assert_eq!(s.upstash_timeout, Duration::from_millis(1000));
        assert_eq!(s.validation.issuer, "tollgate");
        assert_eq!(s.validation.audience, "tollgate-api");
        assert_eq!(s.validation.max_lifetime, 900);
        assert_eq!(s.keys.prefix(), "");
        assert_eq!(s.key_set.len(), 1);
        assert_eq!(s.assertions.issuer, "tollgate-edge");
        assert_eq!(s.assertions.ttl, 30);
        assert_eq!(s.assertions.signer.kid, "edge-1");
        assert!(s
            .assertions
            .jwks_json
            .contains("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"));
        assert!(
            !s.assertions.jwks_json.contains("nWGxne"),
            "private half published"
        );
        let (route, upstream) = s.routes.find("POST", "/api/users/login").expect("routed");
        assert_eq!(route.access, crate::routes::Access::PublicSigned);
        assert_eq!(upstream.name, "origin");
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        for (var, value) in [
            ("ORIGIN_URL", "not a url"),
            ("ORIGIN_URL", "ftp://x"),
            ("ORIGIN_URL", "http://plain.example"),
            ("UPSTASH_REDIS_REST_URL", ""),
            ("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:8079"),
            ("UPSTASH_REDIS_REST_TOKEN", " "),
            ("UPSTASH_TIMEOUT_MS", "0"),
            ("UPSTASH_TIMEOUT_MS", "soon"),
            ("TOLLGATE_JWKS", "{"),
            ("JWT_SECRET", "short"),
            ("EDGE_SIGNING_KEYS", "{}"),
            ("EDGE_SIGNING_KEYS", r#"{"keys":[]}"#),
            (
                "EDGE_SIGNING_KEYS",
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","d":"c2hvcnQ"}]}"#,
            ),
            // No `x`: the edge has no curve code to derive it, so it is required.
            (
                "EDGE_SIGNING_KEYS",
                r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"e","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}"#,
            ),
            ("ASSERTION_TTL_SECS", "61"),
            ("ALLOW_INSECURE_HTTP", "yes"),
            ("TOLLGATE_ROUTES", "{"),
        ] {
            let err = load(&with(var, value)).expect_err(var);
            assert_eq!(err.var, var, "{value}");
            assert!(!err.to_string().contains("short"));
        }
        let err = load(&with(
            "TOLLGATE_ROUTES",
            r#"{"upstreams":{"o":{"url":"https://o.example"}},"routes":[{"prefix":"/a","upstream":"nope"}]}"#,
        ))
        .expect_err("bad route");
        assert_eq!(err.var, "TOLLGATE_ROUTES: routes[0] (/a)");
    }

    #[test]
    fn plain_http_needs_the_development_switch() {
        let mut pairs = with("ORIGIN_URL", "http://127.0.0.1:8080");
        pairs.retain(|(k, _)| *k != "UPSTASH_REDIS_REST_URL");
        pairs.push(("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:8079"));
        assert!(load(&pairs).is_err());
        pairs.push(("ALLOW_INSECURE_HTTP", "true"));
        assert!(load(&pairs).is_ok());
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
    fn a_jwks_url_alone_is_a_source_of_keys() {
        let mut pairs = with("JWKS_URL", "https://origin.example/.well-known/jwks.json");
        pairs.retain(|(k, _)| *k != "TOLLGATE_JWKS");
        let s = load(&pairs).expect("loads");
        let source = s.jwks.expect("remote keys");
        assert_eq!(source.ttl, Duration::from_secs(300));
        assert_eq!(source.min_refetch, Duration::from_secs(30));
        assert!(s.key_set.is_empty());
        assert_eq!(
            load(&with("JWKS_URL", "http://origin.example/jwks"))
                .expect_err("http")
                .var,
            "JWKS_URL"
        );
    }

    #[test]
    fn a_strict_route_needs_the_strict_database() {
        const ROUTES: &str = r#"{"upstreams":{"o":{"url":"https://o.example"}},"routes":[{"prefix":"/a","upstream":"o","strict":true}]}"#;
        let err = load(&with("TOLLGATE_ROUTES", ROUTES)).expect_err("no strict URL");
        assert_eq!(err.var, "UPSTASH_STRICT_URL");
        let mut pairs = with("TOLLGATE_ROUTES", ROUTES);
        pairs.push(("UPSTASH_STRICT_URL", "https://primary.upstash.io"));
        assert_eq!(
            load(&pairs).expect_err("no strict token").var,
            "UPSTASH_STRICT_TOKEN"
        );
        pairs.push(("UPSTASH_STRICT_TOKEN", "strict-sekrit"));
        let s = load(&pairs).expect("loads");
        let (url, _) = s.upstash_strict.as_ref().expect("strict database");
        assert_eq!(url.href, "https://primary.upstash.io/");
        assert!(!format!("{s:?}").contains("strict-sekrit"));
    }

    #[test]
    fn debug_hides_the_secrets() {
        let s = load(&with("UPSTASH_REDIS_REST_TOKEN", "sekrit-token")).expect("loads");
        let debug = format!("{s:?}");
        assert!(!debug.contains("sekrit"));
        assert!(!debug.contains("nWGxne"));
    }
}
