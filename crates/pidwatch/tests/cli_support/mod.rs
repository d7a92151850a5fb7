//! Helpers for the tests that drive the `pidwatch` binary.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for pidwatch to open its pidfds before it fails.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Returns the `pidwatch` binary under test, for commands that run to the
/// end.
pub fn pidwatch() -> assert_cmd::Command {
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_pidwatch"))
}

/// Returns the `pidwatch` binary under test, for commands the test spawns
/// and drives while they run.
pub fn pidwatch_process() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pidwatch"))
}

/// Returns a command name (`comm`, at most 15 bytes) that no other process
/// on the machine uses, so a pattern selects only the test's processes.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("pw{tag}{}x{n}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "{name} is longer than a command name");
    name
}

/// Creates a symbolic link named `name` to `program` (found on `PATH`) in
/// this test binary's scratch directory. A process started through the
/// link has `name` as its command name.
pub fn link_as(program: &str, name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-links");
    std::fs::create_dir_all(&dir).unwrap();
    let source = if program.starts_with('/') {
        PathBuf::from(program)
    } else {
        which(program)
    };
    let link = dir.join(name);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(source, &link).unwrap();
    link
}

fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// Starts `sleep SECONDS` with the command name `name`.
pub fn sleep_named(name: &str, seconds: &str) -> Child {
    Command::new(link_as("sleep", name))
        .arg(seconds)
        .spawn()
        .expect("spawn sleep through a link")
}

pub fn spawn_sleep(seconds: &str) -> Child {
    Command::new("sleep")
        .arg(seconds)
        .spawn()
        .expect("spawn sleep")
}

/// Kills and reaps a child, ignoring one that has already exited.
pub fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Returns the PIDs (or TIDs) that the pidfds of process `pid` refer to,
/// from the `Pid:` line of each pidfd's `/proc/PID/fdinfo` entry.
pub fn pidfd_targets(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut targets = Vec::new();
    for entry in entries.flatten() {
        let is_pidfd = std::fs::read_link(entry.path())
            .is_ok_and(|link| link.to_string_lossy().contains("pidfd"));
        if !is_pidfd {
            continue;
        }
        let info_path = format!("/proc/{pid}/fdinfo/{}", entry.file_name().to_string_lossy());
        let Ok(info) = std::fs::read_to_string(info_path) else {
            continue;
        };
        let number: Option<u32> = info
            .lines()
            .find_map(|line| line.strip_prefix("Pid:"))
            .and_then(|value| value.trim().parse().ok());
        targets.extend(number);
    }
    targets
}

/// Blocks until process `pid` (a running pidwatch) has a pidfd open for
/// each of `targets`, which means it watches them.
pub fn wait_until_watching(pid: u32, targets: &[u32]) {
    let started = Instant::now();
    loop {
        let open = pidfd_targets(pid);
        if targets.iter().all(|target| open.contains(target)) {
            return;
        }
        assert!(
            started.elapsed() < SETUP_TIMEOUT,
            "pidwatch (PID {pid}) has pidfds for {open:?}, not for all of {targets:?}, after {SETUP_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses every stdout line as JSON, failing on a line that is not.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|err| panic!("{line:?} is not JSON: {err}"))
        })
        .collect()
}
