//! `deploy/entrypoint.sh`, the container's entrypoint (Dockerfile), run for real against each
//! database: it migrates an empty database before anything listens, then becomes the origin
//! (`exec`, so the orchestrator's SIGTERM reaches it), and its `healthcheck` tracks `/ready`.
//! And the origin reaches a TLS-only Redis (`rediss://`, as Upstash's) through its trust store.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tollgate_testkit::ApiClient;

use crate::both_backends;
use crate::helpers::{Backend, DbGuard, RedisProcess};

both_backends!(
    entrypoint_migrates_an_empty_database_then_serves_and_stops_on_sigterm,
    entrypoint_healthcheck_follows_ready_when_redis_goes_down,
    entrypoint_stops_before_listening_when_migration_fails,
);

fn entrypoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/entrypoint.sh")
}

/// The entrypoint with `args` and a clean environment: the database, Redis and the port, as a
/// container would get them.
struct Run {
    port: u16,
    dir: PathBuf,
    db_url: String,
    redis_url: String,
    /// More environment, on top of the clean one.
    extra: Vec<(String, String)>,
}

impl Run {
    fn new(db_url: &str, redis_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = std::env::temp_dir().join(format!(
            "tollgate-entrypoint-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self {
            port,
            dir,
            db_url: db_url.to_owned(),
            redis_url: redis_url.to_owned(),
            extra: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(entrypoint());
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TOLLGATE_ORIGIN_BIN", env!("CARGO_BIN_EXE_tollgate-origin"))
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .env("DATABASE_URL", &self.db_url)
            .env("REDIS_URL", &self.redis_url)
            .env(
                "REDIS_KEY_PREFIX",
                format!("entry-{}:", uuid::Uuid::new_v4().simple()),
            )
            .env("REDIS_TIMEOUT_MS", "300")
            .env("KEYS_FILE", self.dir.join("keys.json"))
            .env("CLEANUP_INTERVAL_SECS", "0")
            .envs(self.extra.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir);
        cmd
    }

    fn start(&self) -> Child {
        self.command(&[])
            .stdout(std::fs::File::create(self.dir.join("stdout")).expect("stdout file"))
            .stderr(std::fs::File::create(self.dir.join("stderr")).expect("stderr file"))
            .spawn()
            .expect("entrypoint starts")
    }

    fn healthcheck(&self) -> Output {
        self.command(&["healthcheck"])
            .output()
            .expect("healthcheck runs")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    /// Waits up to 20 s for `/ready` to answer `want`.
    async fn wait_ready(&self, want: StatusCode) -> bool {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = client.get(self.url("/ready")).send().await {
                if r.status() == want {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits up to `secs` for the child to exit.
fn wait_exit(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

async fn entrypoint_migrates_an_empty_database_then_serves_and_stops_on_sigterm(b: Backend) {
    let db = DbGuard::create(b, &uuid::Uuid::new_v4().simple().to_string()).await;
    let run = Run::new(&db.url, &crate::helpers::redis_url());
    let mut child = run.start();
    assert!(
        run.wait_ready(StatusCode::OK).await,
        "never ready; stderr: {}",
        std::fs::read_to_string(run.dir.join("stderr")).unwrap_or_default()
    );
    // The explicit migration step ran (and printed) before serve.
    assert!(
        run.stdout().contains("migrations applied"),
        "{}",
        run.stdout()
    );
    let health = run.healthcheck();
    assert!(health.status.success(), "{health:?}");

    // The migrated schema works: a user can register and log in.
    let client = reqwest::Client::new();
    let api = ApiClient::new(run.url(""), client.clone());
    api.login(&api.new_user().await, "entrypoint").await;

    // The entrypoint's pid *is* the origin (exec): SIGTERM to it shuts the service down, and no
    // orphaned server keeps the port.
    sigterm(&child);
    let status = wait_exit(&mut child, 15).expect("origin stops within 15 s of SIGTERM");
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    assert!(client.get(run.url("/health")).send().await.is_err());
    let health = run.healthcheck();
    assert!(!health.status.success());
    assert!(
        String::from_utf8_lossy(&health.stderr).contains("no answer"),
        "{health:?}"
    );
}

async fn entrypoint_healthcheck_follows_ready_when_redis_goes_down(b: Backend) {
    let db = DbGuard::create(b, &uuid::Uuid::new_v4().simple().to_string()).await;
    let mut redis = RedisProcess::start();
    let run = Run::new(&db.url, &redis.url());
    let mut child = run.start();
    assert!(run.wait_ready(StatusCode::OK).await, "never ready");
    assert!(run.healthcheck().status.success());

    redis.stop();
    assert!(run.wait_ready(StatusCode::SERVICE_UNAVAILABLE).await);
    let health = run.healthcheck();
    assert!(!health.status.success(), "{health:?}");
    assert!(
        String::from_utf8_lossy(&health.stderr).contains(" 503 "),
        "{health:?}"
    );

    redis.restart();
    assert!(run.wait_ready(StatusCode::OK).await, "never recovered");
    assert!(run.healthcheck().status.success());
    let _ = child.kill();
    let _ = child.wait();
}

async fn entrypoint_stops_before_listening_when_migration_fails(b: Backend) {
    // A database the migration cannot open: a PostgreSQL database that does not exist, a
    // SQLite file in a directory that does not exist.
    let db_url = match b {
        Backend::Sqlite => "sqlite:///nonexistent-dir-tollgate/x.db?mode=rwc".to_owned(),
        Backend::Postgres => {
            let admin = crate::helpers::postgres_admin_url();
            let server = admin.rsplit_once('/').map_or(admin.as_str(), |(s, _)| s);
            format!(
                "{server}/tollgate_missing_{}",
                uuid::Uuid::new_v4().simple()
            )
        }
    };
    let run = Run::new(&db_url, &crate::helpers::redis_url());
    let mut child = run.start();
    let status = wait_exit(&mut child, 20).expect("the entrypoint exits");
    assert!(!status.success());
    assert!(!run.stdout().contains("migrations applied"));
    let stderr = std::fs::read_to_string(run.dir.join("stderr")).unwrap_or_default();
    assert!(stderr.contains("error"), "{stderr}");
    assert!(reqwest::get(run.url("/health")).await.is_err());
}

/// Upstash's Redis endpoint is TLS only (`rediss://`): the origin connects over TLS and checks
/// the server's certificate against the system's trust store — here a private CA, handed to it
/// with `SSL_CERT_FILE` — and refuses a server its trust store does not vouch for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_serves_over_rediss_and_refuses_an_untrusted_redis_certificate() {
    let tls = TlsRedis::start();
    let db = DbGuard::create(Backend::Sqlite, &uuid::Uuid::new_v4().simple().to_string()).await;
    let mut run = Run::new(&db.url, &format!("rediss://localhost:{}", tls.port));
    run.extra.push((
        "SSL_CERT_FILE".into(),
        tls.dir.join("ca.pem").display().to_string(),
    ));
    // A TLS handshake in a debug build on a busy machine can take longer than the usual 300 ms.
    run.extra.push(("REDIS_TIMEOUT_MS".into(), "5000".into()));
    let mut child = run.start();
    assert!(
        run.wait_ready(StatusCode::OK).await,
        "never ready over TLS; stderr: {}",
        std::fs::read_to_string(run.dir.join("stderr")).unwrap_or_default()
    );
    // A login writes to Redis over TLS (the login helper asserts its 200).
    let api = ApiClient::new(run.url(""), reqwest::Client::new());
    api.login(&api.new_user().await, "tls").await;
    let _ = child.kill();
    let _ = child.wait();

    // The same server, without the CA in the trust store: refused for its certificate (the
    // origin retries for a while, then exits), and nothing listens meanwhile.
    let db = DbGuard::create(Backend::Sqlite, &uuid::Uuid::new_v4().simple().to_string()).await;
    let mut run = Run::new(&db.url, &format!("rediss://localhost:{}", tls.port));
    let empty = run.dir.join("no-ca.pem");
    std::fs::write(&empty, "").expect("empty trust store");
    run.extra
        .push(("SSL_CERT_FILE".into(), empty.display().to_string()));
    run.extra.push(("REDIS_TIMEOUT_MS".into(), "5000".into()));
    let mut child = run.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stderr = loop {
        let stderr = std::fs::read_to_string(run.dir.join("stderr")).unwrap_or_default();
        if stderr.contains("invalid peer certificate") || Instant::now() > deadline {
            break stderr;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );
    assert!(reqwest::get(run.url("/health")).await.is_err());
    let _ = child.kill();
    let _ = child.wait();
}

/// A private redis-server speaking TLS only, with a certificate for `localhost` from a CA made
/// for it (by `openssl`), in its own directory.
struct TlsRedis {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl TlsRedis {
    fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("tollgate-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=tollgate-test-ca",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "redis.key",
                    "-out",
                    "redis.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(dir.join("ext"), "subjectAltName=DNS:localhost\n").expect("ext file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "redis.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "redis.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                "redis.pem",
                "--tls-key-file",
                "redis.key",
            ])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "TLS redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, dir, child }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
