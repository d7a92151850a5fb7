//! The watcher's strategies, checked against the kernel model.
//!
//! The test visits every state the model reaches under the rules of older
//! kernels, and every target the watcher could hold there. For each, it
//! derives what the watcher's plan observes (a pidfd's readiness under the
//! older rule, or what `/proc` shows) and compares it with what the fixed
//! rule of Linux 6.15 reports for the same target. It also checks that
//! what a plan observes never goes back: an exit, once seen, stays seen.
//!
//! The model is `pidwatch-model`; the plans are [`pidwatch::watch::strategy`],
//! the same function the watcher calls.

use std::collections::{HashSet, VecDeque};

use pidwatch::watch::strategy::{plan, Plan, Regime};
use pidwatch::TargetKind;
use pidwatch_model::{
    Action, KernelState, PidIndex, PidfdKind, Readiness, Rule, TaskState, ThreadIndex,
};

/// At most this many threads are ever created in one explored history.
const MAX_THREADS: usize = 4;

/// Returns every state reachable from the initial one under `rule`, with
/// every transition, leaving out pidfd opens and polls (the targets are
/// evaluated in each state instead).
fn explore(rule: Rule) -> (Vec<KernelState>, Vec<(usize, usize)>) {
    let mut states = vec![KernelState::new()];
    let mut index = std::collections::HashMap::new();
    index.insert(states[0].clone(), 0);
    let mut edges = Vec::new();
    let mut queue = VecDeque::from([0]);

    while let Some(at) = queue.pop_front() {
        let state = states[at].clone();
        for action in state.valid_actions(rule) {
            if matches!(action, Action::OpenPidfd { .. } | Action::Poll { .. }) {
                continue;
            }
            if matches!(action, Action::SpawnThread) && state.thread_count() >= MAX_THREADS {
                continue;
            }
            let next = state.apply(rule, action).expect("valid action applies");
            let to = *index.entry(next.clone()).or_insert_with(|| {
                states.push(next);
                queue.push_back(states.len() - 1);
                states.len() - 1
            });
            edges.push((at, to));
        }
    }
    (states, edges)
}

/// Returns the `struct pid` of the thread group's ID. It is the first
/// thread's for life, since an exec by a subthread hands it to the exec'ing
/// thread.
fn tgid(state: &KernelState) -> PidIndex {
    if let Some(pid) = state.pid_of(state.leader()) {
        assert_eq!(
            pid,
            PidIndex(0),
            "the leader holds another pid in {state:?}"
        );
    }
    PidIndex(0)
}

/// Tasks of the group not yet released: the `num_threads` of `/proc`.
fn unreleased(state: &KernelState) -> usize {
    (0..state.thread_count())
        .filter(|&t| state.thread_state(ThreadIndex(t)) != Some(TaskState::Released))
        .count()
}

/// Returns the kind of the target's own pidfd.
fn pidfd_kind(kind: TargetKind) -> PidfdKind {
    match kind {
        TargetKind::Process => PidfdKind::Process,
        _ => PidfdKind::Thread,
    }
}

/// Returns, as a readiness, what the watcher observes for a target of
/// `kind` on `pid` that it watches with `plan` on a kernel that follows
/// `rule`.
fn observed(
    plan: Plan,
    rule: Rule,
    state: &KernelState,
    pid: PidIndex,
    kind: TargetKind,
) -> Readiness {
    let task = state.task_of(pid).and_then(|t| state.thread_state(t));
    match plan {
        Plan::OwnPidfd => state.poll_pid(rule, pid, pidfd_kind(kind)),
        Plan::ProcessPidfd => state.poll_pid(rule, pid, PidfdKind::Process),
        // /proc/PID/stat of the group's ID: a zombie leader that is the
        // last task of its group has exited; no entry means reaped.
        Plan::PollProcess => match task {
            None => Readiness::HANGUP,
            Some(TaskState::Zombie) if unreleased(state) == 1 => Readiness::READABLE,
            Some(_) => Readiness::NONE,
        },
        // /proc/TID/stat of one thread: dead or gone means exited and
        // reaped, since a non-leader thread is released as it exits.
        Plan::PollThread => match task {
            Some(TaskState::Running) => Readiness::NONE,
            _ => Readiness::HANGUP,
        },
        other => panic!("no model for plan {other:?}"),
    }
}

/// Returns what the fixed rule reports for the target.
fn promised(state: &KernelState, pid: PidIndex, kind: TargetKind) -> Readiness {
    state.poll_pid(Rule::Fixed, pid, pidfd_kind(kind))
}

/// Lists every target the watcher could hold in a state: the group, the
/// leader as a thread, and each other thread that ever existed.
fn targets(state: &KernelState) -> Vec<(PidIndex, TargetKind, bool)> {
    let tgid = tgid(state);
    let mut targets = vec![
        (tgid, TargetKind::Process, true),
        (tgid, TargetKind::Thread, true),
    ];
    for t in 0..state.thread_count() {
        let pid = PidIndex(t);
        if pid != tgid {
            targets.push((pid, TargetKind::Thread, false));
        }
    }
    targets
}

fn check_regime(regime: Regime, rule: Rule) {
    let (states, edges) = explore(rule);
    assert!(
        states.len() > 50,
        "the exploration is too small to mean much"
    );

    let mut mismatches = Vec::new();
    for state in &states {
        for (pid, kind, leader) in targets(state) {
            let plan = plan(regime, kind, leader);
            let seen = observed(plan, rule, state, pid, kind);
            let want = promised(state, pid, kind);
            // A reap must not be reported before it is promised, nor missed
            // once it is. Only polled non-leaders see the reap with the exit,
            // because the kernel releases them in the same step.
            let hangup_ok = if plan == Plan::PollThread {
                seen.hangup == want.readable
            } else {
                seen.hangup == want.hangup || (!rule.has_pollhup() && want.hangup)
            };
            if seen.readable != want.readable || !hangup_ok {
                mismatches.push(format!(
                    "{kind:?} target on pid {} ({plan:?}): observed {seen:?}, fixed rule {want:?}",
                    pid.0
                ));
            }
        }
    }

    // Once a plan has seen an exit it never loses it.
    let mut retracted = HashSet::new();
    for (from, to) in edges {
        for (pid, kind, leader) in targets(&states[from]) {
            let plan = plan(regime, kind, leader);
            if observed(plan, rule, &states[from], pid, kind).readable
                && !observed(plan, rule, &states[to], pid, kind).readable
            {
                retracted.insert(format!("{kind:?} target on pid {} ({plan:?})", pid.0));
            }
        }
    }

    assert!(
        mismatches.is_empty(),
        "{regime}: {} mismatches over {} states, first: {:?}",
        mismatches.len(),
        states.len(),
        &mismatches[..mismatches.len().min(5)]
    );
    assert!(
        retracted.is_empty(),
        "{regime}: exits seen and then lost: {retracted:?}"
    );
}

#[test]
fn legacy_thread_pidfd_strategy_matches_the_fixed_rule() {
    check_regime(Regime::LegacyThreadPidfd, Rule::Legacy);
}

#[test]
fn no_thread_pidfd_strategy_matches_the_fixed_rule() {
    check_regime(Regime::NoThreadPidfd, Rule::NoThreadPidfd);
}

#[test]
fn no_pidfd_strategy_matches_the_fixed_rule() {
    check_regime(Regime::NoPidfd, Rule::NoThreadPidfd);
}

#[test]
fn fixed_strategy_matches_the_fixed_rule() {
    check_regime(Regime::Fixed, Rule::Fixed);
}

/// The check can fail: trusting a legacy kernel's `PIDFD_THREAD` pidfd on
/// the leader is exactly the inconsistency the strategies exist for.
#[test]
fn trusting_the_legacy_kernel_is_caught() {
    let (states, _) = explore(Rule::Legacy);
    let caught = states.iter().any(|state| {
        let pid = tgid(state);
        observed(Plan::OwnPidfd, Rule::Legacy, state, pid, TargetKind::Thread).readable
            != promised(state, pid, TargetKind::Thread).readable
    });
    assert!(
        caught,
        "the legacy rule should differ on a leader's thread pidfd"
    );
}
