//! A bounded soak with invariants: many users and devices doing random logins, refreshes,
//! protected calls and all four logouts concurrently — through the edge and directly at the
//! origin — while faults are injected: the Upstash bridge goes away and comes back, then Redis
//! itself is stopped and restarted empty (a flush). A checker keeps a model of which tokens must
//! be alive and which must be dead, and counts as a violation:
//! - a token accepted after a logout (or rotation) that retired it had completed;
//! - a live token or session refused, unless a fault that wiped Redis explains it;
//! - any 5xx other than a 503 while a fault is on (the edge's during the bridge outage, any hop's
//!   while Redis is down);
//! - a refresh answering a dead access token;
//! - a session whose database state disagrees with the model, or that ended without a recorded
//!   reason (a login cut short by the outage must be recorded as `login_incomplete`);
//! - at the edge, where the origin's own re-check would hide a lapse: a dead token (its logout
//!   or rotation completed before the call) that got past the edge — the recording tap between
//!   edge and origin sees every forwarded request, each marked with its own `x-soak-request` —
//!   and a protected call answered anything but 503 while the bridge was down (failing open).
//!
//! Runs `TOLLGATE_SOAK_SECS` seconds (default 20, the CI mode; 60 or more by hand, with
//! `--no-capture` to see the figures), against its own redis-server so the restart touches
//! nobody else. Prints requests served, outcomes by kind and violations; fails on any violation.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_testkit::RedisCluster;
use tollgate_tests::stack::PASSWORD;
use tollgate_tests::{RedisServer, Stack, StackOptions, Tokens};

const WORKERS: usize = 6;
const USERS_PER_WORKER: usize = 2;
const MAX_DEVICES: usize = 5;
/// How long after a fault ends its effects may still be seen (pooled connections recycling,
/// the origin's Redis connection reconnecting).
const SETTLE: Duration = Duration::from_secs(2);
/// Names each request sent to the edge, so the tap's record tells which ones reached the origin.
const MARKER: &str = "x-soak-request";

#[derive(Debug, Clone)]
struct Hops {
    client: reqwest::Client,
    edge: String,
    /// Every origin instance, called directly (the edge reaches them through the balancer).
    origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Edge,
    /// Directly at origin instance `n`.
    Origin(usize),
}

impl Hops {
    fn url(&self, hop: Hop, path: &str) -> String {
        match hop {
            Hop::Edge => format!("{}{path}", self.edge),
            Hop::Origin(n) => format!("{}{path}", self.origins[n % self.origins.len()]),
        }
    }
}

/// A fault's window: from when it began to when it ended (open while it lasts).
#[derive(Debug, Default)]
struct Window(Mutex<Option<(Instant, Option<Instant>)>>);

impl Window {
    fn open(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), None));
    }

    fn close(&self) {
        if let Some((_, end)) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            *end = Some(Instant::now());
        }
    }

    /// Whether `[start, end]` overlaps the fault (plus the settling time after it).
    fn overlaps(&self, start: Instant, end: Instant) -> bool {
        let window = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        window.is_some_and(|(down, up)| {
            let up = up.map_or(end, |u| u + SETTLE);
            start <= up && end >= down
        })
    }

    /// Whether `[start, end]` lies wholly inside the fault (no settling time: strictly while it
    /// lasted).
    fn contains(&self, start: Instant, end: Instant) -> bool {
        let window = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        window.is_some_and(|(down, up)| start >= down && up.is_none_or(|u| end <= u))
    }

    /// Whether a token issued at `issued` may have been wiped by this fault before `end`.
    fn wiped(&self, issued: Instant, end: Instant) -> bool {
        let window = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        window.is_some_and(|(down, up)| issued <= up.unwrap_or(end) && end >= down)
    }
}

#[derive(Debug, Default)]
struct Faults {
    /// The bridge (Upstash) is going away, down, or coming back: the edge fails closed on
    /// protected routes.
    bridge: Window,
    /// From the moment the bridge's port is closed to the moment it is reopened: every
    /// protected call at the edge must be a 503.
    bridge_down: Window,
    /// Redis is down, then back empty: every hop fails closed, then older tokens are gone.
    redis: Window,
}

#[derive(Debug, Default)]
struct Tally {
    outcomes: Mutex<BTreeMap<String, u64>>,
    violations: Mutex<Vec<String>>,
    /// Markers of edge calls carrying a token that was dead when sent: the tap must see none.
    dead_at_edge: Mutex<Vec<(String, String)>>,
    /// Markers of edge calls the edge answered 200: the tap must see every one (proof that the
    /// markers arrive, so an absent marker means the edge stopped the request).
    accepted_at_edge: Mutex<Vec<String>>,
}

impl Tally {
    fn count(&self, what: &str, status: StatusCode) {
        let mut o = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        *o.entry(format!("{what} {}", status.as_u16())).or_default() += 1;
    }

    fn violation(&self, message: String) {
        eprintln!("VIOLATION: {message}");
        self.violations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(message);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Live,
    /// The logout that killed the session completed at this instant.
    Revoked(Instant),
    /// A logout answered 503 while Redis was down: the database may have revoked the session
    /// and Redis not, so either outcome is right; the device is not used again.
    Uncertain,
}

#[derive(Debug)]
struct Device {
    tokens: Tokens,
    /// When the current access token was handed out.
    issued: Instant,
    state: State,
    /// Access tokens retired by rotation, and when.
    retired: Vec<(String, Instant)>,
    /// Revoked as a refresh-token reuse that the Redis restart explains (the grace window's
    /// kept answer was wiped): the one case where `refresh_reuse` is the right ending.
    reuse_excused: bool,
}

impl Device {
    fn new(tokens: Tokens, issued: Instant) -> Self {
        Self {
            tokens,
            issued,
            state: State::Live,
            retired: Vec::new(),
            reuse_excused: false,
        }
    }
}

#[derive(Debug)]
struct User {
    id: String,
    email: String,
    devices: Vec<Device>,
}

impl User {
    fn live(&self) -> Vec<usize> {
        (0..self.devices.len())
            .filter(|&i| self.devices[i].state == State::Live)
            .collect()
    }
}

struct Worker {
    id: usize,
    /// Requests this worker sent, for the markers.
    sent: AtomicU64,
    /// This worker's requests in order (its users act one step at a time).
    journal: Mutex<Vec<String>>,
    redis: Inspector,
    prefix: String,
    hops: Hops,
    tally: Arc<Tally>,
    faults: Arc<Faults>,
    /// Every session id in the run, for cross-user (IDOR) attempts.
    registry: Arc<Mutex<Vec<(String, String)>>>,
    rng: StdRng,
    users: Vec<User>,
}

struct Answer {
    status: StatusCode,
    body: Value,
    start: Instant,
    end: Instant,
    /// The request's `x-soak-request` (edge requests only).
    marker: Option<String>,
}

impl Worker {
    fn hop(&mut self) -> Hop {
        if self.rng.gen_bool(0.6) {
            Hop::Edge
        } else {
            Hop::Origin(self.rng.gen_range(0..self.hops.origins.len()))
        }
    }

    async fn send(
        &self,
        hop: Hop,
        method: &str,
        path: &str,
        access: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let url = self.hops.url(hop, path);
        let mut req = match method {
            "GET" => self.hops.client.get(url),
            _ => self.hops.client.post(url),
        };
        if let Some(a) = access {
            req = req.bearer_auth(a);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let marker = (hop == Hop::Edge).then(|| {
            let n = self.sent.fetch_add(1, Ordering::Relaxed);
            format!("{}-{n}", self.id)
        });
        if let Some(m) = &marker {
            req = req.header(MARKER, m);
        }
        let start = Instant::now();
        let (status, body) = match req.send().await {
            Ok(r) => {
                let status = r.status();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => {
                self.tally
                    .violation(format!("{method} {path} via {hop:?}: transport error {e}"));
                (StatusCode::BAD_GATEWAY, Value::Null)
            }
        };
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{method} {path} via {hop:?} -> {status}"));
        Answer {
            status,
            body,
            start,
            end: Instant::now(),
            marker,
        }
    }

    /// A protected call at the edge while the bridge was down must be refused with 503: the
    /// edge cannot know whether the token is revoked, and anything else is failing open (the
    /// origin's own check would otherwise hide it).
    fn check_fails_closed(&self, what: &str, hop: Hop, a: &Answer) {
        if hop == Hop::Edge
            && self.faults.bridge_down.contains(a.start, a.end)
            && a.status != StatusCode::SERVICE_UNAVAILABLE
        {
            self.tally.violation(format!(
                "{what} at the edge answered {} while the bridge was down: {}",
                a.status, a.body
            ));
        }
    }

    /// The worker's last requests, for a violation's report.
    fn recent(&self) -> String {
        let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        j[j.len().saturating_sub(12)..].join("\n  ")
    }

    /// Whether the answer is a 5xx (a violation unless a fault excuses it).
    fn server_error(&self, what: &str, hop: Hop, a: &Answer) -> bool {
        if !a.status.is_server_error() {
            return false;
        }
        let excused = a.status == StatusCode::SERVICE_UNAVAILABLE
            && ((hop == Hop::Edge && self.faults.bridge.overlaps(a.start, a.end))
                || self.faults.redis.overlaps(a.start, a.end));
        if !excused {
            self.tally
                .violation(format!("{what} via {hop:?}: {} {}", a.status, a.body));
        }
        true
    }

    /// Whether Redis restarting may have wiped a token issued at `issued`.
    fn wiped(&self, issued: Instant, a: &Answer) -> bool {
        self.faults.redis.wiped(issued, a.end)
    }

    async fn login(&mut self, u: usize) {
        let hop = self.hop();
        let body =
            json!({"email": self.users[u].email, "password": PASSWORD, "device_name": "soak"});
        let a = self
            .send(hop, "POST", "/api/users/login", None, Some(body))
            .await;
        self.tally.count("login", a.status);
        if self.server_error("login", hop, &a) {
            return;
        }
        if a.status != StatusCode::OK {
            self.tally
                .violation(format!("login refused: {} {}", a.status, a.body));
            return;
        }
        let tokens = Tokens::from_body(&a.body);
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.users[u].id.clone(), tokens.token_id.clone()));
        self.users[u].devices.push(Device::new(tokens, a.end));
    }

    /// A protected call with a live, retired or revoked token, checked against the model.
    async fn call(&mut self, u: usize) {
        let user = &self.users[u];
        let d = self.rng.gen_range(0..user.devices.len());
        let device = &user.devices[d];
        if device.state == State::Uncertain {
            return;
        }
        let (access, dead_since, issued) = if !device.retired.is_empty() && self.rng.gen_bool(0.2) {
            let (t, at) = &device.retired[self.rng.gen_range(0..device.retired.len())];
            (t.clone(), Some(*at), device.issued)
        } else {
            let dead = match device.state {
                State::Revoked(at) => Some(at),
                _ => None,
            };
            (device.tokens.access.clone(), dead, device.issued)
        };
        let path = if self.rng.gen_bool(0.8) {
            "/api/users/me"
        } else {
            "/api/users/sessions"
        };
        let hop = self.hop();
        let a = self.send(hop, "GET", path, Some(&access), None).await;
        self.tally.count("call", a.status);
        self.check_fails_closed("call", hop, &a);
        if let Some(marker) = &a.marker {
            // `dead_since` is in the past: the token was dead before this call was sent.
            if dead_since.is_some() {
                self.tally
                    .dead_at_edge
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((marker.clone(), format!("GET {path} with a dead token")));
            } else if a.status == StatusCode::OK {
                self.tally
                    .accepted_at_edge
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(marker.clone());
            }
        }
        if self.server_error("call", hop, &a) {
            return;
        }
        match (a.status, dead_since) {
            (StatusCode::OK, Some(at)) if at <= a.start => self.tally.violation(format!(
                "revoked token accepted via {hop:?} {:?} after its logout completed",
                a.start - at
            )),
            (StatusCode::UNAUTHORIZED, None) if !self.wiped(issued, &a) => {
                self.tally.violation(format!(
                    "live token refused via {hop:?}: {}\n  recent:\n  {}",
                    a.body,
                    self.recent()
                ))
            }
            (StatusCode::OK | StatusCode::UNAUTHORIZED, _) => {}
            (other, _) => self
                .tally
                .violation(format!("call via {hop:?}: unexpected {other}")),
        }
    }

    async fn refresh(&mut self, u: usize, d: usize) {
        let hop = self.hop();
        let refresh = self.users[u].devices[d].tokens.refresh.clone();
        let a = self
            .send(
                hop,
                "POST",
                "/api/users/refresh",
                None,
                Some(json!({"refresh_token": refresh})),
            )
            .await;
        self.tally.count("refresh", a.status);
        if self.server_error("refresh", hop, &a) {
            return;
        }
        if a.status == StatusCode::OK {
            self.check_live(&Tokens::from_body(&a.body), hop, &a).await;
        }
        let device = &mut self.users[u].devices[d];
        match (a.status, device.state) {
            (StatusCode::OK, State::Live) => {
                let old = std::mem::replace(&mut device.tokens, Tokens::from_body(&a.body));
                device.retired.push((old.access, a.end));
                device.issued = a.end;
            }
            (StatusCode::OK, _) => self.tally.violation("revoked session refreshed".into()),
            (StatusCode::UNAUTHORIZED, State::Revoked(_)) => {}
            (status, _) => self
                .tally
                .violation(format!("live session refresh: {status} {}", a.body)),
        }
    }

    /// A successful refresh must hand out a token that is live right now.
    async fn check_live(&self, tokens: &Tokens, hop: Hop, a: &Answer) {
        let user = tollgate_shared::KeySchema::new(self.prefix.clone()).user(&tokens.user_id());
        let record = self
            .redis
            .hget(&user, &tollgate_shared::keys::field::jti(&tokens.jti))
            .await;
        if matches!(record, Ok(None)) && !self.faults.redis.overlaps(a.start, Instant::now()) {
            self.tally
                .violation(format!("refresh via {hop:?} answered a dead access token"));
        }
    }

    /// `path`, called with device `by`'s token, revokes the sessions `victims` when it answers
    /// 200.
    async fn logout(&mut self, u: usize, by: usize, path: String, victims: Vec<usize>) {
        let hop = self.hop();
        let access = self.users[u].devices[by].tokens.access.clone();
        let issued = self.users[u].devices[by].issued;
        let a = self.send(hop, "POST", &path, Some(&access), None).await;
        self.tally.count("logout", a.status);
        self.check_fails_closed("logout", hop, &a);
        if self.server_error("logout", hop, &a) {
            // Refused at the edge for want of Upstash, nothing happened; failed at the origin
            // for want of Redis, the database may already have revoked: either is right.
            if self.faults.redis.overlaps(a.start, a.end) {
                for v in victims {
                    let device = &mut self.users[u].devices[v];
                    if device.state == State::Live {
                        device.state = State::Uncertain;
                    }
                }
            }
            return;
        }
        match a.status {
            StatusCode::OK => {
                for v in victims {
                    let device = &mut self.users[u].devices[v];
                    if device.state == State::Live {
                        device.state = State::Revoked(a.end);
                    }
                }
            }
            // The caller's own token was wiped by the Redis restart.
            StatusCode::UNAUTHORIZED if self.wiped(issued, &a) => {}
            // The target's token was wiped, so its jti names no live token.
            StatusCode::NOT_FOUND
                if path.contains("-jti/")
                    && self
                        .faults
                        .redis
                        .wiped(self.users[u].devices[victims[0]].issued, a.end) => {}
            _ => self.tally.violation(format!(
                "{path} by a live device: {} {}\n  recent:\n  {}",
                a.status,
                a.body,
                self.recent()
            )),
        }
    }

    /// Refresh and logout of one device at once: whatever the interleaving, once the logout has
    /// answered 200 no token of that session may work.
    async fn race(&mut self, u: usize, d: usize) {
        let (h1, h2) = (self.hop(), self.hop());
        let tokens = self.users[u].devices[d].tokens.clone();
        let issued = self.users[u].devices[d].issued;
        let (r, l) = tokio::join!(
            self.send(
                h1,
                "POST",
                "/api/users/refresh",
                None,
                Some(json!({"refresh_token": tokens.refresh}))
            ),
            self.send(h2, "POST", "/api/users/logout", Some(&tokens.access), None),
        );
        self.tally.count("race-refresh", r.status);
        self.tally.count("race-logout", l.status);
        self.check_fails_closed("race logout", h2, &l);
        // A 5xx on one side (the logout refused at the edge while Upstash is down) says nothing
        // about the other, so each is judged on its own.
        let refresh_failed = self.server_error("race refresh", h1, &r);
        let logout_failed = self.server_error("race logout", h2, &l);
        let redis_fault = self.faults.redis.overlaps(l.start, l.end);
        let device = &mut self.users[u].devices[d];
        if r.status == StatusCode::OK {
            let old = std::mem::replace(&mut device.tokens, Tokens::from_body(&r.body));
            device.retired.push((old.access, r.end));
            device.issued = r.end;
        }
        if l.status == StatusCode::OK {
            device.state = State::Revoked(l.end);
        } else if logout_failed && redis_fault {
            device.state = State::Uncertain;
        }
        // The logout may have lost to the rotation (its token was retired first): then the
        // session lives on with the new token; otherwise everything of it must be dead.
        if !refresh_failed
            && !logout_failed
            && l.status != StatusCode::OK
            && r.status != StatusCode::OK
            && !self.faults.redis.wiped(issued, l.end)
        {
            self.tally.violation(format!(
                "race: neither refresh ({}) nor logout ({}) succeeded",
                r.status, l.status
            ));
        }
    }

    /// Two refreshes of one refresh token at once, on two different origin instances (the same
    /// one when there is only one): rotation is decided under the session's row lock, so one
    /// rotates and the other, inside the grace window, gets the very same answer. Two different
    /// successors would fork the chain; a reuse-detection logout would be a spurious one.
    async fn double_refresh(&mut self, u: usize, d: usize) {
        let refresh = self.users[u].devices[d].tokens.refresh.clone();
        let issued = self.users[u].devices[d].issued;
        let body = json!({"refresh_token": refresh});
        let (a, b) = tokio::join!(
            self.send(
                Hop::Origin(0),
                "POST",
                "/api/users/refresh",
                None,
                Some(body.clone())
            ),
            self.send(
                Hop::Origin(1),
                "POST",
                "/api/users/refresh",
                None,
                Some(body)
            ),
        );
        let mut winner: Option<Tokens> = None;
        let mut end = a.end;
        for (n, x) in [(0, &a), (1, &b)] {
            self.tally.count("double-refresh", x.status);
            end = end.max(x.end);
            if self.server_error("double refresh", Hop::Origin(n), x) {
                continue;
            }
            match x.status {
                StatusCode::OK => {
                    let tokens = Tokens::from_body(&x.body);
                    match &winner {
                        Some(w) if w.refresh != tokens.refresh || w.access != tokens.access => {
                            self.tally.violation(format!(
                                "two live successors of one refresh token (instances 0 and 1)\n  \
                                 recent:\n  {}",
                                self.recent()
                            ));
                        }
                        _ => winner = Some(tokens),
                    }
                }
                StatusCode::UNAUTHORIZED
                    if x.body["error"]["code"] == "refresh_token_reused"
                        && self.faults.redis.wiped(issued, x.end) =>
                {
                    let device = &mut self.users[u].devices[d];
                    device.reuse_excused = true;
                    if device.state == State::Live {
                        device.state = State::Revoked(x.end);
                    }
                }
                other => self.tally.violation(format!(
                    "concurrent refresh on instance {n}: {other} {}\n  recent:\n  {}",
                    x.body,
                    self.recent()
                )),
            }
        }
        if let Some(tokens) = winner {
            let at = if a.status == StatusCode::OK { &a } else { &b };
            self.check_live(&tokens, Hop::Origin(0), at).await;
            let device = &mut self.users[u].devices[d];
            if device.state == State::Live {
                let old = std::mem::replace(&mut device.tokens, tokens);
                device.retired.push((old.access, end));
                device.issued = end;
            }
        }
    }

    async fn idor(&mut self, u: usize, by: usize) {
        let victim = {
            let reg = self.registry.lock().unwrap_or_else(|e| e.into_inner());
            let others: Vec<&(String, String)> = reg
                .iter()
                .filter(|(uid, _)| *uid != self.users[u].id)
                .collect();
            if others.is_empty() {
                return;
            }
            others[self.rng.gen_range(0..others.len())].1.clone()
        };
        let hop = self.hop();
        let access = self.users[u].devices[by].tokens.access.clone();
        let issued = self.users[u].devices[by].issued;
        let a = self
            .send(
                hop,
                "POST",
                &format!("/api/users/logout-device/{victim}"),
                Some(&access),
                None,
            )
            .await;
        self.tally.count("idor", a.status);
        self.check_fails_closed("idor", hop, &a);
        let own_token_wiped = a.status == StatusCode::UNAUTHORIZED && self.wiped(issued, &a);
        if !self.server_error("idor", hop, &a)
            && a.status != StatusCode::NOT_FOUND
            && !own_token_wiped
        {
            self.tally
                .violation(format!("cross-user logout answered {}", a.status));
        }
    }

    async fn replay_revoked_refresh(&mut self, u: usize) {
        let dead: Vec<usize> = (0..self.users[u].devices.len())
            .filter(|&i| matches!(self.users[u].devices[i].state, State::Revoked(_)))
            .collect();
        if dead.is_empty() {
            return;
        }
        let d = dead[self.rng.gen_range(0..dead.len())];
        let refresh = self.users[u].devices[d].tokens.refresh.clone();
        let hop = self.hop();
        let a = self
            .send(
                hop,
                "POST",
                "/api/users/refresh",
                None,
                Some(json!({"refresh_token": refresh})),
            )
            .await;
        self.tally.count("replay", a.status);
        if !self.server_error("replay", hop, &a) && a.status != StatusCode::UNAUTHORIZED {
            self.tally.violation(format!(
                "refresh of a revoked session answered {}",
                a.status
            ));
        }
    }

    async fn step(&mut self, u: usize) {
        let live = self.users[u].live();
        if live.is_empty() {
            return self.login(u).await;
        }
        let d = live[self.rng.gen_range(0..live.len())];
        let other = live[self.rng.gen_range(0..live.len())];
        match self.rng.gen_range(0..100) {
            0..=44 => self.call(u).await,
            45..=59 => self.refresh(u, d).await,
            60..=66 if live.len() < MAX_DEVICES => self.login(u).await,
            67..=72 => self.logout(u, d, "/api/users/logout".into(), vec![d]).await,
            73..=77 => {
                let jti = self.users[u].devices[other].tokens.jti.clone();
                self.logout(
                    u,
                    d,
                    format!("/api/users/logout-device-jti/{jti}"),
                    vec![other],
                )
                .await
            }
            78..=82 => {
                let tid = self.users[u].devices[other].tokens.token_id.clone();
                self.logout(u, d, format!("/api/users/logout-device/{tid}"), vec![other])
                    .await
            }
            83..=85 => {
                let all = (0..self.users[u].devices.len()).collect();
                self.logout(u, d, "/api/users/logout-all".into(), all).await
            }
            86..=88 => self.race(u, d).await,
            89..=90 => self.double_refresh(u, d).await,
            91..=94 => self.idor(u, d).await,
            95..=99 => self.replay_revoked_refresh(u).await,
            _ => self.call(u).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_never_accepts_a_revoked_token_and_never_fails_open() {
    soak(1, Redis::Node(RedisServer::start())).await;
}

/// The same soak on a real three-master Redis Cluster, origin and bridge both on it; the Redis
/// fault is one master dying for two seconds and coming back empty (its users fail closed
/// meanwhile, the others carry on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_a_redis_cluster_with_a_master_restarted_mid_run() {
    let cluster = RedisCluster::start(3, 0).await.expect("cluster");
    soak(1, Redis::Cluster(cluster)).await;
}

/// The same soak through two origin instances on one PostgreSQL and one Redis: the edge reaches
/// them through a round-robin balancer, direct calls pick one at random, and each concurrent
/// double refresh lands on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_through_two_origin_instances_never_accepts_a_revoked_token_or_forks_a_chain() {
    soak(2, Redis::Node(RedisServer::start())).await;
}

/// What the soak runs on, and how it fails mid-run.
enum Redis {
    Node(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    fn url(&self) -> String {
        match self {
            Self::Node(server) => server.url(),
            Self::Cluster(cluster) => cluster.cluster_url(),
        }
    }

    fn inspector(&self) -> Inspector {
        match self {
            Self::Node(server) => {
                Inspector::Node(redis::Client::open(server.url()).expect("redis client"))
            }
            Self::Cluster(cluster) => Inspector::Cluster(
                redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client"),
            ),
        }
    }

    /// Stops Redis (the one server, or the first master) for `down`; it comes back empty.
    async fn outage(&mut self, down: Duration) {
        match self {
            Self::Node(server) => {
                server.stop();
                tokio::time::sleep(down).await;
                server.restart();
            }
            Self::Cluster(cluster) => {
                cluster.kill_master(0);
                tokio::time::sleep(down).await;
                cluster.restart_master(0).await.expect("master restarts");
            }
        }
    }
}

/// Reads Redis behind the hops' backs, on a node or across a cluster.
#[derive(Clone)]
enum Inspector {
    Node(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

impl Inspector {
    async fn hget(&self, key: &str, field: &str) -> redis::RedisResult<Option<String>> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(key).arg(field);
        match self {
            Self::Node(client) => {
                let mut c = client.get_multiplexed_async_connection().await?;
                cmd.query_async(&mut c).await
            }
            Self::Cluster(client) => {
                let mut c = client.get_async_connection().await?;
                cmd.query_async(&mut c).await
            }
        }
    }
}

async fn soak(origins: usize, mut redis: Redis) {
    let secs: u64 = std::env::var("TOLLGATE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .max(9);
    // The harness reads the Redis URL from the environment; this process is this test's alone
    // (nextest runs each test in its own process).
    std::env::set_var("TEST_REDIS_URL", redis.url());
    let inspector = redis.inspector();
    // With the taps: the only way to tell what the edge let through to an upstream.
    let options = StackOptions {
        origins,
        ..StackOptions::default()
    };
    let mut stack = Stack::start_with(options, |_| {}).await;
    let hops = Hops {
        client: stack.client.clone(),
        edge: stack.url(""),
        origins: std::iter::once(&stack.origin)
            .chain(&stack.more_origins)
            .map(|o| o.base.clone())
            .collect(),
    };
    let tally = Arc::new(Tally::default());
    let faults = Arc::new(Faults::default());
    let registry = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let mut users = Vec::new();
        for _ in 0..USERS_PER_WORKER {
            let email = stack.new_user().await;
            let t = stack.login(&email, "first").await;
            let (_, me) = stack.me(&t.access).await;
            let id = me["data"]["id"].as_str().expect("user id").to_owned();
            registry
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id.clone(), t.token_id.clone()));
            users.push(User {
                id,
                email,
                devices: vec![Device::new(t, Instant::now())],
            });
        }
        let mut worker = Worker {
            id: w,
            sent: AtomicU64::new(0),
            journal: Mutex::default(),
            redis: inspector.clone(),
            prefix: stack.origin.prefix.clone(),
            hops: hops.clone(),
            tally: tally.clone(),
            faults: faults.clone(),
            registry: registry.clone(),
            rng: StdRng::seed_from_u64(0x5eed + w as u64),
            users,
        };
        workers.push(tokio::spawn(async move {
            let mut steps = 0u64;
            while Instant::now() < deadline {
                let u = worker.rng.gen_range(0..worker.users.len());
                worker.step(u).await;
                steps += 1;
            }
            (worker.users, steps)
        }));
    }

    // A third of the way in, Upstash (the bridge) goes away for two seconds.
    tokio::time::sleep(Duration::from_secs(secs / 3)).await;
    faults.bridge.open();
    stack.bridge.stop().await;
    faults.bridge_down.open();
    tokio::time::sleep(Duration::from_secs(2)).await;
    faults.bridge_down.close();
    stack.bridge.restart().await.expect("bridge restarts");
    faults.bridge.close();
    // Two thirds of the way in, Redis itself stops for two seconds and comes back empty.
    tokio::time::sleep(Duration::from_secs(secs / 3).saturating_sub(Duration::from_secs(2))).await;
    faults.redis.open();
    redis.outage(Duration::from_secs(2)).await;
    faults.redis.close();

    let mut users = Vec::new();
    let mut steps = 0;
    for w in workers {
        let (u, s) = w.await.expect("worker finished");
        users.extend(u);
        steps += s;
    }

    // Every chain is alive exactly when the model says so, and ended for a recorded reason.
    let db = &stack.origin.state.db;
    let mut sessions = 0;
    for user in &users {
        let outcomes = db.session_outcomes(&user.id).await.expect("sessions");
        sessions += outcomes.len();
        for (token_id, reason) in &outcomes {
            let device = user.devices.iter().find(|d| d.tokens.token_id == *token_id);
            match (device.map(|d| d.state), reason.as_deref()) {
                (Some(State::Live), None) => {}
                (Some(State::Revoked(_)), Some("logout" | "logout_all" | "logout_device")) => {}
                (Some(State::Revoked(_)), Some("refresh_reuse"))
                    if device.is_some_and(|d| d.reuse_excused) => {}
                (
                    Some(State::Uncertain),
                    None | Some("logout" | "logout_all" | "logout_device"),
                ) => {}
                // A login the Redis outage cut short, recorded as such and never handed out.
                (None, Some("login_incomplete")) => {}
                (model, db) => tally.violation(format!(
                    "session {token_id}: model {model:?}, database reason {db:?}"
                )),
            }
        }
        for device in &user.devices {
            if !outcomes.iter().any(|(t, _)| *t == device.tokens.token_id) {
                tally.violation(format!(
                    "session {} missing from the database",
                    device.tokens.token_id
                ));
            }
        }
    }

    // What got past the edge: a dead token must never have; every accepted call must have (so
    // the markers do arrive and their absence means something).
    let forwarded: HashSet<String> = stack
        .tap()
        .seen()
        .iter()
        .flat_map(|seen| seen.values(MARKER).into_iter().map(str::to_owned))
        .collect();
    let dead_at_edge = tally
        .dead_at_edge
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let accepted_at_edge = tally
        .accepted_at_edge
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for (marker, what) in &dead_at_edge {
        if forwarded.contains(marker) {
            tally.violation(format!("{what} got past the edge to the origin ({marker})"));
        }
    }
    let unseen = accepted_at_edge
        .iter()
        .filter(|m| !forwarded.contains(*m))
        .count();
    assert_eq!(unseen, 0, "edge calls answered 200 that the tap never saw");

    let outcomes = tally
        .outcomes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let violations = tally
        .violations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let served: u64 = outcomes.values().sum();
    println!(
        "soak: {secs} s, {origins} origin instance(s), {WORKERS} workers, {} users, {sessions} \
         sessions, {steps} steps",
        users.len()
    );
    println!(
        "soak: requests served {served} ({:.0}/s)",
        served as f64 / started.elapsed().as_secs_f64()
    );
    for (kind, n) in &outcomes {
        println!("soak:   {kind:<20} {n}");
    }
    println!(
        "soak: dead tokens sent to the edge {}, edge calls accepted {}",
        dead_at_edge.len(),
        accepted_at_edge.len()
    );
    println!("soak: violations {}", violations.len());
    assert!(
        served > secs * 10,
        "the soak did too little work: {served} requests"
    );
    assert!(
        !dead_at_edge.is_empty() && !accepted_at_edge.is_empty(),
        "the edge checks saw no dead or no accepted token"
    );
    for expected in [
        "logout 200",
        "refresh 200",
        "call 503",
        "double-refresh 200",
    ] {
        assert!(
            outcomes.contains_key(expected),
            "no `{expected}` in the run: {outcomes:?}"
        );
    }
    assert!(
        violations.is_empty(),
        "{} violations, first: {}",
        violations.len(),
        violations[0]
    );
}
