//! A deterministic simulator of user-level actions, for differential testing
//! against a real kernel.

use serde::Serialize;
use std::fmt;

use crate::error::{ActionError, OpenError};
use crate::explore::{pidfd_readiness, thread_snapshots, PidfdReadiness, ThreadSnapshot};
use crate::kernel::{Action, FdId, KernelState, PidfdKind, ThreadIndex};
use crate::rule::{Readiness, Rule};

/// A system call or signal as a test program issues it. Each runs all of its
/// kernel steps before it returns, as a real system call appears to a
/// single-threaded test that waits for it to finish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum UserAction {
    /// A running thread creates a thread; see [`Simulation::spawn_thread`].
    SpawnThread,
    /// A subthread calls `SYS_exit`; see [`Simulation::thread_exit`].
    ThreadExit {
        /// The exiting subthread.
        thread: ThreadIndex,
    },
    /// The thread-group leader calls `SYS_exit`; see
    /// [`Simulation::leader_exit`].
    LeaderExit,
    /// A thread calls execve; see [`Simulation::exec`].
    Exec {
        /// The exec'ing thread.
        thread: ThreadIndex,
    },
    /// The parent sends SIGKILL to the group; see [`Simulation::kill_group`].
    KillGroup,
    /// The parent reaps the group; see [`Simulation::reap`].
    Reap,
    /// The watcher opens a pidfd; see [`Simulation::open_pidfd`].
    OpenPidfd {
        /// The thread whose current `struct pid` the pidfd will hold.
        thread: ThreadIndex,
        /// Process pidfd, or `PIDFD_THREAD` pidfd.
        kind: PidfdKind,
    },
    /// The watcher polls a pidfd; see [`Simulation::poll`].
    Poll {
        /// The polled pidfd.
        fd: FdId,
    },
}

impl fmt::Display for UserAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserAction::SpawnThread => f.write_str("spawn a thread"),
            UserAction::ThreadExit { thread } => write!(f, "{thread} calls SYS_exit"),
            UserAction::LeaderExit => f.write_str("the leader calls SYS_exit"),
            UserAction::Exec { thread } => write!(f, "{thread} calls execve"),
            UserAction::KillGroup => f.write_str("SIGKILL the thread group"),
            UserAction::Reap => f.write_str("reap the thread group"),
            UserAction::OpenPidfd { thread, kind } => {
                write!(f, "open a {kind} pidfd on {thread}")
            }
            UserAction::Poll { fd } => write!(f, "poll {fd}"),
        }
    }
}

/// Result of a successful [`UserAction`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "outcome", content = "value", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// The action completed and produced no value.
    Done,
    /// A thread was created.
    Spawned(ThreadIndex),
    /// A pidfd was opened.
    Opened(FdId),
    /// A poll returned this readiness.
    Polled(Readiness),
}

/// A deterministic simulation of one thread group under one [`Rule`].
///
/// The simulation starts with thread 0 running as the thread-group leader,
/// holding pid 0, with the test program as its parent. Thread `i` is created
/// holding pid `i`. After an exec by subthread `k`, thread `k` holds pid 0
/// and the old leader, which held pid `k`, is released.
///
/// An action that is impossible in the current state returns an error and
/// leaves the state unchanged, so a property-test strategy can filter
/// actions, or pick only from [`Simulation::valid_actions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Simulation {
    rule: Rule,
    state: KernelState,
}

impl Simulation {
    /// Creates a simulation of `rule` with thread 0 running as the leader.
    pub fn new(rule: Rule) -> Self {
        Self {
            rule,
            state: KernelState::new(),
        }
    }

    /// Returns the rule the simulation's `pidfd_poll` follows.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Returns the kernel state, for queries such as
    /// [`KernelState::thread_state`] and [`KernelState::pid_of`].
    pub fn state(&self) -> &KernelState {
        &self.state
    }

    /// Creates a thread, as clone with `CLONE_THREAD` from any running
    /// thread, and returns its index.
    ///
    /// Fails when no thread can make a system call (all exited, or SIGKILL
    /// pending).
    pub fn spawn_thread(&mut self) -> Result<ThreadIndex, ActionError> {
        let thread = ThreadIndex(self.state.thread_count());
        self.run(&[Action::SpawnThread])?;
        Ok(thread)
    }

    /// Makes a subthread call `SYS_exit`. The thread is released at once,
    /// because a non-leader thread auto-reaps.
    ///
    /// Fails for the leader (use [`Simulation::leader_exit`]) and for a
    /// thread that is not running.
    pub fn thread_exit(&mut self, thread: ThreadIndex) -> Result<(), ActionError> {
        self.run(&[Action::ThreadExit { thread }])
    }

    /// Makes the thread-group leader call `SYS_exit`. The leader becomes a
    /// zombie, and stays one until the group is reaped.
    ///
    /// Fails when the leader is not running.
    pub fn leader_exit(&mut self) -> Result<(), ActionError> {
        self.run(&[Action::LeaderExit])
    }

    /// Makes a thread call execve and runs it to completion.
    ///
    /// Every other thread is killed. A subthread is released; a running
    /// leader becomes a zombie. If `thread` is a subthread, it then takes
    /// over the leader's `struct pid` and becomes the leader, and the old
    /// leader, now holding `thread`'s old pid, is released.
    ///
    /// Fails when `thread` is not running.
    pub fn exec(&mut self, thread: ThreadIndex) -> Result<(), ActionError> {
        let mut state = self.state.apply(self.rule, Action::ExecStart { thread })?;
        state = self.handle_pending_sigkills(state)?;

        let finish: &[Action] = if thread == self.state.leader() {
            &[Action::ExecFinish]
        } else {
            &[Action::ExecSwapPids, Action::ExecReleaseOldLeader]
        };
        for action in finish {
            state = state.apply(self.rule, *action)?;
        }

        self.state = state;
        Ok(())
    }

    /// Sends SIGKILL to the thread group and lets every thread exit. The
    /// subthreads are released; the leader becomes a zombie.
    ///
    /// Fails when no thread is running, where the real `kill` would succeed
    /// and change nothing.
    pub fn kill_group(&mut self) -> Result<(), ActionError> {
        let state = self.state.apply(self.rule, Action::KillGroup)?;
        self.state = self.handle_pending_sigkills(state)?;
        Ok(())
    }

    /// Reaps the thread group as its parent, releasing the leader.
    ///
    /// Fails unless the leader is a zombie and every other thread is
    /// released, when a real `waitid` with `WNOHANG` finds nothing to reap.
    pub fn reap(&mut self) -> Result<(), ActionError> {
        self.run(&[Action::Reap])
    }

    /// Opens a pidfd on the `struct pid` `thread` holds now, and returns its
    /// id.
    ///
    /// Fails like `pidfd_open`: a process pidfd on a thread that is not the
    /// leader, a thread that has been released, or `PIDFD_THREAD` under
    /// [`Rule::NoThreadPidfd`]. [`OpenError::errno`] gives the kernel's
    /// errno.
    pub fn open_pidfd(&mut self, thread: ThreadIndex, kind: PidfdKind) -> Result<FdId, OpenError> {
        // pidfd_open validates its flags before it looks up the pid.
        if kind == PidfdKind::Thread && !self.rule.has_thread_pidfd() {
            return Err(OpenError::ThreadPidfdUnsupported(self.rule));
        }
        if self.state.thread_state(thread).is_none() {
            return Err(OpenError::NoSuchThread(thread));
        }
        let pid = self
            .state
            .pid_of(thread)
            .ok_or(OpenError::ThreadReleased(thread))?;

        self.state.open_pidfd(self.rule, pid, kind)
    }

    /// Returns what `poll(2)` reports now for a pidfd.
    ///
    /// Fails when no pidfd has that id.
    pub fn poll(&self, fd: FdId) -> Result<Readiness, ActionError> {
        self.state
            .poll(self.rule, fd)
            .ok_or(ActionError::NoSuchPidfd(fd))
    }

    /// Returns every open pidfd with what `poll(2)` reports for it now.
    pub fn poll_all(&self) -> Vec<PidfdReadiness> {
        pidfd_readiness(self.rule, &self.state)
    }

    /// Returns every thread ever created with its current state.
    pub fn threads(&self) -> Vec<ThreadSnapshot> {
        thread_snapshots(&self.state)
    }

    /// Runs one action and returns what it produced.
    pub fn apply(&mut self, action: UserAction) -> Result<Outcome, ActionError> {
        match action {
            UserAction::SpawnThread => self.spawn_thread().map(Outcome::Spawned),
            UserAction::ThreadExit { thread } => self.thread_exit(thread).map(|()| Outcome::Done),
            UserAction::LeaderExit => self.leader_exit().map(|()| Outcome::Done),
            UserAction::Exec { thread } => self.exec(thread).map(|()| Outcome::Done),
            UserAction::KillGroup => self.kill_group().map(|()| Outcome::Done),
            UserAction::Reap => self.reap().map(|()| Outcome::Done),
            UserAction::OpenPidfd { thread, kind } => {
                Ok(Outcome::Opened(self.open_pidfd(thread, kind)?))
            }
            UserAction::Poll { fd } => self.poll(fd).map(Outcome::Polled),
        }
    }

    /// Returns every action that succeeds in the current state, in a fixed
    /// order: thread creation, exits, execs, kill, reap, pidfd opens (every
    /// thread and kind that `pidfd_open` accepts), then polls. There is no
    /// limit on threads or pidfds, so a generator must bound them itself.
    pub fn valid_actions(&self) -> Vec<UserAction> {
        let threads = (0..self.state.thread_count()).map(ThreadIndex);
        let kinds = [PidfdKind::Process, PidfdKind::Thread];

        let mut candidates = vec![UserAction::SpawnThread];
        candidates.extend(
            threads
                .clone()
                .map(|thread| UserAction::ThreadExit { thread }),
        );
        candidates.push(UserAction::LeaderExit);
        candidates.extend(threads.clone().map(|thread| UserAction::Exec { thread }));
        candidates.push(UserAction::KillGroup);
        candidates.push(UserAction::Reap);
        for thread in threads {
            for kind in kinds {
                candidates.push(UserAction::OpenPidfd { thread, kind });
            }
        }
        candidates.extend(
            self.state
                .pidfds()
                .map(|pidfd| UserAction::Poll { fd: pidfd.fd }),
        );

        candidates
            .into_iter()
            .filter(|action| self.clone().apply(*action).is_ok())
            .collect()
    }

    /// Applies kernel steps in order and keeps the result only if all
    /// succeed.
    fn run(&mut self, actions: &[Action]) -> Result<(), ActionError> {
        let mut state = self.state.clone();
        for action in actions {
            state = state.apply(self.rule, *action)?;
        }
        self.state = state;
        Ok(())
    }

    /// Lets every thread with a pending SIGKILL exit, in index order.
    fn handle_pending_sigkills(&self, mut state: KernelState) -> Result<KernelState, ActionError> {
        for index in 0..state.thread_count() {
            let thread = ThreadIndex(index);
            let pending = state.sigkill_pending(thread) == Some(true);
            let running = state.thread_state(thread) == Some(crate::TaskState::Running);
            let in_exec = state.exec_thread() == Some(thread);
            if pending && running && !in_exec {
                state = state.apply(self.rule, Action::HandleSigkill { thread })?;
            }
        }
        Ok(state)
    }
}
