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

/// Returns the number of pidfds that process `pid` has open.
pub fn pidfd_count(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("pidfd"))
        .count()
}

/// Blocks until process `pid` holds at least `count` pidfds, which means
/// pidwatch has registered its targets and its signal handlers.
pub fn wait_until_watching(pid: u32, count: usize) {
    let started = Instant::now();
    while pidfd_count(pid) < count {
        assert!(
            started.elapsed() < SETUP_TIMEOUT,
            "pidwatch (PID {pid}) opened only {} of {count} pidfds within {SETUP_TIMEOUT:?}",
            pidfd_count(pid)
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
