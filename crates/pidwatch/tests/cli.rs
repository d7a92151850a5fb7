//! The `pidwatch` binary, driven as a user would: exit codes, messages and
//! output of `wait`, `id` and `check`.

mod cli_support;
mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pidwatch::sys::{self, Feature, Features, PidfdFlags};

fn pidwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pidwatch"))
}

fn run(args: &[&str]) -> Output {
    pidwatch().args(args).output().expect("run pidwatch")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn spawn_sleep(seconds: &str) -> Child {
    Command::new("sleep")
        .arg(seconds)
        .spawn()
        .expect("spawn sleep")
}

/// Returns a PID that belongs to no process: a child that has been reaped.
fn gone_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

#[test]
fn wait_returns_when_process_exits() {
    let mut sleeper = spawn_sleep("1");
    let started = Instant::now();
    let output = run(&["wait", &sleeper.id().to_string()]);
    let elapsed = started.elapsed();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        elapsed >= Duration::from_millis(900),
        "returned after {elapsed:?}"
    );
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("process {} (sleep) has exited", sleeper.id())),
        "{text}"
    );
    sleeper.wait().unwrap();
}

#[test]
fn wait_json_reports_kill_signal() {
    if !Features::get().has(Feature::PidfdInfoExit) {
        eprintln!(
            "skipped: PIDFD_INFO_EXIT (Linux 6.15) is missing, so a non-child's signal is unknown"
        );
        return;
    }
    let mut sleeper = spawn_sleep("60");
    let waiter = pidwatch()
        .args(["wait", "--json", &sleeper.id().to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    // pidwatch is not the parent of `sleep`: this test process is, and it
    // kills and reaps it.
    cli_support::wait_until_watching(waiter.id(), &[sleeper.id()]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();

    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert!(!lines.is_empty());
    assert_eq!(lines[0]["kind"], "exited");
    assert_eq!(lines[0]["pid"], sleeper.id());
    assert!(lines[0]["inode"].is_u64() || lines[0]["inode"].is_null());
    assert!(lines[0]["timestamp"].is_f64());
    let with_status = lines
        .iter()
        .find(|line| !line["status"].is_null())
        .expect("a line has the status");
    assert_eq!(with_status["status"]["signal"], libc::SIGKILL);
    assert_eq!(with_status["status"]["signal_name"], "SIGKILL");
}

#[test]
fn wait_times_out_with_code_3() {
    let mut sleeper = spawn_sleep("60");
    let output = run(&["wait", "--timeout", "0.2", &sleeper.id().to_string()]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn wait_count_returns_after_first() {
    let mut short = spawn_sleep("0.1");
    let mut long = spawn_sleep("60");
    let output = run(&[
        "wait",
        "-c",
        "1",
        "-t",
        "10",
        &short.id().to_string(),
        &long.id().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    short.wait().unwrap();
    long.kill().unwrap();
    long.wait().unwrap();
}

#[test]
fn wait_verbose_names_the_exit() {
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.2; exit 4"])
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let waiter = pidwatch()
        .args(["wait", "-v", &pid])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cli_support::wait_until_watching(waiter.id(), &[child.id()]);
    child.wait().unwrap();
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains(&format!("process {pid}")), "{text}");
    assert!(text.contains("has exited"), "{text}");
}

#[test]
fn wait_missing_pid_fails_without_exited() {
    let pid = gone_pid().to_string();
    let output = run(&["wait", &pid]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("no process or thread with PID {pid}")),
        "{message}"
    );
    assert!(message.contains("--exited"), "{message}");
}

#[test]
fn wait_missing_pid_counts_with_exited() {
    let pid = gone_pid().to_string();
    let output = run(&["wait", "--exited", "--json", &pid]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["kind"], "exited");
    assert_eq!(line["source"], "already_exited");
}

#[test]
fn wait_rejects_bad_input() {
    let cases: &[(&[&str], &str)] = &[
        (&["wait", "0"], "invalid PID \"0\": 0 is not a process"),
        (
            &["wait", "-1"],
            "invalid PID \"-1\": expected a positive decimal number",
        ),
        (
            &["wait", "abc"],
            "invalid PID \"abc\": expected a positive decimal number",
        ),
        (&["wait", ""], "invalid PID \"\": it is empty"),
        (&["wait", "2147483648"], "larger than the maximum 4194304"),
        (
            &["wait", "9223372036854775808"],
            "larger than the maximum 4194304",
        ),
        (&["wait", "12:"], "the inode after ':' is missing"),
        (
            &["wait", ":12"],
            "invalid PID \":12\": the PID before ':' is missing",
        ),
        (
            &["wait", "1:x"],
            "the inode after ':' must be a decimal number",
        ),
        (&["wait", "--thread", "0"], "invalid TID \"0\""),
        (&["wait"], "no PID or TID given"),
        (&["wait", "-t", "soon", "1"], "invalid timeout \"soon\""),
        (
            &["wait", "-t", "-1", "1"],
            "invalid timeout \"-1\": expected a non-negative number",
        ),
        (
            &["wait", "-c", "2", "1"],
            "invalid --count 2: 1 target(s) given",
        ),
        (&["wait", "-c", "0", "1"], "invalid --count 0"),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (
            &["check", "--scenario", "nope"],
            "no scenario matches \"nope\"",
        ),
    ];
    for (args, expected) in cases {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(
            message.contains(expected),
            "{args:?}: {message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn wait_wrong_inode_is_already_exited() {
    if !Features::get().has(Feature::PidfsInode) {
        eprintln!("skipped: pidfs inode identity (Linux 6.9) is missing");
        return;
    }
    let mut sleeper = spawn_sleep("60");
    let pidfd = sys::pidfd_open(sleeper.id(), PidfdFlags::empty()).unwrap();
    let inode = sys::pidfd_inode(&pidfd).unwrap().unwrap();
    let wrong = format!("{}:{}", sleeper.id(), inode + 1);

    let output = run(&["wait", &wrong]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("has exited"),
        "{}",
        stderr(&output)
    );

    let output = run(&["wait", "--exited", &wrong]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn wait_tid_as_pid_names_the_thread() {
    let (tid, stop, handle) = common::start_thread();

    let output = run(&["wait", &tid.to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "{tid} is not a process but a thread of process {}",
            std::process::id()
        )),
        "{message}"
    );

    stop.send(()).unwrap();
    handle.join().unwrap();
}

#[test]
fn wait_thread_returns_when_thread_exits() {
    if !Features::get().has(Feature::PidfdThread) {
        eprintln!("skipped: PIDFD_THREAD (Linux 6.9) is missing");
        return;
    }
    let (tid, stop, handle) = common::start_thread();

    let waiter = pidwatch()
        .args(["wait", "--json", "-t", "10", "--thread", &tid.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cli_support::wait_until_watching(waiter.id(), &[tid]);
    stop.send(()).unwrap();
    handle.join().unwrap();

    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first: serde_json::Value =
        serde_json::from_str(stdout(&output).lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "exited");
    assert_eq!(first["target"], "thread");
    assert_eq!(first["tid"], tid);
    assert_eq!(first["pid"], std::process::id());
}

#[test]
fn id_prints_pid_and_inode() {
    if !Features::get().has(Feature::PidfsInode) {
        let output = run(&["id", "1"]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        eprintln!(
            "skipped: pidfs inode identity (Linux 6.9) is missing; checked exit code 2 instead"
        );
        return;
    }
    let me = std::process::id();
    let output = run(&["id", &me.to_string()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let pidfd = sys::pidfd_open(me, PidfdFlags::empty()).unwrap();
    let inode = sys::pidfd_inode(&pidfd).unwrap().unwrap();
    assert_eq!(stdout(&output).trim(), format!("{me}:{inode}"));

    let output = run(&["id", &gone_pid().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no process or thread"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_json_passes_every_scenario() {
    let output = run(&["check", "--json", "--quiet-window", "100"]);
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("check --json prints JSON");

    let features = document["features"].as_array().expect("features array");
    assert!(features
        .iter()
        .any(|f| f["name"] == "pidfd_open" && f["available"] == true));
    let scenarios = document["scenarios"].as_array().expect("scenarios array");
    assert!(scenarios.len() >= 6, "{scenarios:?}");
    for scenario in scenarios {
        assert_eq!(scenario["pidwatch"]["verdict"], "pass", "{scenario:#}");
        let kernel = &scenario["kernel"];
        if kernel["verdict"] == "skip" {
            eprintln!(
                "skipped: the kernel side of scenario {}: {}",
                scenario["name"], kernel["reason"]
            );
        }
    }
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn help_lists_commands_and_exit_codes() {
    let output = run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    for word in ["wait", "check", "id", "3 timeout"] {
        assert!(text.contains(word), "help lacks {word:?}:\n{text}");
    }
}

#[test]
fn id_rejects_bad_pids() {
    for (input, reason) in [
        ("abc", "expected a positive decimal number"),
        ("-1", "expected a positive decimal number"),
        ("0", "0 is not a process"),
        ("99999999", "larger than the maximum 4194304"),
    ] {
        let output = run(&["id", input]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{input}: {}",
            stderr(&output)
        );
        let text = stderr(&output);
        assert!(
            text.contains(&format!("invalid PID \"{input}\"")),
            "{input}: {text}"
        );
        assert!(text.contains(reason), "{input}: {text}");
    }
}
