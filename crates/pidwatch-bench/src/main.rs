//! `bench`: measures pidwatch's Watcher side by side with bench/limit.c (a
//! bare pidfd + epoll loop, the kernel's limit) and with the command-line
//! waiters pidwait, waitpid, `tail --pid` and a `kill(PID, 0)` polling loop.
//!
//! `bench --quick --json` takes under two minutes; plain `bench` runs the
//! full plan. scripts/bench-peers.sh installs the peers first; see
//! docs/benchmarks.md for the commands.

mod measure;
mod plot;
mod process;
mod procfs;
mod report;
mod serve;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use measure::{CliStyle, CliTool, Plan};
use process::{Kind, Tools, WatcherKind};
use report::{LatencySeries, Report};

/// Benchmark pidwatch against its peers and a minimal pidfd + epoll program.
#[derive(Parser)]
#[command(name = "bench")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Run the short plan (under two minutes; at most 10,000 targets).
    #[arg(long)]
    quick: bool,

    /// Print the results as JSON on stdout instead of Markdown tables.
    #[arg(long)]
    json: bool,

    /// Draw the latency percentiles into this PNG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,

    /// Also write the Markdown tables to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,

    /// Run only these measurements (comma-separated: latency, batches,
    /// idle, fallback, cli); all by default.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = ["latency", "batches", "idle", "fallback", "cli"])]
    only: Vec<String>,

    /// Folder where scripts/bench-peers.sh unpacked util-linux's waitpid
    /// and its C library.
    #[arg(long, value_name = "DIR", default_value = "target/bench-peers")]
    peers: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the harness protocol with pidwatch's Watcher (used by the
    /// harness itself).
    #[command(hide = true)]
    Serve {
        /// Force the Watcher to poll /proc instead of using pidfds.
        #[arg(long)]
        poll: bool,
    },
}

fn main() {
    let args = Args::parse();
    let result = match args.command {
        Some(Command::Serve { poll }) => serve::serve(poll),
        None => run(&args),
    };
    if let Err(err) = result {
        eprintln!("bench: {err:#}");
        std::process::exit(1);
    }
}

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let tools = Tools::build()?;
    let largest = plan.registration_sizes.iter().copied().max().unwrap_or(0);
    let (limits, fits) = setup::raise_limits(largest)?;
    let mut skipped = Vec::new();
    let peers = cli_tools(&tools, &args.peers);
    for (name, reason) in peers.1 {
        progress(&format!("skipping {name}: {reason}"));
        skipped.push(serde_json::json!({"tool": name, "reason": reason}));
    }
    let watchers = [WatcherKind::Pidwatch, WatcherKind::Limit];
    let mut report = Report::default();
    let mut panels = Vec::new();
    let mut load = Vec::new();
    let mut section = |name: String| {
        progress(&name);
        load.push(serde_json::json!({"section": name, "loadavg": procfs::loadavg()}));
    };

    let selected = |name: &str| args.only.is_empty() || args.only.iter().any(|s| s == name);
    for &(kind, size) in plan.latency_sizes.iter().filter(|_| selected("latency")) {
        let noun = match (kind, size) {
            (Kind::Thread, 1) => "thread",
            (Kind::Thread, _) => "threads",
            (Kind::Process, 1) => "process",
            (Kind::Process, _) => "processes",
        };
        section(format!("latency with {size} watched {noun}"));
        let latencies = measure::latency(&tools, &plan, kind, size, &watchers)?;
        let mut series: Vec<LatencySeries> = latencies
            .iter()
            .map(|(w, h)| LatencySeries {
                watcher: w.name().to_owned(),
                points: plot::points(h),
            })
            .collect();
        series.sort_by(|a, b| b.watcher.cmp(&a.watcher));
        panels.push((format!("{} watched {noun}", thousands(size)), series));
        report
            .latency
            .extend(report::latency_rows(kind, size, &latencies));
    }

    let mut batches = Vec::new();
    for &size in plan
        .registration_sizes
        .iter()
        .filter(|_| selected("batches"))
    {
        if size <= fits {
            section(format!(
                "registration, memory and exit storm with {size} processes"
            ));
            batches.extend(measure::batches(&tools, &plan, size, &watchers)?);
            continue;
        }
        // No watcher can hold a pidfd for each target here. The Watcher
        // polls the rest in /proc; the C limit cannot, so it runs at the
        // largest size that fits.
        skipped.push(serde_json::json!({
            "measurement": "registration, memory and exit storm",
            "watcher": "limit",
            "targets": size,
            "reason": format!("the hard RLIMIT_NOFILE allows {fits} targets at most; measured at {fits} instead"),
        }));
        section(format!(
            "registration, memory and exit storm with {size} processes (pidwatch only)"
        ));
        // Forking and ending this many processes takes about a minute per
        // round here, so fewer rounds.
        let alone = Plan {
            rounds: plan.rounds.min(2),
            ..plan.clone()
        };
        batches.extend(measure::batches(
            &tools,
            &alone,
            size,
            &[WatcherKind::Pidwatch],
        )?);
        if !plan.registration_sizes.contains(&fits) {
            section(format!(
                "registration, memory and exit storm with {fits} processes"
            ));
            batches.extend(measure::batches(&tools, &plan, fits, &watchers)?);
        }
    }
    report.batches = report::summarize_batches(&batches);

    if selected("idle") {
        section(format!("idle cost with {} processes", plan.idle_targets));
        let all = [
            WatcherKind::Pidwatch,
            WatcherKind::Limit,
            WatcherKind::PidwatchPolling,
        ];
        report.idle = measure::idle(&tools, &plan, &all)?;
    }

    if selected("fallback") {
        section(format!(
            "latency of the /proc polling fallback with {} processes",
            plan.idle_targets
        ));
        let fallback = Plan {
            rounds: 1,
            latency_samples: plan.fallback_samples,
            ..plan.clone()
        };
        let latencies = measure::latency(
            &tools,
            &fallback,
            Kind::Process,
            plan.idle_targets,
            &[WatcherKind::PidwatchPolling],
        )?;
        report.latency.extend(report::latency_rows(
            Kind::Process,
            plan.idle_targets,
            &latencies,
        ));
    }

    for &(size, samples) in plan.cli_sizes.iter().filter(|_| selected("cli")) {
        section(format!("command-line waiters with {size} targets"));
        report
            .cli
            .extend(measure::cli(&tools, &plan, &peers.0, size, samples)?);
    }

    report.evaluate();
    drop(limits);

    let markdown = report.markdown();
    if let Some(path) = &args.markdown {
        std::fs::write(path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = args.plot.as_ref().filter(|_| !panels.is_empty()) {
        plot::draw(path, &panels)?;
    }
    if args.json {
        let output = serde_json::json!({
            "mode": if args.quick { "quick" } else { "full" },
            "machine": procfs::machine(),
            "limits": setup::describe(),
            "load": load,
            "plan": plan,
            "skipped": skipped,
            "elapsed_seconds": started.elapsed().as_secs_f64().round(),
            "results": report,
        });
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        println!("{markdown}");
        progress(&format!(
            "finished in {:.0} s",
            started.elapsed().as_secs_f64()
        ));
    }

    // Timing targets only go into the report, but a lost or duplicated
    // event is a bug.
    let broken: Vec<String> = report
        .batches
        .iter()
        .filter(|b| b.lost > 0 || b.duplicated > 0)
        .map(|b| {
            format!(
                "{} lost {} and duplicated {} of {} exits",
                b.watcher.name(),
                b.lost,
                b.duplicated,
                b.targets
            )
        })
        .collect();
    if !broken.is_empty() {
        anyhow::bail!("exit storm: {}", broken.join("; "));
    }
    Ok(())
}

/// Formats 10000 as "10,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Returns the command-line waiters found here, and the reason for each
/// one that is missing.
fn cli_tools(tools: &Tools, peers: &Path) -> (Vec<CliTool>, Vec<(&'static str, String)>) {
    let mut found = vec![
        // Quiet, pidwatch exits at the last exit, as pidwait and waitpid do.
        // By default it also waits (up to 1 s) for each reap, to print the
        // exit status.
        CliTool {
            name: "pidwatch wait -q",
            command: vec![tools.pidwatch.clone(), "wait".into(), "-q".into()],
            style: CliStyle::Pids,
            pidfds: true,
        },
        CliTool {
            name: "pidwatch wait",
            command: vec![tools.pidwatch.clone(), "wait".into()],
            style: CliStyle::Pids,
            pidfds: true,
        },
        CliTool {
            name: "limit",
            command: vec![tools.limit.clone(), "wait".into()],
            style: CliStyle::Pids,
            pidfds: true,
        },
    ];
    let mut skipped = Vec::new();

    match which("pidwait") {
        Some(path) => found.push(CliTool {
            name: "pidwait",
            command: vec![path],
            style: CliStyle::Name,
            pidfds: true,
        }),
        None => skipped.push((
            "pidwait",
            "not installed: apt-get install procps".to_owned(),
        )),
    }

    let root = peers.join("root");
    let loader = root.join("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
    let waitpid = root.join("usr/bin/waitpid");
    if loader.exists() && waitpid.exists() {
        found.push(CliTool {
            name: "waitpid",
            command: vec![
                loader,
                "--library-path".into(),
                root.join("usr/lib/x86_64-linux-gnu"),
                waitpid,
            ],
            style: CliStyle::Pids,
            pidfds: true,
        });
    } else {
        skipped.push((
            "waitpid",
            format!(
                "{} is missing: run scripts/bench-peers.sh",
                waitpid.display()
            ),
        ));
    }

    match which("tail") {
        Some(path) => found.push(CliTool {
            name: "tail --pid",
            command: vec![path],
            style: CliStyle::TailPid,
            pidfds: false,
        }),
        None => skipped.push((
            "tail --pid",
            "not installed: apt-get install coreutils".to_owned(),
        )),
    }
    found.push(CliTool {
        name: "kill -0 poll",
        command: vec![tools.poll.clone()],
        style: CliStyle::Pids,
        pidfds: false,
    });
    (found, skipped)
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

mod setup {
    //! Limits the large batches need: descriptors and PIDs.

    use std::sync::Mutex;

    use anyhow::{bail, Result};
    use rustix::process::{getrlimit, setrlimit, Resource};

    static CHANGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn note(change: String) {
        super::progress(&change);
        CHANGES.lock().expect("not poisoned").push(change);
    }

    /// Returns what this run changed, for the report.
    pub fn describe() -> Vec<String> {
        CHANGES.lock().expect("not poisoned").clone()
    }

    const PID_MAX: &str = "/proc/sys/kernel/pid_max";

    /// Restores `kernel.pid_max` when dropped.
    pub struct Restore {
        pid_max: Option<String>,
    }

    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(old) = self.pid_max.take() {
                match std::fs::write(PID_MAX, &old) {
                    Ok(()) => note(format!("restored kernel.pid_max to {}", old.trim())),
                    Err(err) => eprintln!(
                        "bench: could not restore kernel.pid_max to {}: {err}",
                        old.trim()
                    ),
                }
            }
        }
    }

    /// Makes room for `targets` pidfds per watcher and `targets` processes:
    /// raises the hard RLIMIT_NOFILE with setrlimit (which needs
    /// CAP_SYS_RESOURCE) and, when it is too low, kernel.pid_max for the
    /// duration of the run. Returns the largest target count that fits when
    /// the descriptor limit could not be raised far enough.
    pub fn raise_limits(targets: usize) -> Result<(Restore, usize)> {
        // Room for stdio, the epoll descriptor and the pidfds of the probes.
        const SPARE: u64 = 1_024;
        let needed = targets as u64 + SPARE;
        let mut limit = getrlimit(Resource::Nofile);
        let hard = limit.maximum.unwrap_or(u64::MAX);
        let mut fits = targets;
        if hard < needed {
            limit.maximum = Some(needed);
            limit.current = Some(needed);
            match setrlimit(Resource::Nofile, limit) {
                Ok(()) => note(format!(
                    "raised the hard RLIMIT_NOFILE from {hard} to {needed} with setrlimit"
                )),
                Err(err) => {
                    fits = (hard.saturating_sub(SPARE) / 1_000 * 1_000) as usize;
                    note(format!(
                        "could not raise the hard RLIMIT_NOFILE from {hard} to {needed} ({err}; \
                         CAP_SYS_RESOURCE is needed), so no watcher can hold more than \
                         {fits} targets here"
                    ));
                }
            }
        }

        let mut restore = Restore { pid_max: None };
        let current = std::fs::read_to_string(PID_MAX).unwrap_or_default();
        let pid_max: u64 = current.trim().parse().unwrap_or(u64::MAX);
        // Room for the targets and whatever else runs on the machine.
        let wanted = (targets as u64 + 16_384).next_power_of_two();
        if pid_max < targets as u64 + 8_192 {
            if let Err(err) = std::fs::write(PID_MAX, wanted.to_string()) {
                bail!("kernel.pid_max is {pid_max}, too low for {targets} targets, and raising it failed ({err}): run as root");
            }
            note(format!(
                "raised kernel.pid_max from {pid_max} to {wanted} for this run"
            ));
            restore.pid_max = Some(current);
        }
        Ok((restore, fits))
    }
}
