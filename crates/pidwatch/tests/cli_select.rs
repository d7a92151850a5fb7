//! `pidwatch wait` target selection, driven through the real binary:
//! patterns, users, parents, newest and oldest, and every thread of a
//! process. Each test names its processes uniquely, so processes of other
//! tests and other programs never match.

mod cli_support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use cli_support::*;
use pidwatch::helper::HelperProcess;
use pidwatch::sys::{Feature, Features};

#[test]
fn pattern_selects_by_name() {
    let name = unique_name("pat");
    let mut first = sleep_named(&name, "60");
    let mut second = sleep_named(&name, "60");

    let waiter = pidwatch_process()
        .args(["wait", "--json", "-t", "20", "--pattern", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[first.id(), second.id()]);
    stop(&mut first);
    stop(&mut second);
    let output = waiter.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut pids: Vec<u64> = json_lines(&output)
        .iter()
        .filter(|line| line["kind"] == "exited")
        .map(|line| line["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    let mut expected = vec![u64::from(first.id()), u64::from(second.id())];
    expected.sort_unstable();
    assert_eq!(pids, expected);
    for line in json_lines(&output) {
        assert_eq!(line["comm"], name.as_str());
    }
}

#[test]
fn exact_requires_whole_name() {
    let name = unique_name("ex");
    let mut sleeper = sleep_named(&name, "60");
    let prefix = &name[..name.len() - 1];

    // Without --exact the prefix matches; with it, it does not.
    pidwatch()
        .args(["wait", "-q", "-t", "0.1", "-p", prefix])
        .assert()
        .code(3);
    let output = pidwatch()
        .args(["wait", "-t", "0.1", "-x", "-p", prefix])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "no process matches: name matching {prefix:?} exactly"
        )),
        "{}",
        stderr(&output)
    );
    pidwatch()
        .args(["wait", "-q", "-t", "0.1", "--exact", "--pattern", &name])
        .assert()
        .code(3);
    stop(&mut sleeper);
}

#[test]
fn full_matches_command_line() {
    let marker = unique_name("full");
    let mut shell = Command::new("sh")
        .args(["-c", &format!("sleep 60; : {marker}")])
        .spawn()
        .unwrap();

    // The name is `sh`, so only --full finds the marker.
    pidwatch()
        .args(["wait", "-t", "0.1", "-p", &marker])
        .assert()
        .code(1);
    let pattern = format!(": {marker}$");
    let waiter = pidwatch_process()
        .args(["wait", "--json", "-t", "20", "--full", "-p", &pattern])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[shell.id()]);
    stop(&mut shell);
    let output = waiter.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines[0]["pid"], shell.id());
    assert_eq!(lines[0]["comm"], "sh");
}

#[test]
fn uid_and_euid_select_by_user() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: starting a process as another user needs root");
        return;
    }
    let name = unique_name("uid");
    let mut nobody = Command::new(link_as("sleep", &name))
        .arg("60")
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();

    for flag in ["--uid", "-U", "--euid", "-u"] {
        let output = pidwatch()
            .args([
                "wait", "--json", "-s", "KILL", "-t", "0.1", flag, "65534", "-p", &name,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{flag}: {}", stderr(&output));
        let sent: Vec<_> = json_lines(&output)
            .into_iter()
            .filter(|line| line["kind"] == "signal_sent")
            .collect();
        assert_eq!(sent.len(), 1, "{flag}: {sent:?}");
        assert_eq!(sent[0]["pid"], nobody.id());
        nobody.wait().unwrap();
        nobody = Command::new(link_as("sleep", &name))
            .arg("60")
            .uid(65534)
            .gid(65534)
            .spawn()
            .unwrap();
    }

    let output = pidwatch()
        .args(["wait", "-t", "0.1", "--uid", "root", "-p", &name])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("real UID 0"),
        "{}",
        stderr(&output)
    );
    stop(&mut nobody);
}

#[test]
fn unknown_user_is_rejected() {
    let output = pidwatch()
        .args(["wait", "--uid", "no-such-user-pidwatch"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("invalid user \"no-such-user-pidwatch\": no such user"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn parent_selects_children() {
    let mut shell = Command::new("sh")
        .args(["-c", "sleep 60 & sleep 60 & wait"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let shell_pid = shell.id();
    let children_path = format!("/proc/{shell_pid}/task/{shell_pid}/children");
    let started = std::time::Instant::now();
    let children: Vec<u32> = loop {
        let text = std::fs::read_to_string(&children_path).unwrap_or_default();
        let children: Vec<u32> = text
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        // The children count once both run `sleep`, not a copy of the shell.
        let comms: Vec<String> = children
            .iter()
            .map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default())
            .collect();
        if children.len() == 2 && comms.iter().all(|comm| comm.trim() == "sleep") {
            break children;
        }
        assert!(
            started.elapsed().as_secs() < 20,
            "the shell started no children"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };

    let waiter = pidwatch_process()
        .args([
            "wait",
            "--json",
            "-t",
            "20",
            "--parent",
            &shell_pid.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &children);
    for child in &children {
        let pid = rustix::process::Pid::from_raw(*child as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    }
    let output = waiter.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let exits: Vec<_> = json_lines(&output)
        .into_iter()
        .filter(|line| line["kind"] == "exited")
        .collect();
    assert_eq!(exits.len(), 2, "{exits:?}");
    for line in &exits {
        assert_eq!(line["comm"], "sleep");
        assert!(
            children.contains(&(line["pid"].as_u64().unwrap() as u32)),
            "{line}"
        );
    }
    // The shell reaps its killed children and exits.
    shell.wait().unwrap();
}

#[test]
fn newest_and_oldest_pick_one() {
    let name = unique_name("new");
    let mut older = sleep_named(&name, "60");
    // Start times count clock ticks (usually 10 ms), so leave a few.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut newer = sleep_named(&name, "60");

    for (flag, expected) in [("--newest", newer.id()), ("-o", older.id())] {
        let output = pidwatch()
            .args([
                "wait", "--json", "-t", "0.1", "-s", "TERM", flag, "-p", &name,
            ])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{flag}: {}", stderr(&output));
        let sent: Vec<_> = json_lines(&output)
            .into_iter()
            .filter(|line| line["kind"] == "signal_sent")
            .collect();
        assert_eq!(sent.len(), 1, "{flag}: {sent:?}");
        assert_eq!(sent[0]["pid"], expected, "{flag}");
    }
    older.wait().unwrap();
    newer.wait().unwrap();
}

#[test]
fn selection_flags_need_a_selector() {
    let cases: &[(&[&str], &str)] = &[
        (&["wait", "--newest", "1"], "--pattern"),
        (&["wait", "--oldest", "1"], "--pattern"),
        (&["wait", "--exact", "1"], "--pattern"),
        (&["wait", "--full", "1"], "--pattern"),
        (&["wait", "-n", "-o", "-p", "x"], "cannot be used with"),
        (&["wait", "-p", "a(b"], "invalid pattern \"a(b\""),
        (&["wait", "--parent", "0"], "invalid PID \"0\""),
    ];
    for (args, expected) in cases {
        let output = pidwatch().args(*args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn pattern_never_selects_pidwatch_itself() {
    let name = unique_name("self");
    let binary = link_as(env!("CARGO_BIN_EXE_pidwatch"), &name);
    let output = Command::new(binary)
        .args(["wait", "-t", "0.1", "-x", "-p", &name])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no process matches"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn pattern_and_pid_are_watched_once() {
    let name = unique_name("dup");
    let mut sleeper = sleep_named(&name, "60");
    let pid = sleeper.id().to_string();
    let waiter = pidwatch_process()
        .args(["wait", "--json", "-t", "20", "-p", &name, &pid])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[sleeper.id()]);
    stop(&mut sleeper);
    let output = waiter.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let exits = json_lines(&output)
        .into_iter()
        .filter(|line| line["kind"] == "exited")
        .count();
    assert_eq!(exits, 1);
}

#[test]
fn threads_reports_each_thread_then_process() {
    if !Features::get().has(Feature::PidfdThread) {
        eprintln!("skipped: PIDFD_THREAD (Linux 6.9) is missing");
        return;
    }
    let (mut helper, ready) =
        HelperProcess::spawn(env!("CARGO_BIN_EXE_pidwatch").as_ref()).unwrap();
    let first = helper.spawn_thread().unwrap();
    let second = helper.spawn_thread().unwrap();
    let pid = helper.pid();

    let waiter = pidwatch_process()
        .args(["wait", "--json", "-t", "20", "--threads", &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until_watching(waiter.id(), &[pid, ready.controller, first, second]);

    helper.request(&format!("thread-exit {first}")).unwrap();
    helper.send("exit 3").unwrap();
    helper.reap().unwrap();
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let exits: Vec<serde_json::Value> = json_lines(&output)
        .into_iter()
        .filter(|line| line["kind"] == "exited")
        .collect();
    let tids: Vec<u64> = exits
        .iter()
        .filter(|line| line["target"] == "thread")
        .map(|line| line["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(exits.len(), 5, "{exits:?}");
    assert_eq!(tids[0], u64::from(first), "the first thread exits first");
    for tid in [pid, ready.controller, second] {
        assert!(
            tids.contains(&u64::from(tid)),
            "{tid} missing from {tids:?}"
        );
    }
    let last = exits.last().unwrap();
    assert_eq!(last["target"], "process", "{exits:?}");
    assert_eq!(last["pid"], pid);
}

#[test]
fn threads_of_missing_process_fails() {
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let output = pidwatch()
        .args(["wait", "--threads", &child.id().to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no process or thread with PID"),
        "{}",
        stderr(&output)
    );
}
