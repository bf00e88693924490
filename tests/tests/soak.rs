//! A bounded soak with invariants: many users and devices doing random logins, refreshes,
//! protected calls and all four logouts concurrently — through the edge and directly at the
//! origin — while the bridge (Upstash) is taken down and brought back mid-run. A checker keeps a
//! model of which tokens must be alive and which must be dead, and counts as a violation:
//! - a token accepted after a logout (or rotation) that retired it had completed;
//! - a live token or session refused;
//! - any 5xx, except 503 at the edge while the bridge is down;
//! - a refresh chain that ended without a recorded reason, or is alive though logged out.
//!
//! Runs `TOLLGATE_SOAK_SECS` seconds (default 20, the CI mode; 60 or more by hand), prints the
//! requests served, outcomes by kind and violations, and fails on any violation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_tests::stack::PASSWORD;
use tollgate_tests::{Stack, StackOptions, Tokens};

const WORKERS: usize = 6;
const USERS_PER_WORKER: usize = 2;
const MAX_DEVICES: usize = 5;

#[derive(Debug, Clone)]
struct Hops {
    client: reqwest::Client,
    edge: String,
    origin: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hop {
    Edge,
    Origin,
}

impl Hops {
    fn url(&self, hop: Hop, path: &str) -> String {
        match hop {
            Hop::Edge => format!("{}{path}", self.edge),
            Hop::Origin => format!("{}{path}", self.origin),
        }
    }
}

/// When the bridge was down: edge requests overlapping it may answer 503.
#[derive(Debug, Default)]
struct Outage(Mutex<Option<(Instant, Option<Instant>)>>);

impl Outage {
    fn excuses(&self, hop: Hop, start: Instant, end: Instant) -> bool {
        let window = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        hop == Hop::Edge
            && window.is_some_and(|(down, up)| {
                // Connections workerd pooled before the restart may take a moment to recycle.
                let up = up.map_or(end, |u| u + Duration::from_secs(2));
                start <= up && end >= down
            })
    }
}

#[derive(Debug, Default)]
struct Tally {
    outcomes: Mutex<BTreeMap<String, u64>>,
    violations: Mutex<Vec<String>>,
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

#[derive(Debug)]
struct Device {
    tokens: Tokens,
    /// When the logout that killed this session completed.
    revoked_at: Option<Instant>,
    /// Access tokens retired by rotation, and when.
    retired: Vec<(String, Instant)>,
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
            .filter(|&i| self.devices[i].revoked_at.is_none())
            .collect()
    }
}

struct Worker {
    /// This worker's requests in order (its users act one step at a time).
    journal: Mutex<Vec<String>>,
    redis: redis::Client,
    prefix: String,
    hops: Hops,
    tally: Arc<Tally>,
    outage: Arc<Outage>,
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
}

impl Worker {
    fn hop(&mut self) -> Hop {
        if self.rng.gen_bool(0.6) {
            Hop::Edge
        } else {
            Hop::Origin
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
            .push(format!(
                "{method} {path} via {hop:?} -> {status} {}",
                body.to_string().get(..120).unwrap_or("")
            ));
        Answer {
            status,
            body,
            start,
            end: Instant::now(),
        }
    }

    /// The worker's last requests, for a violation's report.
    fn recent(&self) -> String {
        let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        j[j.len().saturating_sub(12)..].join("\n  ")
    }

    /// A status every action may see: 5xx is a violation unless the outage excuses it.
    fn server_error(&self, what: &str, hop: Hop, a: &Answer) -> bool {
        if !a.status.is_server_error() {
            return false;
        }
        if !(a.status == StatusCode::SERVICE_UNAVAILABLE
            && self.outage.excuses(hop, a.start, a.end))
        {
            self.tally
                .violation(format!("{what} via {hop:?}: {} {}", a.status, a.body));
        }
        true
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
        self.users[u].devices.push(Device {
            tokens,
            revoked_at: None,
            retired: Vec::new(),
        });
    }

    /// A protected call with a live, retired or revoked token, checked against the model.
    async fn call(&mut self, u: usize) {
        let user = &self.users[u];
        let d = self.rng.gen_range(0..user.devices.len());
        let device = &user.devices[d];
        let (access, dead_since) = if !device.retired.is_empty() && self.rng.gen_bool(0.2) {
            let (t, at) = &device.retired[self.rng.gen_range(0..device.retired.len())];
            (t.clone(), Some(*at))
        } else {
            (device.tokens.access.clone(), device.revoked_at)
        };
        let debug = format!(
            "user {} session {} jti {} history {:?}",
            user.id,
            device.tokens.token_id,
            device.tokens.jti,
            user.devices
                .iter()
                .map(|d| (
                    d.tokens.token_id.get(..8).unwrap_or(""),
                    d.revoked_at.is_some(),
                    d.retired.len()
                ))
                .collect::<Vec<_>>()
        );
        let path = if self.rng.gen_bool(0.8) {
            "/api/users/me"
        } else {
            "/api/users/sessions"
        };
        let hop = self.hop();
        let a = self.send(hop, "GET", path, Some(&access), None).await;
        self.tally.count("call", a.status);
        if self.server_error("call", hop, &a) {
            return;
        }
        match (a.status, dead_since) {
            (StatusCode::OK, Some(at)) if at <= a.start => self.tally.violation(format!(
                "revoked token accepted via {hop:?} {:?} after its logout completed",
                a.start - at
            )),
            (StatusCode::UNAUTHORIZED, None) => self.tally.violation(format!(
                "live token refused via {hop:?}: {} ({debug})\n  recent:\n  {}",
                a.body,
                self.recent()
            )),
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
        // A successful refresh must hand out a live token.
        if a.status == StatusCode::OK {
            let t = Tokens::from_body(&a.body);
            let mut c = self
                .redis
                .get_multiplexed_async_connection()
                .await
                .expect("redis");
            let rec: Option<String> = redis::cmd("GET")
                .arg(format!("{}token:jti:{}", self.prefix, t.jti))
                .query_async(&mut c)
                .await
                .expect("get");
            if rec.is_none() {
                self.tally
                    .violation(format!("refresh via {hop:?} answered a dead access token"));
            }
        }
        let device = &mut self.users[u].devices[d];
        match (a.status, device.revoked_at) {
            (StatusCode::OK, None) => {
                let old = std::mem::replace(&mut device.tokens, Tokens::from_body(&a.body));
                device.retired.push((old.access, a.end));
            }
            (StatusCode::OK, Some(_)) => self.tally.violation("revoked session refreshed".into()),
            (StatusCode::UNAUTHORIZED, Some(_)) => {}
            (status, _) => self
                .tally
                .violation(format!("live session refresh: {status} {}", a.body)),
        }
    }

    /// `path` revokes the sessions `victims` when it answers 200.
    async fn logout(&mut self, u: usize, by: usize, path: String, victims: Vec<usize>) {
        let hop = self.hop();
        let access = self.users[u].devices[by].tokens.access.clone();
        let a = self.send(hop, "POST", &path, Some(&access), None).await;
        self.tally.count("logout", a.status);
        if self.server_error("logout", hop, &a) {
            return;
        }
        if a.status == StatusCode::OK {
            for v in victims {
                let device = &mut self.users[u].devices[v];
                device.revoked_at.get_or_insert(a.end);
            }
        } else {
            self.tally
                .violation(format!("{path} by a live device: {} {}", a.status, a.body));
        }
    }

    /// Refresh and logout of one device at once: whatever the interleaving, once the logout has
    /// answered 200 no token of that session may work.
    async fn race(&mut self, u: usize, d: usize) {
        let (h1, h2) = (self.hop(), self.hop());
        let tokens = self.users[u].devices[d].tokens.clone();
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
        // A 5xx on one side (the logout refused at the edge while Upstash is down) says nothing
        // about the other, so each is judged on its own.
        let refresh_failed = self.server_error("race refresh", h1, &r);
        let logout_failed = self.server_error("race logout", h2, &l);
        let device = &mut self.users[u].devices[d];
        if r.status == StatusCode::OK {
            let old = std::mem::replace(&mut device.tokens, Tokens::from_body(&r.body));
            device.retired.push((old.access, r.end));
        }
        if l.status == StatusCode::OK {
            device.revoked_at = Some(l.end);
        }
        // The logout may have lost to the rotation (its token was retired first): then the
        // session lives on with the new token; otherwise everything of it must be dead.
        if !refresh_failed
            && !logout_failed
            && l.status != StatusCode::OK
            && r.status != StatusCode::OK
        {
            self.tally.violation(format!(
                "race: neither refresh ({}) nor logout ({}) succeeded",
                r.status, l.status
            ));
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
        if !self.server_error("idor", hop, &a) && a.status != StatusCode::NOT_FOUND {
            self.tally
                .violation(format!("cross-user logout answered {}", a.status));
        }
    }

    async fn replay_revoked_refresh(&mut self, u: usize) {
        let dead: Vec<usize> = (0..self.users[u].devices.len())
            .filter(|&i| self.users[u].devices[i].revoked_at.is_some())
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
            60..=66
                if self.users[u].devices.len() < MAX_DEVICES * 4 && live.len() < MAX_DEVICES =>
            {
                self.login(u).await
            }
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
            86..=90 => self.race(u, d).await,
            91..=94 => self.idor(u, d).await,
            95..=99 => self.replay_revoked_refresh(u).await,
            _ => self.call(u).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_never_accepts_a_revoked_token_and_never_fails_open() {
    let secs: u64 = std::env::var("TOLLGATE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut stack = Stack::start_with(StackOptions { tap: false }, |_| {}).await;
    let hops = Hops {
        client: stack.client.clone(),
        edge: stack.url(""),
        origin: stack.origin.base.clone(),
    };
    let tally = Arc::new(Tally::default());
    let outage = Arc::new(Outage::default());
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
                devices: vec![Device {
                    tokens: t,
                    revoked_at: None,
                    retired: Vec::new(),
                }],
            });
        }
        let mut worker = Worker {
            journal: Default::default(),
            redis: stack.redis.clone(),
            prefix: stack.origin.prefix.clone(),
            hops: hops.clone(),
            tally: tally.clone(),
            outage: outage.clone(),
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

    // Take Upstash (the bridge) away for two seconds a third of the way in.
    tokio::time::sleep(Duration::from_secs(secs / 3)).await;
    *outage.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), None));
    stack.bridge.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.bridge.restart().await.expect("bridge restarts");
    if let Some((_, up)) = outage.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        *up = Some(Instant::now());
    }

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
        assert_eq!(
            outcomes.len(),
            user.devices.len(),
            "every successful login made one session"
        );
        for device in &user.devices {
            let reason = outcomes
                .iter()
                .find(|(tid, _)| *tid == device.tokens.token_id)
                .map(|(_, r)| r.clone())
                .expect("session in the database");
            match (device.revoked_at, reason.as_deref()) {
                (None, None) => {}
                (Some(_), Some("logout" | "logout_all" | "logout_device")) => {}
                (model, db) => tally.violation(format!(
                    "session {}: model revoked={} database reason={db:?}",
                    device.tokens.token_id,
                    model.is_some()
                )),
            }
        }
    }

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
        "soak: {secs} s, {WORKERS} workers, {} users, {sessions} sessions, {steps} steps",
        users.len()
    );
    println!(
        "soak: requests served {served} ({:.0}/s)",
        served as f64 / started.elapsed().as_secs_f64()
    );
    for (kind, n) in &outcomes {
        println!("soak:   {kind:<20} {n}");
    }
    println!("soak: violations {}", violations.len());
    assert!(
        served > secs * 10,
        "the soak did too little work: {served} requests"
    );
    assert!(
        outcomes.keys().any(|k| k.starts_with("logout 200"))
            && outcomes.keys().any(|k| k.starts_with("refresh 200"))
    );
    assert!(
        violations.is_empty(),
        "{} violations, first: {}",
        violations.len(),
        violations[0]
    );
}
