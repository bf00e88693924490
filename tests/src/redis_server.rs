//! A redis-server of a test's own, on a free port, for tests that stop, restart or flush Redis
//! without touching the one every other test shares.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private redis-server that keeps nothing on disk; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port; panics if `redis-server` is missing or does not come up.
    pub fn start() -> Self {
        let port = crate::free_port().expect("free port");
        let mut r = Self { port, child: None };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it if running and starts it again, empty, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        self.child = Some(
            Command::new("redis-server")
                .args([
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH"),
        );
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("private redis-server did not start");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
