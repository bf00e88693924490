//! A TCP pass-through that delays every byte by a set time in each direction: the network
//! between a Redis primary and a replica in another region, on loopback.
//!
//! Each direction is a delay line: a reader stamps every chunk with `now + delay` and a writer
//! sends it at that instant, in order, so the link adds latency without limiting bandwidth (as
//! a long fat pipe does). The delay can be changed while connections are open; chunks already
//! stamped keep theirs, and order is kept either way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A running delay proxy to `127.0.0.1:target`; stops accepting on drop.
#[derive(Debug)]
pub struct DelayProxy {
    pub port: u16,
    delay_ms: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port and relays each connection to `target`, `delay` late in
    /// both directions.
    pub async fn start(target: u16, delay: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("Failed to bind the delay proxy")?;
        let port = listener.local_addr()?.port();
        let delay_ms = Arc::new(AtomicU64::new(millis(delay)));
        let shared = delay_ms.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let delay = shared.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    tokio::join!(delay_line(ri, wo, delay.clone()), delay_line(ro, wi, delay));
                });
            }
        });
        Ok(Self {
            port,
            delay_ms,
            accept,
        })
    }

    /// The one-way delay from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(millis(delay), Ordering::Relaxed);
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Copies `from` to `to`, each chunk `delay` after it was read. Ends when either side closes.
async fn delay_line(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<AtomicU64>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + Duration::from_millis(delay.load(Ordering::Relaxed));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
