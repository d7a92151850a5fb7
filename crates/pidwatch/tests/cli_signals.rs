//! How `pidwatch wait` ends: on SIGINT and SIGTERM, with whole JSON lines,
//! and quietly when the reader of its output goes away.

mod cli_support;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};

use cli_support::*;

/// Sends `signal` to a spawned pidwatch.
fn send(child: &Child, signal: i32) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let signal = rustix::process::Signal::from_named_raw(signal).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

/// Returns the children of process `pid`, from `/proc`.
fn children_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default()
}

fn ends_with_code(signal: i32, expected: i32) {
    let mut sleeper = spawn_sleep("60");
    let waiter = pidwatch_process()
        .args(["wait", &sleeper.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[sleeper.id()]);
    assert_eq!(
        children_of(waiter.id()).trim(),
        "",
        "pidwatch started a process"
    );

    send(&waiter, signal);
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(expected), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "{}", stdout(&output));
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "the watched process must keep running"
    );
    stop(&mut sleeper);
}

#[test]
fn sigint_ends_wait_with_130() {
    ends_with_code(libc::SIGINT, 130);
}

#[test]
fn sigterm_ends_wait_with_143() {
    ends_with_code(libc::SIGTERM, 143);
}

#[test]
fn sigterm_never_cuts_json_line() {
    // Thirty targets, each exit a line: SIGTERM arrives while lines are
    // still being written.
    let mut sleepers: Vec<Child> = (0..30).map(|_| spawn_sleep("60")).collect();
    let mut args = vec!["wait".to_owned(), "--json".to_owned()];
    args.extend(sleepers.iter().map(|child| child.id().to_string()));
    let mut waiter = pidwatch_process()
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pids: Vec<u32> = sleepers.iter().map(Child::id).collect();
    wait_until_watching(waiter.id(), &pids);

    let mut reader = BufReader::new(waiter.stdout.take().unwrap());
    for sleeper in &mut sleepers {
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
    }
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    send(&waiter, libc::SIGTERM);
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let status = waiter.wait().unwrap();

    // pidwatch may have finished before the signal arrived.
    assert!(
        matches!(status.code(), Some(143) | Some(0)),
        "exit status {status:?}"
    );
    let text = first + &rest;
    assert!(text.ends_with('\n'), "the output ends mid-line: {text:?}");
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("{line:?}: {err}"));
        assert_eq!(value["schema_version"], 1);
    }
}

#[test]
fn closed_stdout_ends_quietly() {
    let mut sleeper = spawn_sleep("60");
    let mut waiter = pidwatch_process()
        .args(["wait", "--json", &sleeper.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away at once, as with `pidwatch wait ... | head -c0`.
    // pidwatch notices the closed pipe while it waits, before any exit.
    drop(waiter.stdout.take());
    let output = waiter.wait_with_output().unwrap();
    stop(&mut sleeper);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "", "no message on a closed output");
}

#[test]
fn closed_stdout_through_shell_pipe() {
    let mut sleeper = spawn_sleep("0.3");
    let script = format!(
        "{} wait {} | head -c0",
        env!("CARGO_BIN_EXE_pidwatch"),
        sleeper.id()
    );
    let output = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    sleeper.wait().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "", "pidwatch printed an error");
}
