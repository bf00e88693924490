//! URLs from configuration (`UPSTASH_*_URL`, `JWKS_URL`, `ORIGIN_URL`, the route table's
//! upstreams), read once per isolate by a WHATWG URL parser: the platform's own (JS `URL`) in
//! the Worker, the `url` crate (the same standard, which `worker` re-exports) in native tests.
//! The Worker so carries no URL parser of its own (`url` and `idna` were ~32 KB of its code);
//! requests need none at all (their URL comes serialised, see [`crate::proxy::RequestUrl`]).

/// A parsed absolute URL, as its serialisation and the parts configuration checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebUrl {
    /// The serialisation (`href`): what requests to this URL are built from.
    pub href: String,
    /// Without the `:` (`https`).
    pub scheme: String,
    /// Empty when the URL has none.
    pub host: String,
    /// The path, percent-encoded (`/` at least, for http(s)).
    pub path: String,
    /// Whether the serialisation has a `?` (an empty query counts).
    pub has_query: bool,
    /// Whether it has a `#` (an empty fragment counts).
    pub has_fragment: bool,
}

impl WebUrl {
    /// `scheme://authority`: the serialisation up to the path (userinfo and port included).
    pub fn origin(&self) -> &str {
        let end = self.href.find(['?', '#']).unwrap_or(self.href.len());
        &self.href[..end - self.path.len()]
    }
}

/// Parses `raw`; the error is the parser's message.
#[cfg(target_arch = "wasm32")]
pub(crate) fn parse(raw: &str) -> Result<WebUrl, String> {
    let url = worker::web_sys::Url::new(raw).map_err(|e| crate::proxy::describe(&e))?;
    let href = url.href();
    // A JS `URL` reports an empty query or fragment as "": the serialisation tells them apart
    // (a `?` or `#` elsewhere in it is percent-encoded).
    let has_query = href.contains('?');
    let has_fragment = href.contains('#');
    Ok(WebUrl {
        scheme: url.protocol().trim_end_matches(':').to_owned(),
        host: url.hostname(),
        path: url.pathname(),
        has_query,
        has_fragment,
        href,
    })
}

/// Parses `raw`; the error is the parser's message.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn parse(raw: &str) -> Result<WebUrl, String> {
    let url = worker::Url::parse(raw).map_err(|e| e.to_string())?;
    Ok(WebUrl {
        href: url.as_str().to_owned(),
        scheme: url.scheme().to_owned(),
        host: url.host_str().unwrap_or_default().to_owned(),
        path: url.path().to_owned(),
        has_query: url.query().is_some(),
        has_fragment: url.fragment().is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_origin_follow_the_serialisation() {
        let u = parse("HTTPS://u:p@Host.Example:8443/a/b/?x=1#f").expect("url");
        assert_eq!(u.href, "https://u:p@host.example:8443/a/b/?x=1#f");
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "host.example");
        assert_eq!(u.path, "/a/b/");
        assert!(u.has_query && u.has_fragment);
        assert_eq!(u.origin(), "https://u:p@host.example:8443");
        let bare = parse("http://127.0.0.1:8080").expect("url");
        assert_eq!(bare.href, "http://127.0.0.1:8080/");
        assert_eq!(bare.origin(), "http://127.0.0.1:8080");
        assert!(!bare.has_query && !bare.has_fragment);
        assert!(parse("http://h/a?").expect("url").has_query);
        assert!(parse("not a url").is_err());
    }
}
