//! The thread-group scenarios on the running kernel, through raw pidfds and
//! through the watcher. Each test fails when the kernel or pidwatch departs
//! from the fixed semantics, and prints every check that differed.
//!
//! `PIDWATCH_QUIET_WINDOW_MS` sets how long a pidfd must stay quiet where no
//! exit may be reported (default 200 ms).

use std::path::PathBuf;
use std::time::Duration;

use pidwatch::check::{run_all, Layer, Options, Verdict};
use pidwatch::watch::Regime;

fn options() -> Options {
    let window = std::env::var("PIDWATCH_QUIET_WINDOW_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(200);
    Options {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_pidwatch")),
        quiet_window: Duration::from_millis(window),
        regime: None,
    }
}

/// Runs one scenario and fails with its differing checks.
fn assert_scenario_passes(name: &str) {
    let reports = run_all(&options(), Some(name));
    let report = reports
        .iter()
        .find(|report| report.name == name)
        .unwrap_or_else(|| panic!("no scenario named {name}"));

    if let Verdict::Skip(reason) = &report.kernel {
        eprintln!("skipped: the kernel side of scenario {name}: {reason}");
    }
    assert!(!report.checks.is_empty(), "scenario {name} made no checks");

    // Only a kernel with the thread-group fix must itself match the fixed
    // semantics; pidwatch must match them everywhere.
    let kernel_must_pass = Regime::current() == Regime::Fixed;
    let failures: Vec<String> = report
        .checks
        .iter()
        .filter(|check| !check.ok)
        .filter(|check| check.layer == Layer::Pidwatch || kernel_must_pass)
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
    assert_eq!(report.pidwatch, Verdict::Pass);
    if report.kernel == Verdict::Fail {
        eprintln!(
            "note: on this {} kernel, the kernel side of {name} differs from the fixed semantics",
            Regime::current()
        );
    }
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
