//! Exhaustive exploration of every rule with the default bounds.

use pidwatch_model::properties::{
    ALL, EXEC_OLD_TID_HANGS_UP, LEADER_THREAD_PIDFD_WAITS, NOTIFICATION_NEVER_VANISHES,
    RELEASED_TASK_HANGS_UP,
};
use pidwatch_model::{
    explore, Action, Bounds, PidIndex, PidfdKind, Readiness, Rule, ThreadIndex, Verdict,
};

fn verdict(rule: Rule, name: &str) -> Verdict {
    let exploration = explore(rule, &Bounds::default());
    match exploration.property(name) {
        Some(report) => report.verdict,
        None => panic!("no report for property {name:?}"),
    }
}

#[test]
fn legacy_premature_leader_exit_counterexample() {
    let exploration = explore(Rule::Legacy, &Bounds::default());
    let report = exploration.property(LEADER_THREAD_PIDFD_WAITS).unwrap();
    assert_eq!(report.verdict, Verdict::Violated);

    let actions: Vec<Action> = report.trace.iter().map(|step| step.action).collect();
    assert_eq!(
        actions,
        [
            Action::SpawnThread,
            Action::LeaderExit,
            Action::OpenPidfd {
                pid: PidIndex(0),
                kind: PidfdKind::Thread
            },
        ]
    );

    let last = report.trace.last().unwrap();
    assert_eq!(last.pidfds.len(), 1);
    assert_eq!(last.pidfds[0].readiness, Readiness::READABLE);
}

#[test]
fn legacy_vanishing_notification_counterexample() {
    let exploration = explore(Rule::Legacy, &Bounds::default());
    let report = exploration.property(NOTIFICATION_NEVER_VANISHES).unwrap();
    assert_eq!(report.verdict, Verdict::Violated);

    let actions: Vec<Action> = report.trace.iter().map(|step| step.action).collect();
    assert_eq!(actions.len(), 6, "trace: {actions:?}");
    assert_eq!(actions[0], Action::SpawnThread);
    assert_eq!(actions[1], Action::LeaderExit);
    assert!(actions.contains(&Action::ExecStart {
        thread: ThreadIndex(1)
    }));
    assert!(actions.contains(&Action::Poll {
        fd: pidwatch_model::FdId(0)
    }));
    assert_eq!(actions[5], Action::ExecSwapPids);

    // The watcher saw POLLIN on the leader's PIDFD_THREAD pidfd, and after
    // the swap the pid belongs to the running exec'ing thread.
    let before_swap = &report.trace[4];
    let after_swap = &report.trace[5];
    assert_eq!(before_swap.pidfds[0].readiness, Readiness::READABLE);
    assert_eq!(after_swap.pidfds[0].pid, PidIndex(0));
    assert_eq!(after_swap.pidfds[0].kind, PidfdKind::Thread);
    assert_eq!(after_swap.pidfds[0].readiness, Readiness::NONE);
}

#[test]
fn legacy_hangup_properties_hold() {
    assert_eq!(
        verdict(Rule::Legacy, RELEASED_TASK_HANGS_UP),
        Verdict::Holds
    );
    assert_eq!(verdict(Rule::Legacy, EXEC_OLD_TID_HANGS_UP), Verdict::Holds);
}

#[test]
fn fixed_satisfies_every_invariant() {
    let exploration = explore(Rule::Fixed, &Bounds::default());
    assert!(exploration.complete);
    assert!(!exploration.has_violations());
    for report in &exploration.properties {
        let expected = match report.kind {
            pidwatch_model::PropertyKind::Always => Verdict::Holds,
            _ => Verdict::Reached,
        };
        assert_eq!(report.verdict, expected, "property {:?}", report.name);
    }
}

#[test]
fn no_thread_pidfd_lacks_hangup_only() {
    let exploration = explore(Rule::NoThreadPidfd, &Bounds::default());
    for report in exploration.properties.iter().take(4) {
        let expected = if report.name == RELEASED_TASK_HANGS_UP {
            Verdict::Violated
        } else {
            Verdict::Holds
        };
        assert_eq!(report.verdict, expected, "property {:?}", report.name);
    }

    let report = exploration.property(RELEASED_TASK_HANGS_UP).unwrap();
    let last = report.trace.last().unwrap();
    assert_eq!(last.action, Action::Reap);
    assert_eq!(last.pidfds[0].readiness, Readiness::READABLE);
}

#[test]
fn every_rule_reaches_interesting_states() {
    for rule in Rule::ALL {
        let exploration = explore(rule, &Bounds::default());
        assert!(exploration.complete, "{rule} exploration was cut short");
        assert_eq!(exploration.properties.len(), ALL.len());
        for report in exploration.properties.iter().skip(4) {
            assert_eq!(
                report.verdict,
                Verdict::Reached,
                "{rule}: {:?}",
                report.name
            );
        }
    }
}

#[test]
fn step_bound_cuts_exploration() {
    let bounds = Bounds {
        max_steps: 2,
        ..Bounds::default()
    };
    let exploration = explore(Rule::Legacy, &bounds);
    assert!(!exploration.complete);

    // The premature leader exit needs three steps.
    let report = exploration.property(LEADER_THREAD_PIDFD_WAITS).unwrap();
    assert_eq!(report.verdict, Verdict::Holds);
}

#[test]
fn zero_bounds_check_initial_state() {
    let bounds = Bounds {
        max_tasks: 0,
        max_pidfds: 0,
        max_steps: 0,
    };
    let exploration = explore(Rule::Fixed, &bounds);
    assert!(exploration.unique_states >= 1);
    assert!(!exploration.has_violations());
}

#[test]
fn display_lists_one_step_per_line() {
    let exploration = explore(Rule::Legacy, &Bounds::default());
    let text = exploration.to_string();

    assert!(text.starts_with("rule: legacy"));
    assert!(text.contains("violated: leader thread pidfd never reports"));
    assert!(text.contains("   1. a running thread creates thread 1"));
    assert!(text.contains("pidfd 0 (PIDFD_THREAD, pid 0): POLLIN"));
    assert!(text.contains("holds: released task's pidfd hangs up"));
}

#[test]
fn json_carries_verdicts_and_traces() {
    let exploration = explore(Rule::Legacy, &Bounds::default());
    let value = serde_json::to_value(&exploration).unwrap();

    assert_eq!(value["rule"], "legacy");
    assert_eq!(value["bounds"]["max_tasks"], 3);
    assert_eq!(value["properties"][0]["verdict"], "violated");
    assert_eq!(value["properties"][0]["kind"], "always");
    let step = &value["properties"][0]["trace"][2];
    assert_eq!(step["action"]["step"], "open-pidfd");
    assert_eq!(step["action"]["kind"], "thread");
    assert_eq!(step["pidfds"][0]["readiness"]["readable"], true);
    assert_eq!(step["pidfds"][0]["readiness"]["hangup"], false);
}

#[test]
fn rule_names_round_trip() {
    for rule in Rule::ALL {
        assert_eq!(rule.name().parse::<Rule>(), Ok(rule));
    }
    assert!("6.9".parse::<Rule>().is_err());
}
