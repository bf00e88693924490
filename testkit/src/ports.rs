//! Ports for test servers: any free one for an in-process listener, and one below the ephemeral
//! range for a child process.

use std::net::TcpListener;

/// A port that was free a moment ago (bind `:0`, read, release).
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A free port for a *child process* to bind (wrangler, redis-server), drawn below Linux's
/// ephemeral range (32768–60999). A port from [`free_port`] is released before the child binds
/// it, and in that gap the kernel may hand the same port to any in-process listener binding
/// `:0` (a tap, an upstream of a parallel test) — which then answers in the child's place. Ports
/// outside the ephemeral range are never handed out for `:0`, so only another child could take
/// one, and it would fail to bind rather than impersonate.
pub fn child_port() -> std::io::Result<u16> {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    for _ in 0..100 {
        let port = rng.gen_range(20_000..32_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free port in 20000..32000",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_ports_stay_below_the_ephemeral_range() {
        for _ in 0..20 {
            let port = child_port().expect("a free port");
            assert!((20_000..32_000).contains(&port), "{port}");
            TcpListener::bind(("127.0.0.1", port)).expect("still free");
        }
    }
}
