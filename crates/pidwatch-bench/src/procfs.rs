//! Clock and `/proc` readings of the processes under test.

use std::collections::HashSet;
use std::fs;

use anyhow::{Context, Result};

/// Returns `CLOCK_MONOTONIC` in nanoseconds, the clock limit.c prints too.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, and CLOCK_MONOTONIC always
    // exists, so the call only writes into it.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Resources a process has used so far, summed over its threads.
#[derive(Copy, Clone, Debug, Default)]
pub struct Usage {
    /// Time on a CPU, from `/proc/PID/task/*/schedstat` (nanoseconds).
    pub cpu_ns: u64,
    /// `voluntary_ctxt_switches`: how often it blocked, so how often it was
    /// woken up again.
    pub voluntary: u64,
    /// `nonvoluntary_ctxt_switches`: how often it was preempted.
    pub involuntary: u64,
}

impl Usage {
    /// Reads the usage of process `pid`.
    pub fn of(pid: u32) -> Result<Usage> {
        let mut usage = Usage::default();
        let dir = format!("/proc/{pid}/task");
        for task in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
            let task = task?.path();
            let schedstat = fs::read_to_string(task.join("schedstat"))?;
            usage.cpu_ns += schedstat
                .split_whitespace()
                .next()
                .and_then(|field| field.parse::<u64>().ok())
                .unwrap_or(0);
            let status = fs::read_to_string(task.join("status"))?;
            usage.voluntary += status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0);
            usage.involuntary += status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
        }
        Ok(usage)
    }

    /// Returns the usage between `earlier` and `self`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }
}

/// Returns the resident set size of process `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status_field(&status, "VmRSS:").with_context(|| format!("no VmRSS in {path}"))
}

/// Counts the pidfds process `pid` holds on any of `targets`, to tell when
/// a waiter that prints nothing has opened all of them. Its other pidfds
/// (feature probes, for example) do not count.
pub fn pidfds_on(pid: u32, targets: &HashSet<u32>) -> usize {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    entries
        .filter_map(|entry| fs::read_to_string(entry.ok()?.path()).ok())
        .filter_map(|fdinfo| status_field(&fdinfo, "Pid:"))
        .filter(|target| u32::try_from(*target).is_ok_and(|t| targets.contains(&t)))
        .count()
}

/// Counts the descriptors registered in the epoll instances of process
/// `pid` (the `tfd:` lines of their fdinfo). A waiter may open a pidfd to
/// check a target before it registers one, so a pidfd alone does not show
/// that it is ready.
pub fn epoll_registrations(pid: u32) -> usize {
    let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return 0;
    };
    entries
        .filter_map(|entry| fs::read_to_string(entry.ok()?.path()).ok())
        .map(|fdinfo| {
            fdinfo
                .lines()
                .filter(|line| line.starts_with("tfd:"))
                .count()
        })
        .sum()
}

fn status_field(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Describes the machine: CPU model, cores, kernel, memory.
pub fn machine() -> serde_json::Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib = status_field(&meminfo, "MemTotal:").unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    serde_json::json!({
        "cpu": model,
        "cores": cores,
        "memory_gib": (memory_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "kernel": kernel.trim(),
        "loadavg_at_start": loadavg.trim(),
    })
}

/// Returns the three load averages of `/proc/loadavg`.
pub fn loadavg() -> String {
    let text = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
