//! `tollgate-bench origin | workerd | report`: the parts `scripts/bench.sh` runs in turn (the
//! edge Worker under raw workerd and `wrangler dev` through `scripts/bench-edge.sh`).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tollgate_bench::{machine, origin_suite, report, workerd_suite, wrk};

#[derive(Debug, Parser)]
#[command(
    name = "tollgate-bench",
    about = "Tollgate benchmark suite (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The origin in-process under wrk, with Redis accounting on a private redis-server.
    Origin {
        /// 3 s runs and one round instead of 10 s and three.
        #[arg(long)]
        quick: bool,
        /// Where the JSON part goes.
        #[arg(long)]
        out: PathBuf,
        /// Use this database instead of a fresh SQLite file (e.g. an empty PostgreSQL one).
        #[arg(long)]
        database_url: Option<String>,
        /// The origin's log (production filter, `info`).
        #[arg(long)]
        log: Option<PathBuf>,
    },
    /// The Worker under raw workerd beside a bare and a JavaScript Worker, and under
    /// `wrangler dev`: prints a Markdown table (medians over rounds), writes every run as JSON.
    Workerd {
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        workerd: PathBuf,
        #[arg(long)]
        esbuild: PathBuf,
        /// `LABEL=DIR` of a worker-build bundle; repeat for before/after.
        #[arg(long = "rust", required = true, value_parser = label_dir)]
        rust: Vec<(String, PathBuf)>,
        /// `LABEL=DIR` of a pass-through bundle measured like the floor (every route passes, a
        /// forged token too): the bare workers-rs Worker (`bench/wasm-bare/build`), or a variant
        /// of it. Repeatable.
        #[arg(long = "bare", value_parser = label_dir)]
        bare: Vec<(String, PathBuf)>,
        /// Only these routes (`health`, `protected`, `forged`); all by default.
        #[arg(long, value_delimiter = ',')]
        routes: Vec<String>,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        levels: Vec<u32>,
        #[arg(long)]
        no_wrangler: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the tables of a stored run (`bench/results/latest.json`) without measuring.
    Render {
        #[arg(default_value = "bench/results/latest.json")]
        latest: PathBuf,
    },
    /// Merge the parts, print the tables, write the JSON.
    Report {
        #[arg(long)]
        criterion: PathBuf,
        #[arg(long)]
        origin: Option<PathBuf>,
        /// The part `tollgate-bench workerd` wrote.
        #[arg(long)]
        workerd: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Also write the tables here.
        #[arg(long)]
        markdown: Option<PathBuf>,
        #[arg(long)]
        quick: bool,
        #[arg(long, default_value = "scripts/bench.sh")]
        command: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Origin {
            quick,
            out,
            database_url,
            log,
        } => {
            let log = log.unwrap_or_else(|| std::env::temp_dir().join("tollgate-bench-origin.log"));
            init_log(&log)?;
            let cfg = origin_suite::Config {
                database_url,
                ..origin_suite::Config::new(quick)
            };
            let report = runtime()?.block_on(origin_suite::run(&cfg))?;
            write_json(&out, &report)
        }
        Command::Workerd {
            root,
            workerd,
            esbuild,
            rust,
            bare,
            routes,
            seconds,
            rounds,
            levels,
            no_wrangler,
            out,
        } => {
            let cfg = workerd_suite::Config {
                root,
                plan: wrk::Plan {
                    duration: std::time::Duration::from_secs(seconds),
                    rounds,
                    levels,
                    workdir: std::env::temp_dir(),
                },
                rust,
                bare,
                routes,
                wrangler: !no_wrangler,
                workerd,
                esbuild,
            };
            let report = runtime()?.block_on(workerd_suite::run(&cfg))?;
            write_json(&out, &report)?;
            println!("{}", workerd_suite::markdown(&report));
            Ok(())
        }
        Command::Render { latest } => {
            let latest: report::Latest = report::read_part(&latest)?;
            print!("{}", report::render(&latest));
            Ok(())
        }
        Command::Report {
            criterion,
            origin,
            workerd,
            out,
            markdown,
            quick,
            command,
        } => {
            let latest = report::Latest {
                generated_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                git: git_describe(),
                command,
                quick,
                machine: machine::describe(),
                micro: report::read_criterion(&criterion)?,
                origin: origin.map(|p| report::read_part(&p)).transpose()?,
                workerd: workerd.map(|p| report::read_part(&p)).transpose()?,
            };
            write_json(&out, &latest)?;
            let text = report::render(&latest);
            if let Some(md) = markdown {
                std::fs::write(&md, &text)
                    .with_context(|| format!("Failed to write {}", md.display()))?;
            }
            print!("{text}");
            Ok(())
        }
    }
}

/// `LABEL=DIR`.
fn label_dir(s: &str) -> Result<(String, PathBuf), String> {
    let (label, dir) = s
        .split_once('=')
        .ok_or(format!("want LABEL=DIR, got {s}"))?;
    Ok((label.to_owned(), PathBuf::from(dir)))
}

/// The same runtime `tollgate-origin serve` runs on (multi-threaded, one worker per core), with
/// its threads named and its workers registered so their CPU time can be told apart.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name(machine::RUNTIME_THREAD)
        .on_thread_unpark(machine::register_worker_thread)
        .enable_all()
        .build()
        .context("Failed to build the tokio runtime")
}

/// The origin's production log filter, into a file so it does not mix with the tables.
fn init_log(path: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("Failed to create {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
    Ok(())
}

/// The measured tree, e.g. `c83d15d-dirty`.
fn git_describe() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn write_json<T: serde::Serialize>(path: &PathBuf, value: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)? + "\n")
        .with_context(|| format!("Failed to write {}", path.display()))
}
