//! Property tests of the simulator over random scripts of valid actions.

use pidwatch_model::{
    PidIndex, PidfdKind, Readiness, Rule, Simulation, TaskState, ThreadIndex, UserAction,
};
use proptest::prelude::*;

const MAX_THREADS: usize = 4;
const MAX_PIDFDS: usize = 6;

fn rule_strategy() -> impl Strategy<Value = Rule> {
    prop_oneof![
        Just(Rule::NoThreadPidfd),
        Just(Rule::Legacy),
        Just(Rule::Fixed)
    ]
}

/// Runs a script in which each number picks one of the valid actions,
/// skipping thread creation and pidfd opens past the limits, and calls
/// `check` after each action.
fn run_script(rule: Rule, picks: &[usize], mut check: impl FnMut(&Simulation, UserAction)) {
    let mut sim = Simulation::new(rule);
    for pick in picks {
        let pidfd_count = sim.state().pidfds().count();
        let thread_count = sim.state().thread_count();
        let actions: Vec<UserAction> = sim
            .valid_actions()
            .into_iter()
            .filter(|action| match action {
                UserAction::SpawnThread => thread_count < MAX_THREADS,
                UserAction::OpenPidfd { .. } => pidfd_count < MAX_PIDFDS,
                _ => true,
            })
            .collect();
        if actions.is_empty() {
            return;
        }

        let action = actions[pick % actions.len()];
        let result = sim.apply(action);
        assert!(
            result.is_ok(),
            "{action} was listed as valid but failed: {result:?}"
        );
        check(&sim, action);
    }
}

fn any_thread_running(sim: &Simulation) -> bool {
    sim.threads()
        .iter()
        .any(|thread| thread.state == TaskState::Running)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fixed_pid0_silent_while_thread_runs(picks in prop::collection::vec(any::<usize>(), 0..40)) {
        run_script(Rule::Fixed, &picks, |sim, action| {
            if !any_thread_running(sim) {
                return;
            }
            for pidfd in sim.poll_all() {
                if pidfd.pid == PidIndex(0) {
                    assert_eq!(pidfd.readiness, Readiness::NONE, "after {action}: {pidfd:?}");
                }
            }
        });
    }

    #[test]
    fn fixed_readiness_never_vanishes(picks in prop::collection::vec(any::<usize>(), 0..40)) {
        let mut readable = Vec::new();
        run_script(Rule::Fixed, &picks, |sim, action| {
            let polls = sim.poll_all();
            for pidfd in &polls {
                if readable.get(pidfd.fd.0) == Some(&true) {
                    assert!(pidfd.readiness.readable, "after {action}: {pidfd:?} vanished");
                }
            }
            readable = polls.iter().map(|pidfd| pidfd.readiness.readable).collect();
        });
    }

    #[test]
    fn released_pid_reports_exit(
        rule in rule_strategy(),
        picks in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        run_script(rule, &picks, |sim, action| {
            for pidfd in sim.poll_all() {
                if sim.state().task_of(pidfd.pid).is_some() {
                    continue;
                }
                let expected = if rule.has_pollhup() {
                    Readiness::HANGUP
                } else {
                    Readiness::READABLE
                };
                assert_eq!(pidfd.readiness, expected, "after {action}: {pidfd:?}");
            }
        });
    }

    #[test]
    fn one_running_or_zombie_leader(
        rule in rule_strategy(),
        picks in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        run_script(rule, &picks, |sim, action| {
            let threads = sim.threads();
            let leaders: Vec<_> = threads.iter().filter(|thread| thread.leader).collect();
            assert_eq!(leaders.len(), 1, "after {action}");

            // The leader holds the TGID unless the group is reaped.
            let leader = leaders[0];
            if leader.state != TaskState::Released {
                assert_eq!(leader.pid, Some(PidIndex(0)), "after {action}");
            }
        });
    }

    #[test]
    fn invalid_action_changes_nothing(
        rule in rule_strategy(),
        picks in prop::collection::vec(any::<usize>(), 0..30),
        thread in 0..MAX_THREADS + 1,
        kind in prop_oneof![Just(PidfdKind::Process), Just(PidfdKind::Thread)],
    ) {
        run_script(rule, &picks, |sim, _| {
            let thread = ThreadIndex(thread);
            let candidates = [
                UserAction::SpawnThread,
                UserAction::ThreadExit { thread },
                UserAction::LeaderExit,
                UserAction::Exec { thread },
                UserAction::KillGroup,
                UserAction::Reap,
                UserAction::OpenPidfd { thread, kind },
            ];
            let valid = sim.valid_actions();
            for action in candidates {
                let mut copy = sim.clone();
                let result = copy.apply(action);
                assert_eq!(result.is_ok(), valid.contains(&action), "{action}");
                if result.is_err() {
                    assert_eq!(&copy, sim, "{action} failed but changed the state");
                }
            }
        });
    }
}
