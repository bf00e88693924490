//! The machine the figures come from, and how busy it was while they were taken: the suite
//! shares two cores with whatever else runs, so every load figure carries the load average.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Hardware and software the run was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_total_gib: f64,
    pub kernel: String,
    pub rustc: String,
    pub wrk: String,
    pub redis_server: String,
}

/// Reads `/proc` and asks the tools for their versions.
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model,
        mem_total_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel: command_line("uname", &["-sr"]),
        rustc: command_line("rustc", &["--version"]),
        wrk: command_line("wrk", &["--version"]),
        redis_server: command_line("redis-server", &["--version"]),
    }
}

/// The 1-, 5- and 15-minute load averages right now.
pub fn load_avg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

/// CPU seconds (user + system) this process has used so far.
pub fn process_cpu_secs() -> f64 {
    stat_cpu("/proc/self/stat").total()
}

/// `CLK_TCK`: the unit of the CPU times in `/proc/*/stat`.
pub fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        command_line("getconf", &["CLK_TCK"])
            .parse()
            .unwrap_or(100.0)
    })
}

/// First line of a command's output (stdout, else stderr), or `unknown`.
fn command_line(cmd: &str, args: &[&str]) -> String {
    match std::process::Command::new(cmd).args(args).output() {
        Ok(out) => {
            let text = if out.stdout.is_empty() {
                out.stderr
            } else {
                out.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("unknown")
                .trim()
                .to_owned()
        }
        Err(_) => "unknown".into(),
    }
}

/// CPU seconds (user + system) process `pid` has used so far, all its threads (0 if it is gone).
pub fn cpu_secs_of(pid: u32) -> f64 {
    cpu_of(pid).total()
}

/// CPU seconds used so far, split: `user` is the process's own code (for workerd: V8, the
/// Worker's JS and wasm, the runtime's C++), `system` the kernel's work for it (mostly the
/// sockets), which varies with how requests batch into wakeups more than with what the Worker
/// does.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cpu {
    pub user: f64,
    pub system: f64,
}

impl Cpu {
    pub fn total(self) -> f64 {
        self.user + self.system
    }

    /// The same time in µs per request, over `requests` (at least one).
    pub fn micros_per(self, requests: u64) -> Self {
        let scale = 1e6 / requests.max(1) as f64;
        Self {
            user: self.user * scale,
            system: self.system * scale,
        }
    }
}

impl std::ops::Sub for Cpu {
    type Output = Self;
    fn sub(self, earlier: Self) -> Self {
        Self {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

impl std::iter::Sum for Cpu {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |a, b| Self {
            user: a.user + b.user,
            system: a.system + b.system,
        })
    }
}

/// [`cpu_secs_of`], split into user and system time.
pub fn cpu_of(pid: u32) -> Cpu {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// CPU seconds used so far by the live processes of process group `pgid` (for `wrangler dev`:
/// node, esbuild and workerd).
pub fn group_cpu(pgid: u32) -> Cpu {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Cpu::default();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let group = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2));
            group.and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
        })
        .map(cpu_of)
        .sum()
}

/// Thread ids of the async runtime's workers, registered by [`register_worker_thread`].
static WORKER_TIDS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Records the calling thread as an async worker. `tollgate-bench` calls it from the runtime's
/// `on_thread_unpark` hook, which only worker threads run (the blocking pool never parks that
/// way), so it is right however tokio hands out its threads.
pub fn register_worker_thread() {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if DONE.with(|d| d.replace(true)) {
        return;
    }
    if let (Some(tid), Ok(mut v)) = (current_tid(), WORKER_TIDS.lock()) {
        v.push(tid);
    }
}

/// The calling thread's id.
pub fn current_tid() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()?.parse().ok()))
}

/// Whether `tid` was registered as an async worker.
pub fn is_worker_thread(tid: u32) -> bool {
    WORKER_TIDS.lock().is_ok_and(|v| v.contains(&tid))
}

/// CPU seconds used so far by each of this process's threads, by thread id, with what the
/// thread does: `workers` (the async runtime's worker threads), `blocking` (the rest of the
/// runtime's threads: its blocking pool, where Argon2id runs), `sqlite` (sqlx's per-connection
/// SQLite threads) or `other`.
pub fn thread_cpu_secs() -> BTreeMap<u32, (&'static str, f64)> {
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in tasks.flatten() {
        let dir = t.path();
        let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let group = if is_worker_thread(tid) {
            "workers"
        } else if comm.starts_with(RUNTIME_THREAD) {
            "blocking"
        } else if comm.starts_with("sqlx-sqlite") {
            "sqlite"
        } else {
            "other"
        };
        out.insert(
            tid,
            (
                group,
                stat_cpu(&dir.join("stat").display().to_string()).total(),
            ),
        );
    }
    out
}

/// CPU seconds per thread group between two [`thread_cpu_secs`] readings. A thread that
/// exited in between is left out (its last share is lost; pools rarely retire threads mid-run).
pub fn thread_cpu_delta(
    before: &BTreeMap<u32, (&'static str, f64)>,
    after: &BTreeMap<u32, (&'static str, f64)>,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (tid, (group, secs)) in after {
        let start = before.get(tid).map_or(0.0, |(_, s)| *s);
        *out.entry((*group).to_owned()).or_insert(0.0) += secs - start;
    }
    out
}

/// The name `tollgate-bench` gives the runtime's threads.
pub const RUNTIME_THREAD: &str = "tg-runtime";

/// utime and stime of a `/proc/.../stat` file: the 12th and 13th fields after the command name.
fn stat_cpu(path: &str) -> Cpu {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Cpu {
        user: ticks(11) / clock_ticks_per_sec(),
        system: ticks(12) / clock_ticks_per_sec(),
    }
}
