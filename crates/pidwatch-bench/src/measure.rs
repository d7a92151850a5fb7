//! The measurements. Each one runs every watcher on fresh targets of the
//! same size, in an order that rotates from round to round, so that drift
//! of the machine (other load, frequency changes) affects all of them alike.

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::process::{wait_until, Kind, Server, Targets, Tools, WatcherKind};
use crate::procfs::{epoll_registrations, monotonic_ns, pidfds_on, rss_kib, Usage};

/// Sizes, sample counts and durations of the measurements.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub rounds: usize,
    pub latency_sizes: Vec<(Kind, usize)>,
    pub latency_samples: usize,
    pub registration_sizes: Vec<usize>,
    pub idle_targets: usize,
    pub idle_seconds: f64,
    pub cli_sizes: Vec<(usize, usize)>,
    pub cli_idle_seconds: f64,
    /// Latency samples of the /proc polling fallback, which reports an exit
    /// up to one polling interval late.
    pub fallback_samples: usize,
}

impl Plan {
    pub fn quick() -> Plan {
        Plan {
            rounds: 2,
            latency_sizes: vec![
                (Kind::Process, 1),
                (Kind::Process, 1_000),
                (Kind::Process, 10_000),
                (Kind::Thread, 10_000),
            ],
            latency_samples: 200,
            registration_sizes: vec![10_000],
            idle_targets: 1_000,
            idle_seconds: 2.0,
            cli_sizes: vec![(1, 10), (1_000, 3)],
            cli_idle_seconds: 1.0,
            fallback_samples: 10,
        }
    }

    pub fn full() -> Plan {
        Plan {
            rounds: 4,
            latency_samples: 500,
            registration_sizes: vec![10_000, 50_000],
            idle_seconds: 10.0,
            cli_sizes: vec![(1, 30), (1_000, 10)],
            cli_idle_seconds: 3.0,
            fallback_samples: 40,
            ..Plan::quick()
        }
    }
}

/// Returns `items` rotated left by `round`.
fn rotated<T: Copy>(items: &[T], round: usize) -> Vec<T> {
    let mut items = items.to_vec();
    if !items.is_empty() {
        let shift = round % items.len();
        items.rotate_left(shift);
    }
    items
}

/// Returns a comm name for the target processes of this run, which
/// `pidwait -x` matches.
pub fn target_name() -> String {
    format!("pwbt-{:06x}", std::process::id() & 0xff_ffff)
}

/// The time the harness leaves every process alone between two samples, so
/// that each watcher has finished with the previous exit (and its reap).
const SETTLE: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------
// Exit-notification latency

/// Latency histograms (nanoseconds) of each watcher.
pub type Latencies = HashMap<WatcherKind, Histogram<u64>>;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// Measures the time from the end of a target to the watcher's event, with
/// `size` targets watched, killing `samples` of them one at a time per round.
pub fn latency(
    tools: &Tools,
    plan: &Plan,
    kind: Kind,
    size: usize,
    watchers: &[WatcherKind],
) -> Result<Latencies> {
    let mut result: Latencies = watchers.iter().map(|w| (*w, new_histogram())).collect();
    let name = target_name();
    let samples = plan.latency_samples;
    for round in 0..plan.rounds {
        for watcher in rotated(watchers, round) {
            let histogram = result.get_mut(&watcher).expect("every watcher has one");
            let mut server = Server::start(tools, watcher)?;
            if size == 1 {
                // One target watched at a time, in batches of one.
                let mut targets = Targets::spawn(tools, kind, samples, &name)?;
                for index in 0..samples {
                    server.load(kind, &targets.ids[index..=index])?;
                    server.go()?;
                    std::thread::sleep(SETTLE);
                    let latency = kill_and_wait(&mut targets, &server, index)?;
                    histogram.record(latency.max(1))?;
                    server.done()?;
                }
            } else {
                let mut targets = Targets::spawn(tools, kind, size, &name)?;
                server.load(kind, &targets.ids)?;
                server.go()?;
                let samples = samples.min(size);
                for index in 0..samples {
                    std::thread::sleep(SETTLE);
                    let latency = kill_and_wait(&mut targets, &server, index)?;
                    histogram.record(latency.max(1))?;
                }
                for index in samples..size {
                    targets.kill(index);
                }
                for _ in samples..size {
                    server.next_exit()?;
                }
                server.done()?;
            }
        }
    }
    Ok(result)
}

fn kill_and_wait(targets: &mut Targets, server: &Server, index: usize) -> Result<u64> {
    let t0 = targets.kill(index);
    let (id, t1) = server.next_exit()?;
    if id != targets.ids[index] {
        bail!(
            "the {} watcher reported {id}, but only {} was ended",
            server.kind.name(),
            targets.ids[index]
        );
    }
    Ok(t1.saturating_sub(t0))
}

// ---------------------------------------------------------------------------
// Registration, memory and the exit storm

/// One batch: register `size` targets, then end them all at once.
#[derive(Clone, Debug, Serialize)]
pub struct Batch {
    pub watcher: WatcherKind,
    pub targets: usize,
    /// Targets added per second (open + register + identity).
    pub registrations_per_second: f64,
    /// Growth of the watcher's RSS during registration, per target.
    pub rss_bytes_per_target: f64,
    /// From the first SIGKILL until the watcher delivered the last event.
    pub storm_ms: f64,
    pub lost: usize,
    pub duplicated: usize,
    pub reaped_reported: u64,
}

/// Runs one registration-and-storm batch of `size` processes per watcher
/// per round.
pub fn batches(
    tools: &Tools,
    plan: &Plan,
    size: usize,
    watchers: &[WatcherKind],
) -> Result<Vec<Batch>> {
    let name = target_name();
    let mut result = Vec::new();
    for round in 0..plan.rounds {
        for watcher in rotated(watchers, round) {
            result.push(batch(tools, watcher, size, &name)?);
        }
    }
    Ok(result)
}

fn batch(tools: &Tools, watcher: WatcherKind, size: usize, name: &str) -> Result<Batch> {
    let mut targets = Targets::spawn(tools, Kind::Process, size, name)?;
    let mut server = Server::start(tools, watcher)?;
    server.load(Kind::Process, &targets.ids)?;
    let rss_before = rss_kib(server.pid())?;
    let registration = server.go()?;
    let rss_after = rss_kib(server.pid())?;
    std::thread::sleep(Duration::from_millis(50));

    let index_of: HashMap<u32, usize> = targets
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let mut seen = vec![0u32; size];
    let start = monotonic_ns();
    for index in 0..size {
        targets.kill(index);
    }
    let mut last = start;
    let mut lines = 0;
    while lines < size {
        // A lost event shows as silence; a duplicate as an extra line.
        let Some((id, t)) = server.next_exit_within(Duration::from_secs(10))? else {
            break;
        };
        lines += 1;
        last = last.max(t);
        if let Some(&index) = index_of.get(&id) {
            seen[index] += 1;
        }
    }
    let lost = seen.iter().filter(|&&n| n == 0).count();
    let duplicated = seen.iter().map(|&n| n.saturating_sub(1) as usize).sum();
    let reaped = if lost == 0 { server.done()?.1 } else { 0 };

    Ok(Batch {
        watcher,
        targets: size,
        registrations_per_second: size as f64 / registration.as_secs_f64(),
        rss_bytes_per_target: rss_after.saturating_sub(rss_before) as f64 * 1024.0 / size as f64,
        storm_ms: (last - start) as f64 / 1e6,
        lost,
        duplicated,
        reaped_reported: reaped,
    })
}

// ---------------------------------------------------------------------------
// Idle cost

/// Resources a watcher used while its targets ran and nothing happened.
#[derive(Clone, Debug, Serialize)]
pub struct Idle {
    pub watcher: String,
    pub targets: usize,
    pub seconds: f64,
    pub cpu_ms: f64,
    /// CPU time as a share of one core, in percent.
    pub core_percent: f64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

impl Idle {
    fn from_usage(watcher: &str, targets: usize, window: Duration, usage: Usage) -> Idle {
        let seconds = window.as_secs_f64();
        Idle {
            watcher: watcher.to_owned(),
            targets,
            seconds,
            cpu_ms: usage.cpu_ns as f64 / 1e6,
            core_percent: usage.cpu_ns as f64 / 1e9 / seconds * 100.0,
            voluntary_switches: usage.voluntary,
            involuntary_switches: usage.involuntary,
        }
    }
}

fn measure_idle(pid: u32, window: Duration) -> Result<Usage> {
    let before = Usage::of(pid)?;
    std::thread::sleep(window);
    Ok(Usage::of(pid)?.since(before))
}

/// Measures each watcher's idle cost over `plan.idle_seconds`.
pub fn idle(tools: &Tools, plan: &Plan, watchers: &[WatcherKind]) -> Result<Vec<Idle>> {
    let name = target_name();
    let window = Duration::from_secs_f64(plan.idle_seconds);
    let size = plan.idle_targets;
    let mut result = Vec::new();
    for round in 0..plan.rounds {
        for watcher in rotated(watchers, round) {
            let mut targets = Targets::spawn(tools, Kind::Process, size, &name)?;
            let mut server = Server::start(tools, watcher)?;
            server.load(Kind::Process, &targets.ids)?;
            server.go()?;
            std::thread::sleep(Duration::from_millis(100));
            let usage = measure_idle(server.pid(), window)?;
            result.push(Idle::from_usage(watcher.name(), size, window, usage));
            for index in 0..size {
                targets.kill(index);
            }
            for _ in 0..size {
                server.next_exit()?;
            }
            server.done()?;
        }
    }
    Ok(result)
}

// ---------------------------------------------------------------------------
// Command-line waiters

/// A command-line program that waits for processes and exits.
#[derive(Clone, Debug)]
pub struct CliTool {
    pub name: &'static str,
    /// Program and leading arguments.
    pub command: Vec<PathBuf>,
    pub style: CliStyle,
    /// Whether it waits on pidfds in epoll (then the harness can see when
    /// it is ready).
    pub pidfds: bool,
}

#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum CliStyle {
    /// PIDs as arguments.
    Pids,
    /// `pidwait -x NAME`: matches the comm of the targets.
    Name,
    /// `tail --pid=PID -f /dev/null`: one PID only.
    TailPid,
}

impl CliTool {
    fn supports(&self, size: usize) -> bool {
        self.style != CliStyle::TailPid || size == 1
    }

    fn spawn(&self, targets: &Targets, name: &str) -> Result<std::process::Child> {
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]);
        match self.style {
            CliStyle::Pids => {
                command.args(targets.ids.iter().map(|id| id.to_string()));
            }
            CliStyle::Name => {
                command.args(["-x", name]);
            }
            CliStyle::TailPid => {
                command.arg(format!("--pid={}", targets.ids[0]));
                command.args(["-f", "/dev/null"]);
            }
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.name))
    }
}

/// Time from the end of the last target to each waiter's exit. The other
/// targets end 50 ms before the last one, so the time is that of one exit
/// noticed while the waiter still watches the others' pidfds.
#[derive(Clone, Debug, Serialize)]
pub struct CliRun {
    pub tool: &'static str,
    pub targets: usize,
    pub samples: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub max_ms: f64,
    /// RSS of the waiter once it waits (KiB), from the first round.
    pub rss_kib: u64,
    /// Idle cost while it waits, from the first round.
    pub idle: Option<Idle>,
    /// Samples in which the waiter exited while its last target still ran
    /// (its time is then meaningless).
    pub premature_exits: usize,
}

/// How long the harness waits, after ending all targets but one, to see
/// whether a waiter exits too early.
const EARLY_EXIT_WINDOW: Duration = Duration::from_millis(50);

/// Runs every tool on `size` targets, `samples` times, rotating the order.
pub fn cli(
    tools: &Tools,
    plan: &Plan,
    peers: &[CliTool],
    size: usize,
    samples: usize,
) -> Result<Vec<CliRun>> {
    let name = target_name();
    let peers: Vec<&CliTool> = peers.iter().filter(|p| p.supports(size)).collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    let mut rss = vec![0u64; peers.len()];
    let mut idles: Vec<Option<Idle>> = vec![None; peers.len()];
    let mut premature = vec![0usize; peers.len()];
    let order: Vec<usize> = (0..peers.len()).collect();
    let idle_window = Duration::from_secs_f64(plan.cli_idle_seconds);

    for round in 0..samples {
        for index in rotated(&order, round) {
            let peer = peers[index];
            let mut targets = Targets::spawn(tools, Kind::Process, size, &name)?;
            let mut child = peer.spawn(&targets, &name)?;
            let pid = child.id();
            let wanted: HashSet<u32> = targets.ids.iter().copied().collect();
            if peer.pidfds {
                if !wait_until(Duration::from_secs(10), || {
                    pidfds_on(pid, &wanted) >= size && epoll_registrations(pid) >= size
                }) {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("{} did not open {size} pidfds within 10 s", peer.name);
                }
            } else {
                std::thread::sleep(Duration::from_millis(100));
            }
            if round == 0 && size > 1 {
                rss[index] = rss_kib(pid)?;
                let usage = measure_idle(pid, idle_window)?;
                idles[index] = Some(Idle::from_usage(peer.name, size, idle_window, usage));
            }

            // The waiter's pidfd tells exactly when it exits.
            let waiter = pidwatch::sys::pidfd_open(pid, pidwatch::sys::PidfdFlags::empty())
                .context("pidfd_open on the waiter")?;

            // End all targets but the last and give the waiter time to
            // (wrongly) exit; then time the last one alone.
            let last_index = size - 1;
            for target in 0..last_index {
                targets.kill(target);
            }
            if size > 1 {
                let early = pidwatch::sys::wait_readable(waiter.as_fd(), Some(EARLY_EXIT_WINDOW))?;
                if early.exited() {
                    premature[index] += 1;
                }
            }
            let last = targets.kill(last_index);
            let readiness =
                pidwatch::sys::wait_readable(waiter.as_fd(), Some(Duration::from_secs(30)))?;
            let end = monotonic_ns();
            if !readiness.exited() {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} did not exit within 30 s of its targets", peer.name);
            }
            let status = child.wait()?;
            if !status.success() {
                bail!("{} exited with {status}", peer.name);
            }
            times[index].push((end - last) as f64 / 1e6);
        }
    }

    Ok(peers
        .iter()
        .enumerate()
        .map(|(index, peer)| {
            let mut sorted = times[index].clone();
            sorted.sort_by(f64::total_cmp);
            let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
            CliRun {
                tool: peer.name,
                targets: size,
                samples: sorted.len(),
                median_ms: at(0.5),
                p90_ms: at(0.9),
                max_ms: at(1.0),
                rss_kib: rss[index],
                idle: idles[index].clone(),
                premature_exits: premature[index],
            }
        })
        .collect())
}
