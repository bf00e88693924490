//! End-to-end harness for Tollgate: the edge Worker running in workerd (`wrangler dev`) in front
//! of the origin, with the Upstash REST bridge over real Redis — every hop real, per test.
//!
//! Each [`Stack`] gets its own SQLite file, key file and Redis key prefix (so tests run in
//! parallel against one Redis), its own bridge on a free port, and its own `wrangler dev`
//! child process (own port, `--persist-to` dir, secrets file) serving the bundle prebuilt by
//! `scripts/build-edge.sh`. The edge routes `/api/echo/*` to an [`EchoUpstream`] (an API of
//! the kind app developers put behind Tollgate) and everything else to the origin, which trusts
//! the edge's signed assertion. In front of each upstream sits a [`Tap`]: a recording
//! pass-through, so a test can tell what each upstream received — the assertion, and whether a
//! refused request ever got past the edge.
//!
//! Needs Redis at `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) and the edge toolchain
//! and bundle (`scripts/build-edge.sh`); without them the tests fail and say so.
//!
//! # Layout
//! - [`stack`]: [`Stack`], one test's services, plus the client helpers (register, login, …).
//! - [`edge`]: [`Edge`], a `wrangler dev` child process, killed with its process group on drop.
//! - [`bridge`]: [`BridgeHandle`], the REST bridge in-process, stoppable and restartable on
//!   its port.
//! - [`tap`]: [`Tap`], the recording pass-through in front of the origin.
//! - [`origin`]: [`Origin`], the origin in-process (several of them, on one PostgreSQL
//!   [`TestDatabase`] and one Redis, behind the origin tap as a round-robin balancer, with
//!   [`StackOptions::origins`]).
//! - [`postgres`]: [`TestDatabase`], a PostgreSQL database of the test's own.
//! - [`delay_proxy`]: [`DelayProxy`], a TCP link that adds latency (a primary and a replica in
//!   different regions).
//! - [`RedisServer`] (and its paused replicas), [`free_port`] and [`child_port`] come from `tollgate-testkit`, with the
//!   client calls [`Stack`] derefs to.
//! - [`upstream`]: [`EchoUpstream`], an API behind the edge using the `tollgate-upstream`
//!   extractor, and [`EdgeKeys`], the edge's assertion key pair.

pub mod bridge;
pub mod delay_proxy;
pub mod edge;
pub mod origin;
pub mod postgres;
pub mod stack;
pub mod tap;
pub mod upstream;

use std::path::PathBuf;

pub use bridge::BridgeHandle;
pub use delay_proxy::DelayProxy;
pub use edge::{Edge, EdgeConfig};
pub use origin::Origin;
pub use postgres::TestDatabase;
pub use stack::{Stack, StackOptions, Tokens};
pub use tap::{Seen, Tap};
pub use tollgate_testkit::{child_port, free_port, RedisServer};
pub use upstream::{EchoUpstream, EdgeKeys, ECHO};

/// The Redis every test shares (each under its own key prefix).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// `http://127.0.0.1:PORT` of a listener that accepts connections and never answers (each one is
/// held open for the rest of the test): an Upstash or upstream that hangs.
pub async fn black_hole() -> String {
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", hole.local_addr().expect("its address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket);
        }
    });
    url
}

/// Sends `request` as raw bytes to `127.0.0.1:port` and returns the answer's status, if any: for
/// requests an HTTP client would refuse to send or would normalise first (bad framing,
/// `%2e%2e` in a path).
pub fn raw_status(port: u16, request: &str) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace().nth(1)?.parse().ok()
}
