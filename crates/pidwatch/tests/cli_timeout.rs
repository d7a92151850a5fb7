//! `pidwatch wait` timeouts, signals on timeout, output modes and
//! `--exit-status`, driven through the real binary.

mod cli_support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use cli_support::*;
use pidwatch::sys::{Feature, Features};

#[test]
fn signal_on_timeout_terminates_target() {
    let mut sleeper = spawn_sleep("60");
    let output = pidwatch()
        .args([
            "wait",
            "--json",
            "-t",
            "200ms",
            "--signal",
            "TERM",
            &sleeper.id().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(sleeper.wait().unwrap().signal(), Some(libc::SIGTERM));

    let lines = json_lines(&output);
    assert_eq!(lines[0]["kind"], "signal_sent", "{lines:?}");
    assert_eq!(lines[0]["signal"], libc::SIGTERM);
    assert_eq!(lines[0]["signal_name"], "SIGTERM");
    assert_eq!(lines[0]["source"], "pidwatch");
    assert!(
        lines.iter().any(|line| line["kind"] == "exited"),
        "{lines:?}"
    );
}

#[test]
fn kill_after_follows_ignored_signal() {
    // The shell ignores SIGTERM; the loop keeps it alive until SIGKILL, and
    // each `sleep` it starts ends within a tenth of a second.
    let mut shell = Command::new("sh")
        .args(["-c", "trap '' TERM; while :; do sleep 0.1; done"])
        .spawn()
        .unwrap();
    let pid = shell.id().to_string();
    // A first `sleep` child shows that the trap is set.
    let children = format!("/proc/{pid}/task/{pid}/children");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&children)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            started.elapsed().as_secs() < 20,
            "the shell started no sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let waiter = pidwatch_process()
        .args(["wait", "--json", "-t", "0.3", "-k", "300ms", &pid])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[shell.id()]);
    // The shell is this process's child: reap it after pidwatch reports its exit.
    let status = shell.wait().unwrap();
    let output = waiter.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let sent: Vec<_> = json_lines(&output)
        .into_iter()
        .filter(|line| line["kind"] == "signal_sent")
        .map(|line| line["signal_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sent,
        ["SIGTERM", "SIGKILL"],
        "TERM is the default first signal"
    );
}

#[test]
fn timeout_without_signal_leaves_target() {
    let mut sleeper = spawn_sleep("60");
    let output = pidwatch()
        .args(["wait", "-t", "100ms", &sleeper.id().to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("timed out: 0 of 1 target(s) exited"),
        "{}",
        stderr(&output)
    );
    assert!(sleeper.try_wait().unwrap().is_none(), "sleep was signalled");
    stop(&mut sleeper);
}

#[test]
fn timeout_options_reject_bad_values() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["wait", "-t", "soon", "1"],
            "invalid timeout \"soon\": expected",
        ),
        (
            &["wait", "-t", "5x", "1"],
            "invalid timeout \"5x\": expected",
        ),
        (
            &["wait", "-t", "1", "-k", "later", "1"],
            "invalid --kill-after duration \"later\"",
        ),
        (
            &["wait", "-t", "1", "-s", "TERMINATE", "1"],
            "invalid signal \"TERMINATE\"",
        ),
        (&["wait", "-t", "1", "-s", "0", "1"], "invalid signal \"0\""),
        (&["wait", "--signal", "TERM", "1"], "--timeout"),
        (&["wait", "--kill-after", "1s", "1"], "--timeout"),
    ];
    for (args, expected) in cases {
        let output = pidwatch().args(*args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {} lacks {expected:?}",
            stderr(&output)
        );
    }
}

#[test]
fn durations_accept_units() {
    for timeout in ["150ms", "0.15", "0.15s", "0.0025m"] {
        let mut sleeper = spawn_sleep("60");
        pidwatch()
            .args(["wait", "-q", "-t", timeout, &sleeper.id().to_string()])
            .assert()
            .code(3);
        stop(&mut sleeper);
    }
}

#[test]
fn quiet_prints_nothing() {
    let mut sleeper = spawn_sleep("60");
    let output = pidwatch()
        .args(["wait", "--quiet", "-t", "0.1", &sleeper.id().to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(output.stdout.is_empty());
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
    stop(&mut sleeper);

    let output = pidwatch()
        .args(["wait", "-q", "--json", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn default_line_names_command_and_status() {
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.3; exit 4"])
        .spawn()
        .unwrap();
    let pid = child.id();
    let waiter = pidwatch_process()
        .args(["wait", &pid.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[pid]);
    child.wait().unwrap();
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("process {pid} (sh) has exited: ")),
        "{text}"
    );
    assert!(text.contains(", watched "), "{text}");
    if Features::get().has(Feature::PidfdInfoExit) {
        assert!(text.contains("exit code 4"), "{text}");
    }
    assert!(!text.contains("source"), "{text}");
}

#[test]
fn verbose_shows_source_and_inode() {
    let mut sleeper = spawn_sleep("0.2");
    let pid = sleeper.id();
    let waiter = pidwatch_process()
        .args(["wait", "-v", &pid.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[pid]);
    sleeper.wait().unwrap();
    let output = waiter.wait_with_output().unwrap();
    let text = stdout(&output);
    assert!(text.contains(", source kernel"), "{text}");
    if Features::get().has(Feature::PidfsInode) {
        assert!(text.starts_with(&format!("process {pid}:")), "{text}");
    }
}

#[test]
fn json_lines_follow_schema() {
    let mut sleeper = spawn_sleep("0.2");
    let pid = sleeper.id();
    let waiter = pidwatch_process()
        .args(["wait", "--json", &pid.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[pid]);
    sleeper.wait().unwrap();
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));

    let lines = json_lines(&output);
    assert!(!lines.is_empty());
    for line in &lines {
        assert_eq!(line["schema_version"], 1, "{line}");
        assert_eq!(line["target"], "process");
        assert_eq!(line["pid"], pid);
        assert_eq!(line["comm"], "sleep");
        assert!(line["inode"].is_u64() || line["inode"].is_null(), "{line}");
        assert!(line["watched_seconds"].as_f64().unwrap() >= 0.0, "{line}");
        assert!(line["timestamp"].is_f64(), "{line}");
        assert!(
            ["kernel", "verified", "polled"].contains(&line["source"].as_str().unwrap()),
            "{line}"
        );
        assert!(line.get("tid").is_none(), "{line}");
        assert!(line.get("signal").is_none(), "{line}");
    }
    assert_eq!(lines[0]["kind"], "exited");
}

#[test]
fn exit_status_returns_exit_code() {
    if !Features::get().has(Feature::PidfdInfoExit) {
        eprintln!(
            "skipped: PIDFD_INFO_EXIT (Linux 6.15) is missing, so a non-child's status is unknown"
        );
        return;
    }
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.3; exit 7"])
        .spawn()
        .unwrap();
    let waiter = pidwatch_process()
        .args(["wait", "-q", "--exit-status", &child.id().to_string()])
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[child.id()]);
    child.wait().unwrap();
    let status = waiter.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(7));
}

#[test]
fn exit_status_adds_128_to_signal() {
    if !Features::get().has(Feature::PidfdInfoExit) {
        eprintln!(
            "skipped: PIDFD_INFO_EXIT (Linux 6.15) is missing, so a non-child's status is unknown"
        );
        return;
    }
    let mut sleeper = spawn_sleep("60");
    let waiter = pidwatch_process()
        .args(["wait", "-q", "--exit-status", &sleeper.id().to_string()])
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[sleeper.id()]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let status = waiter.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(128 + libc::SIGKILL));
}

#[test]
fn exit_status_unknown_gives_255() {
    // A zombie that its parent (this test) does not reap has no status for
    // anyone else, so pidwatch falls back to 255.
    let mut child = Command::new("true").spawn().unwrap();
    let output = pidwatch()
        .args(["wait", "--exit-status", &child.id().to_string()])
        .output()
        .unwrap();
    child.wait().unwrap();
    assert_eq!(output.status.code(), Some(255));
    assert!(
        stderr(&output).contains("the exit status is unknown"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn exit_status_needs_one_target() {
    let mut first = spawn_sleep("60");
    let mut second = spawn_sleep("60");
    let output = pidwatch()
        .args([
            "wait",
            "--exit-status",
            &first.id().to_string(),
            &second.id().to_string(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--exit-status needs exactly one target, but 2 were given"),
        "{}",
        stderr(&output)
    );
    stop(&mut first);
    stop(&mut second);
}
