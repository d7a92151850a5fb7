//! The stateright model: kernel steps as actions, and the named properties.

use stateright::{Model, Property};

use crate::explore::Bounds;
use crate::kernel::{Action, KernelState, PidfdKind, TaskState};
use crate::properties::{
    EXEC_OLD_TID_HANGS_UP, GROUP_REAPED, LEADER_THREAD_PIDFD_WAITS, NOTIFICATION_NEVER_VANISHES,
    PREMATURE_LEADER_EXIT_WATCHED, RELEASED_TASK_HANGS_UP, SUBTHREAD_EXEC_COMPLETES,
};
use crate::rule::{Readiness, Rule};

/// The life cycle of one thread group and the pidfds on its pids, as a
/// stateright [`Model`] under one [`Rule`].
///
/// The state is a [`KernelState`] and each action one kernel step
/// ([`Action`]). [`Bounds::max_tasks`] limits thread creation and
/// [`Bounds::max_pidfds`] limits pidfd_open. To keep the state space small,
/// the model never opens a second pidfd of the same kind on the same
/// `struct pid`, since it would behave exactly like the first.
#[derive(Clone, Debug)]
pub struct PidfdModel {
    rule: Rule,
    bounds: Bounds,
}

impl PidfdModel {
    /// Creates the model of `rule` within `bounds`.
    pub fn new(rule: Rule, bounds: Bounds) -> Self {
        Self { rule, bounds }
    }

    /// Returns the rule the model's `pidfd_poll` follows.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Returns the bounds of the model.
    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    fn within_bounds(&self, state: &KernelState, action: &Action) -> bool {
        match *action {
            Action::SpawnThread => state.thread_count() < self.bounds.max_tasks,
            Action::OpenPidfd { pid, kind } => {
                let count = state.pidfds().count();
                let duplicate = state
                    .pidfds()
                    .any(|pidfd| pidfd.pid == pid && pidfd.kind == kind);
                count < self.bounds.max_pidfds && !duplicate
            }
            _ => true,
        }
    }
}

impl Model for PidfdModel {
    type State = KernelState;
    type Action = Action;

    fn init_states(&self) -> Vec<KernelState> {
        vec![KernelState::new()]
    }

    fn actions(&self, state: &KernelState, actions: &mut Vec<Action>) {
        let mut candidates = Vec::new();
        state.candidate_actions(self.rule, &mut candidates);
        actions.extend(
            candidates
                .into_iter()
                .filter(|action| self.within_bounds(state, action)),
        );
    }

    fn next_state(&self, last_state: &KernelState, action: Action) -> Option<KernelState> {
        // An invalid step and a poll that records nothing new both leave the
        // state as it is, which stateright expects as None.
        let next = last_state.apply(self.rule, action).ok()?;
        (next != *last_state).then_some(next)
    }

    fn format_action(&self, action: &Action) -> String {
        format!("{action:?}")
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(LEADER_THREAD_PIDFD_WAITS, leader_thread_pidfd_waits),
            Property::always(NOTIFICATION_NEVER_VANISHES, notification_never_vanishes),
            Property::always(RELEASED_TASK_HANGS_UP, released_task_hangs_up),
            Property::always(EXEC_OLD_TID_HANGS_UP, exec_old_tid_hangs_up),
            Property::sometimes(PREMATURE_LEADER_EXIT_WATCHED, premature_leader_exit_watched),
            Property::sometimes(SUBTHREAD_EXEC_COMPLETES, subthread_exec_completes),
            Property::sometimes(GROUP_REAPED, group_reaped),
        ]
    }
}

/// Checks that no `PIDFD_THREAD` pidfd on the pid the leader holds is
/// readable while a task of the group runs.
fn leader_thread_pidfd_waits(model: &PidfdModel, state: &KernelState) -> bool {
    if !state.any_running() {
        return true;
    }

    state.pidfds().all(|pidfd| {
        let on_leader = state.task_of(pidfd.pid) == Some(state.leader());
        let readiness = state.poll_pid(model.rule, pidfd.pid, pidfd.kind);
        pidfd.kind != PidfdKind::Thread || !on_leader || !readiness.readable
    })
}

/// Checks that every pidfd a watcher has seen readable is still readable.
fn notification_never_vanishes(model: &PidfdModel, state: &KernelState) -> bool {
    state.pidfds().all(|pidfd| {
        let readiness = state.poll_pid(model.rule, pidfd.pid, pidfd.kind);
        !pidfd.seen_readable || readiness.readable
    })
}

/// Checks that every pidfd whose `struct pid` has no task reports
/// POLLIN|POLLHUP.
fn released_task_hangs_up(model: &PidfdModel, state: &KernelState) -> bool {
    state.pidfds().all(|pidfd| {
        let readiness = state.poll_pid(model.rule, pidfd.pid, pidfd.kind);
        state.task_of(pidfd.pid).is_some() || readiness == Readiness::HANGUP
    })
}

/// Checks that every pidfd on the old TID of a thread whose exec completed
/// reports POLLIN|POLLHUP.
fn exec_old_tid_hangs_up(model: &PidfdModel, state: &KernelState) -> bool {
    state.pidfds().all(|pidfd| {
        let readiness = state.poll_pid(model.rule, pidfd.pid, pidfd.kind);
        !state.exec_old_tids().contains(&pidfd.pid) || readiness == Readiness::HANGUP
    })
}

fn premature_leader_exit_watched(_: &PidfdModel, state: &KernelState) -> bool {
    let leader = state.leader();
    let leader_zombie = state.thread_state(leader) == Some(TaskState::Zombie);
    let watched = state
        .pidfds()
        .any(|pidfd| state.task_of(pidfd.pid) == Some(leader));
    leader_zombie && state.any_running() && watched
}

fn subthread_exec_completes(_: &PidfdModel, state: &KernelState) -> bool {
    !state.exec_old_tids().is_empty()
}

fn group_reaped(_: &PidfdModel, state: &KernelState) -> bool {
    state.is_reaped()
}
