//! The thread-group scenarios on the running kernel, through raw pidfds and
//! through the watcher. Each test fails when the kernel or pidwatch departs
//! from the fixed semantics, and prints every check that differed.
//!
//! `PIDWATCH_QUIET_WINDOW_MS` sets how long a pidfd must stay quiet where no
//! exit may be reported (default 200 ms).

use std::path::PathBuf;
use std::time::Duration;

use pidwatch::check::{run_all, Options, Verdict};

fn options() -> Options {
    let window = std::env::var("PIDWATCH_QUIET_WINDOW_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(200);
    Options {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_pidwatch")),
        quiet_window: Duration::from_millis(window),
    }
}

/// Runs one scenario and fails with its differing checks.
fn assert_scenario_passes(name: &str) {
    let reports = run_all(&options(), Some(name));
    let report = reports
        .iter()
        .find(|report| report.name == name)
        .unwrap_or_else(|| panic!("no scenario named {name}"));

    if let Verdict::Skip(reason) = &report.verdict {
        eprintln!("skipped: scenario {name}: {reason}");
        return;
    }
    assert!(!report.checks.is_empty(), "scenario {name} made no checks");

    let failures: Vec<String> = report
        .checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| {
            format!(
                "[{}] {:?} {}: observed {}, expected {}",
                check.step, check.layer, check.subject, check.observed, check.expected
            )
        })
        .chain(report.errors.iter().cloned())
        .collect();
    assert!(
        failures.is_empty(),
        "scenario {name} failed:\n{}",
        failures.join("\n")
    );
    assert_eq!(report.verdict, Verdict::Pass);
}

#[test]
fn premature_leader_exit() {
    assert_scenario_passes("premature-leader-exit");
}

#[test]
fn exec_after_leader_exit() {
    assert_scenario_passes("exec-after-leader-exit");
}

#[test]
fn exec_while_leader_alive() {
    assert_scenario_passes("exec-while-leader-alive");
}

#[test]
fn subthread_exit() {
    assert_scenario_passes("subthread-exit");
}

#[test]
fn plain_exit() {
    assert_scenario_passes("plain-exit");
}

#[test]
fn plain_signal() {
    assert_scenario_passes("plain-signal");
}
