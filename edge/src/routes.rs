//! The route table: which upstream owns a path, and whether a token is needed to reach it.
//!
//! Configured as JSON in the `TOLLGATE_ROUTES` var (a TOML table or a JSON string):
//!
//! ```json
//! { "upstreams": { "origin": { "url": "https://auth.internal" },
//!                  "notes":  { "service": "NOTES" } },
//!   "routes": [ { "prefix": "/api/users", "upstream": "origin" },
//!               { "path": "/api/users/login", "methods": ["POST"], "upstream": "origin",
//!                 "access": "public_signed" },
//!               { "prefix": "/api/notes", "upstream": "notes" } ] }
//! ```
//!
//! - An upstream is reached by `url` (its path, if any, prefixes the request's) or by a
//!   Cloudflare service binding (`service`: the binding's name). Its name is the `aud` of the
//!   assertions it receives.
//! - A route matches an exact `path` or a `prefix` on a segment boundary (`/api/notes` matches
//!   `/api/notes` and `/api/notes/1`, never `/api/notesX`), optionally only for some `methods`.
//!   An exact path beats any prefix, a longer prefix beats a shorter one. No match: 404 at the
//!   edge, no upstream is touched.
//! - `access` is `protected` (the default: a live token is required, and the upstream gets the
//!   identity assertion), `public` (passed through untouched), or `public_signed` (passed through
//!   with an anonymous assertion carrying the client address, for routes such as login whose
//!   rate limits need a trustworthy address).
//! - `strict: true` (protected routes only) reads revocation state from `UPSTASH_STRICT_URL` —
//!   the primary, single-region database — instead of `UPSTASH_REDIS_REST_URL`, which may be
//!   a read region that lags behind a logout (README, "Revocation with replicas"). The route
//!   pays a round trip to the primary region on every request for a revocation window of zero.
//!
//! Requests are matched on their path after [`normalize_path`], which refuses every form that
//! could reach a different upstream route than the one whose rules were applied, and the very
//! same string is what the upstream receives.

use serde::Deserialize;
use tollgate_shared::json;

use crate::weburl::{self, WebUrl};

/// How a route is guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Access {
    Protected,
    Public,
    PublicSigned,
}

/// Where an upstream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Url(BaseUrl),
    Service(String),
}

/// An upstream's URL, validated and split once when the table is read, so that a request's
/// target is two string copies ([`crate::proxy::target_url`]) instead of a URL parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseUrl {
    /// `scheme://authority` as the URL parser serialised it (userinfo and port included).
    pub origin: String,
    /// The path the request's path is appended to, without its trailing `/` (often empty).
    pub path: String,
}

impl BaseUrl {
    /// Splits a parsed URL (the route table refuses one with a query or fragment).
    pub fn new(url: &WebUrl) -> Self {
        Self {
            origin: url.origin().to_owned(),
            path: url.path.trim_end_matches('/').to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub name: String,
    pub target: Target,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pattern: Pattern,
    /// Upper-case methods; empty = any.
    methods: Vec<String>,
    pub access: Access,
    /// Revocation state from the strict (primary) database rather than the nearest replica.
    pub strict: bool,
    /// Index into [`RouteTable::upstreams`].
    upstream: usize,
}

/// The validated table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteTable {
    upstreams: Vec<Upstream>,
    routes: Vec<Route>,
}

/// A route table entry that cannot be served; names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {reason}")]
pub(crate) struct RouteError {
    pub entry: String,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    upstreams: ByName,
    routes: Vec<RawRoute>,
}

/// The `upstreams` object, in name order, a repeated name keeping its last value: what a
/// `BTreeMap` would hold, without linking a B-tree into the wasm for a handful of entries.
struct ByName(Vec<(String, RawUpstream)>);

impl ByName {
    fn insert(&mut self, name: String, upstream: RawUpstream) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(i) => self.0[i].1 = upstream,
            Err(i) => self.0.insert(i, (name, upstream)),
        }
    }
}

impl<'de> Deserialize<'de> for ByName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;

        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = ByName;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of upstreams by name")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ByName, A::Error> {
                let mut by_name = ByName(Vec::new());
                while let Some((name, upstream)) = map.next_entry()? {
                    by_name.insert(name, upstream);
                }
                Ok(by_name)
            }
        }

        d.deserialize_map(Members)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    url: Option<String>,
    service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: Option<String>,
    prefix: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    upstream: String,
    #[serde(default = "protected")]
    access: Access,
    #[serde(default)]
    strict: bool,
}

fn protected() -> Access {
    Access::Protected
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl RouteTable {
    /// Parses and validates the table from its JSON. `allow_http` permits `http://` upstreams
    /// (local development only). JSON that is not a table is refused with the entry
    /// `TOLLGATE_ROUTES`.
    pub fn parse(json: &str, allow_http: bool) -> Result<Self, RouteError> {
        let raw: RawTable = json::from_str(json).map_err(|e| RouteError {
            entry: "TOLLGATE_ROUTES".into(),
            reason: if e.is_syntax() {
                format!("is not JSON: {e}")
            } else {
                e.to_string()
            },
        })?;
        Self::validate(raw, allow_http)
    }

    /// Without `TOLLGATE_ROUTES`: the origin's own API on `origin` (`ORIGIN_URL`), as it always
    /// was — its account routes protected, sign-up, login and refresh `public_signed`, health
    /// and its JWKS public.
    pub fn origin_only(origin: &str, allow_http: bool) -> Result<Self, RouteError> {
        let route = |path: &str, method: Option<&str>, access: Access| RawRoute {
            path: method.map(|_| path.to_owned()),
            prefix: method.is_none().then(|| path.to_owned()),
            methods: method.map(str::to_owned).into_iter().collect(),
            upstream: "origin".into(),
            access,
            strict: false,
        };
        let raw = RawTable {
            upstreams: ByName(vec![(
                "origin".to_owned(),
                RawUpstream {
                    url: Some(origin.to_owned()),
                    service: None,
                },
            )]),
            routes: vec![
                route("/api/users", None, Access::Protected),
                route("/api/users/register", Some("POST"), Access::PublicSigned),
                route("/api/users/login", Some("POST"), Access::PublicSigned),
                route("/api/users/refresh", Some("POST"), Access::PublicSigned),
                route("/health", Some("GET"), Access::Public),
                route("/ready", Some("GET"), Access::Public),
                route("/.well-known/jwks.json", Some("GET"), Access::Public),
            ],
        };
        Self::validate(raw, allow_http)
    }

    fn validate(raw: RawTable, allow_http: bool) -> Result<Self, RouteError> {
        let mut upstreams = Vec::new();
        for (name, up) in raw.upstreams.0 {
            let entry = format!("upstreams.{name}");
            let err = |reason: &str| RouteError {
                entry: entry.clone(),
                reason: reason.into(),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err("names are letters, digits, - and _"));
            }
            let target = match (up.url, up.service) {
                (Some(raw), None) => {
                    let url = weburl::parse(&raw).map_err(|e| err(&format!("url: {e}")))?;
                    match url.scheme.as_str() {
                        "https" => {}
                        "http" if allow_http => {}
                        "http" => {
                            return Err(err(
                                "url must be https:// (http:// only with ALLOW_INSECURE_HTTP)",
                            ))
                        }
                        _ => return Err(err("url must be https://")),
                    }
                    if url.host.is_empty() || url.has_query || url.has_fragment {
                        return Err(err("url needs a host and no query or fragment"));
                    }
                    Target::Url(BaseUrl::new(&url))
                }
                (None, Some(binding)) if !binding.trim().is_empty() => Target::Service(binding),
                _ => return Err(err("give exactly one of url or service")),
            };
            upstreams.push(Upstream { name, target });
        }
        let mut routes: Vec<Route> = Vec::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let label = r.path.as_deref().or(r.prefix.as_deref()).unwrap_or("?");
            let entry = format!("routes[{i}] ({label})");
            let err = |reason: String| RouteError {
                entry: entry.clone(),
                reason,
            };
            let pattern = match (r.path, r.prefix) {
                (Some(p), None) => Pattern::Exact(p),
                (None, Some(p)) => Pattern::Prefix(p.trim_end_matches('/').to_owned()),
                _ => return Err(err("give exactly one of path or prefix".into())),
            };
            let text = match &pattern {
                Pattern::Exact(p) | Pattern::Prefix(p) => p.as_str(),
            };
            let canonical = text.is_empty() && matches!(pattern, Pattern::Prefix(_))
                || (text.starts_with('/') && normalize_path(text) == Ok(text));
            if !canonical {
                return Err(err("must be a normalised absolute path".into()));
            }
            let upstream = upstreams
                .iter()
                .position(|u| u.name == r.upstream)
                .ok_or_else(|| err(format!("upstream {:?} is not defined", r.upstream)))?;
            let mut methods = Vec::new();
            for m in r.methods {
                let upper = m.to_ascii_uppercase();
                if !METHODS.contains(&upper.as_str()) {
                    return Err(err(format!("unknown method {m:?}")));
                }
                methods.push(upper);
            }
            if r.strict && r.access != Access::Protected {
                return Err(err(
                    "strict applies to protected routes only (public ones read no revocation \
                     state)"
                        .into(),
                ));
            }
            let route = Route {
                pattern,
                methods,
                access: r.access,
                strict: r.strict,
                upstream,
            };
            if let Some(j) = routes.iter().position(|o| o.overlaps(&route)) {
                return Err(err(format!("same path and methods as routes[{j}]")));
            }
            routes.push(route);
        }
        if routes.is_empty() {
            return Err(RouteError {
                entry: "routes".into(),
                reason: "no route: the edge would answer 404 to everything".into(),
            });
        }
        Ok(Self { upstreams, routes })
    }

    /// The route for a request, by the most specific match.
    pub fn find(&self, method: &str, path: &str) -> Option<(&Route, &Upstream)> {
        self.routes
            .iter()
            .filter(|r| r.matches(method, path))
            .max_by_key(|r| r.specificity())
            .map(|r| (r, &self.upstreams[r.upstream]))
    }

    /// Whether any route reads revocation state from the strict database.
    pub fn has_strict(&self) -> bool {
        self.routes.iter().any(|r| r.strict)
    }

    pub fn upstream(&self, name: &str) -> Option<&Upstream> {
        self.upstreams.iter().find(|u| u.name == name)
    }
}

impl Route {
    /// The route's configured `path` or `prefix`, for log lines: it names the route without
    /// carrying anything the client put in its own path.
    pub fn label(&self) -> &str {
        match &self.pattern {
            Pattern::Exact(p) | Pattern::Prefix(p) => p,
        }
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let path_ok = match &self.pattern {
            Pattern::Exact(p) => path == p,
            Pattern::Prefix(p) => {
                path == p || (path.starts_with(p.as_str()) && path[p.len()..].starts_with('/'))
            }
        };
        path_ok && (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
    }

    /// Exact paths first, then longer prefixes; among equals, a method-specific route first.
    fn specificity(&self) -> (u8, usize, bool) {
        match &self.pattern {
            Pattern::Exact(p) => (1, p.len(), !self.methods.is_empty()),
            Pattern::Prefix(p) => (0, p.len(), !self.methods.is_empty()),
        }
    }

    fn overlaps(&self, other: &Route) -> bool {
        self.pattern == other.pattern
            && (self.methods.is_empty()
                || other.methods.is_empty()
                || self.methods.iter().any(|m| other.methods.contains(m)))
    }
}

/// Why a request path is refused before routing (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathError;

/// The path, if it is one every upstream reads the same way: absolute, no empty segment (`//`),
/// no `.`/`..` segment (also as `%2e`, or with a `;` parameter as Tomcat reads it), no encoded
/// `/`, `\` or NUL, no raw backslash, and no malformed percent-escape. The URL parser has already
/// resolved plain `.` and `..`; this refuses the forms it leaves for the upstream to interpret
/// differently. Nothing is rewritten: what is matched is exactly what is forwarded.
pub(crate) fn normalize_path(path: &str) -> Result<&str, PathError> {
    if !path.starts_with('/') || path.contains('\\') {
        return Err(PathError);
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError)?;
            let value = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PathError)?;
            if matches!(value, b'/' | b'\\' | b'.' | 0) {
                return Err(PathError);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    for segment in path[1..].split('/') {
        let name = segment.split(';').next().unwrap_or_default();
        if name == "." || name == ".." {
            return Err(PathError);
        }
    }
    // An empty segment; a single trailing slash is an ordinary path.
    if path.contains("//") {
        return Err(PathError);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> RouteTable {
        RouteTable::parse(
            &json!({
                "upstreams": {
                    "origin": { "url": "http://127.0.0.1:8080" },
                    "notes": { "url": "https://notes.internal/base" },
                    "billing": { "service": "BILLING" }
                },
                "routes": [
                    { "prefix": "/api/users", "upstream": "origin" },
                    { "path": "/api/users/login", "methods": ["POST"], "upstream": "origin", "access": "public_signed" },
                    { "path": "/health", "methods": ["GET", "head"], "upstream": "origin", "access": "public" },
                    { "prefix": "/api/notes/", "upstream": "notes" },
                    { "prefix": "/api/notes/public", "upstream": "notes", "access": "public" },
                    { "prefix": "/api/billing", "upstream": "billing", "strict": true }
                ]
            })
            .to_string(),
            true,
        )
        .expect("valid")
    }

    fn route(method: &str, path: &str) -> Option<(Access, String)> {
        let t = table();
        t.find(method, path)
            .map(|(r, u)| (r.access, u.name.clone()))
    }

    #[test]
    fn longest_prefix_and_exact_paths_win() {
        use Access::*;
        assert_eq!(
            route("POST", "/api/users/login"),
            Some((PublicSigned, "origin".into()))
        );
        assert_eq!(
            route("GET", "/api/users/login"),
            Some((Protected, "origin".into()))
        );
        assert_eq!(
            route("GET", "/api/users/me"),
            Some((Protected, "origin".into()))
        );
        assert_eq!(
            route("GET", "/api/users"),
            Some((Protected, "origin".into()))
        );
        assert_eq!(route("HEAD", "/health"), Some((Public, "origin".into())));
        assert_eq!(route("POST", "/health"), None);
        assert_eq!(
            route("GET", "/api/notes/1"),
            Some((Protected, "notes".into()))
        );
        assert_eq!(
            route("GET", "/api/notes/public/x"),
            Some((Public, "notes".into()))
        );
        assert_eq!(
            route("GET", "/api/notes/publicx"),
            Some((Protected, "notes".into()))
        );
        assert_eq!(
            route("GET", "/api/billing/x"),
            Some((Protected, "billing".into()))
        );
        let t = table();
        assert!(t.has_strict());
        let strict = |path: &str| t.find("GET", path).map(|(r, _)| r.strict);
        assert_eq!(strict("/api/billing/x"), Some(true));
        assert_eq!(strict("/api/notes/1"), Some(false));
    }

    #[test]
    fn prefixes_match_on_segment_boundaries_only_and_unknown_paths_match_nothing() {
        assert_eq!(route("GET", "/api/usersX"), None);
        assert_eq!(route("GET", "/api/notesX/1"), None);
        assert_eq!(route("GET", "/"), None);
        assert_eq!(route("GET", "/API/users/me"), None);
        assert_eq!(route("GET", "/unknown"), None);
    }

    #[test]
    fn upstreams_are_read_in_name_order_and_a_repeated_name_keeps_its_last_value() {
        let t = RouteTable::parse(
            r#"{"upstreams":{"b":{"url":"https://b.example"},"a":{"service":"A"},
                "b":{"service":"B"}},"routes":[{"prefix":"/a","upstream":"a"}]}"#,
            false,
        )
        .expect("valid");
        let names: Vec<&str> = t.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            t.upstream("b").map(|u| &u.target),
            Some(&Target::Service("B".into()))
        );
        // The first bad upstream reported is the first by name, as the table reads them.
        let e = RouteTable::parse(
            r#"{"upstreams":{"z":{},"y":{}},"routes":[{"prefix":"/a","upstream":"y"}]}"#,
            false,
        )
        .expect_err("refused");
        assert_eq!(e.entry, "upstreams.y");
    }

    #[test]
    fn every_bad_entry_is_named() {
        let bad = |routes: serde_json::Value, upstreams: serde_json::Value| {
            RouteTable::parse(
                &json!({ "upstreams": upstreams, "routes": routes }).to_string(),
                false,
            )
            .expect_err("refused")
        };
        let ok_up = json!({ "o": { "url": "https://o.example" } });
        let e = bad(json!([{ "prefix": "/a", "upstream": "x" }]), ok_up.clone());
        assert_eq!(e.entry, "routes[0] (/a)");
        assert!(e.reason.contains("\"x\""), "{e}");
        let e = bad(
            json!([{ "prefix": "/a", "upstream": "o" }]),
            json!({ "o": { "url": "http://o.example" } }),
        );
        assert_eq!(e.entry, "upstreams.o");
        let e = bad(
            json!([{ "prefix": "/a", "upstream": "o" }, { "prefix": "/a/", "upstream": "o" }]),
            ok_up.clone(),
        );
        assert_eq!(e.entry, "routes[1] (/a/)");
        let e = bad(
            json!([{ "prefix": "/a/../b", "upstream": "o" }]),
            ok_up.clone(),
        );
        assert_eq!(e.entry, "routes[0] (/a/../b)");
        let e = bad(
            json!([{ "path": "/a", "prefix": "/a", "upstream": "o" }]),
            ok_up.clone(),
        );
        assert_eq!(e.entry, "routes[0] (/a)");
        let e = bad(
            json!([{ "path": "/a", "methods": ["BREW"], "upstream": "o" }]),
            ok_up.clone(),
        );
        assert!(e.reason.contains("BREW"));
        let e = bad(
            json!([{ "path": "/a", "upstream": "o", "auth": "none" }]),
            ok_up.clone(),
        );
        assert_eq!(e.entry, "TOLLGATE_ROUTES");
        let e = bad(
            json!([{ "path": "/a", "upstream": "o", "access": "public", "strict": true }]),
            ok_up.clone(),
        );
        assert!(e.reason.contains("protected routes only"), "{e}");
        let e = bad(json!([]), ok_up);
        assert_eq!(e.entry, "routes");
        let e = bad(
            json!([{ "path": "/a", "upstream": "o" }]),
            json!({ "o": {} }),
        );
        assert_eq!(e.entry, "upstreams.o");
    }

    #[test]
    fn paths_that_could_reach_another_route_are_refused() {
        for bad in [
            "/api/notes/%2e%2e/users/me",
            "/api/notes/%2E%2e/users",
            "/api/notes/..;/users/me",
            "/api/notes/.;x/1",
            "/api/notes/x%2fy",
            "/api/notes/x%2F..%2Fusers",
            "/api/notes/x%5c..",
            "/api/notes\\..\\users",
            "/api/notes/%00",
            "/api//users/me",
            "//api/users",
            "/api/notes/%zz",
            "/api/notes/%2",
            "api/notes",
        ] {
            assert_eq!(normalize_path(bad), Err(PathError), "{bad}");
        }
        for good in [
            "/",
            "/api/notes/1",
            "/api/notes/",
            "/api/notes/a%20b",
            "/a;b=c/d",
            "/a/.well-known/x",
        ] {
            assert_eq!(normalize_path(good), Ok(good), "{good}");
        }
    }
}
