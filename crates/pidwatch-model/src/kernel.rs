//! Tasks, `struct pid`s and pidfds of one thread group, and the kernel steps
//! that change them.
//!
//! [`KernelState`] is the whole modelled world: the tasks of one thread group
//! (created by clone with `CLONE_THREAD`), the `struct pid` each task holds,
//! the pidfds a watcher opened, and whether the parent has reaped the group.
//! [`Action`] lists the kernel steps. Each step is as small as the kernel
//! makes it, so the explorer can interleave a poll or a pidfd_open between
//! the steps of an execve.

use serde::Serialize;
use std::fmt;

use crate::error::{ActionError, OpenError};
use crate::rule::{Readiness, Rule};

/// Index of a task (a thread) in creation order.
///
/// Thread 0 is the initial thread-group leader. Indices are never reused: a
/// released thread keeps its index, and the next thread created gets the
/// next free index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ThreadIndex(pub usize);

impl fmt::Display for ThreadIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {}", self.0)
    }
}

/// A `struct pid`, named by the index of the thread that was created with it.
///
/// Thread `i` is created holding pid `i`, so pid 0 is the TGID. When a
/// subthread `k` execs, it takes over pid 0 and the old leader task holds
/// pid `k` until the old leader is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PidIndex(pub usize);

impl fmt::Display for PidIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.0)
    }
}

/// A pidfd, named by its position in opening order (the first pidfd is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct FdId(pub usize);

impl fmt::Display for FdId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pidfd {}", self.0)
    }
}

/// Kind of a pidfd, fixed by the flags given to `pidfd_open`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PidfdKind {
    /// A pidfd opened without `PIDFD_THREAD`. The kernel accepts it only on a
    /// `struct pid` that is the TGID of a thread group (the leader's pid) and
    /// reports an exit only when the whole thread group has exited.
    Process,
    /// A pidfd opened with `PIDFD_THREAD` (Linux 6.9 and later). It may name
    /// any task, and it reports the exit of that one task, except for the
    /// thread-group leader under [`Rule::Fixed`].
    Thread,
}

impl fmt::Display for PidfdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PidfdKind::Process => "process",
            PidfdKind::Thread => "PIDFD_THREAD",
        })
    }
}

/// Life-cycle state of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TaskState {
    /// The task runs, possibly with a SIGKILL pending.
    Running,
    /// The task has exited (`exit_state` is set) but is not released yet. A
    /// thread-group leader stays a zombie until the parent reaps the group.
    /// The old leader between the pid swap and its release in an exec by a
    /// subthread is `EXIT_DEAD` in the kernel, which `pidfd_poll` treats like
    /// a zombie because it only tests that `exit_state` is non-zero.
    Zombie,
    /// The task has been released (`release_task`): it no longer holds its
    /// `struct pid` and has left the thread group.
    Released,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Running => "running",
            TaskState::Zombie => "a zombie",
            TaskState::Released => "released",
        })
    }
}

/// One kernel step, the unit of interleaving in the explorer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// A running thread without a pending SIGKILL calls clone with
    /// `CLONE_THREAD`. The new thread gets the next [`ThreadIndex`] and the
    /// pid of the same index.
    SpawnThread,
    /// A subthread calls `SYS_exit`. A non-leader thread auto-reaps, so it is
    /// released in the same step.
    ThreadExit {
        /// The exiting subthread.
        thread: ThreadIndex,
    },
    /// The thread-group leader calls `SYS_exit` and becomes a zombie. While
    /// subthreads run, this is a premature leader exit: the leader stays a
    /// zombie until the group is reaped.
    LeaderExit,
    /// The parent sends SIGKILL to the thread group. Every running thread gets
    /// a pending SIGKILL and exits in its own [`Action::HandleSigkill`] step.
    KillGroup,
    /// A thread with a pending SIGKILL exits. A subthread is released at
    /// once; the leader becomes a zombie. If the thread was in execve before
    /// the pid swap, the execve fails.
    HandleSigkill {
        /// The exiting thread.
        thread: ThreadIndex,
    },
    /// A thread calls execve, and `de_thread` sends SIGKILL to every other
    /// thread of the group (`zap_other_threads`).
    ExecStart {
        /// The exec'ing thread.
        thread: ThreadIndex,
    },
    /// Exec by a subthread, once every other subthread is released and the
    /// leader is a zombie: the exec'ing thread and the old leader swap
    /// `struct pid`s (`exchange_tids`), and the exec'ing thread becomes the
    /// thread-group leader.
    ExecSwapPids,
    /// Exec by a subthread, after the swap: the old leader is released, so
    /// the exec'ing thread's old pid has no task any more. The execve is then
    /// complete.
    ExecReleaseOldLeader,
    /// Exec by the leader, once every other thread is released: `de_thread`
    /// returns without a pid swap and the execve is complete.
    ExecFinish,
    /// The parent reaps the thread group with a wait call. Possible only when
    /// the leader is a zombie and the group is otherwise empty. Releases the
    /// leader, so no pid of the group has a task any more.
    Reap,
    /// A watcher calls `pidfd_open` on a `struct pid`.
    OpenPidfd {
        /// The `struct pid` the pidfd will hold.
        pid: PidIndex,
        /// Process pidfd, or `PIDFD_THREAD` pidfd.
        kind: PidfdKind,
    },
    /// A watcher polls a pidfd. The explorer records whether the watcher has
    /// seen the pidfd readable, so a later state can show that the
    /// notification vanished.
    Poll {
        /// The polled pidfd.
        fd: FdId,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Task {
    pid: PidIndex,
    state: TaskState,
    sigkill_pending: bool,
}

/// Progress of an execve through `de_thread`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ExecPhase {
    /// The other threads have SIGKILL pending. The exec'ing thread waits for
    /// them to be released and, when it is a subthread, for the leader to be
    /// a zombie.
    KillingOthers,
    /// A subthread's exec has swapped pids with the old leader, which is
    /// waiting to be released.
    PidsSwapped { old_leader: ThreadIndex },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Exec {
    thread: ThreadIndex,
    phase: ExecPhase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Pidfd {
    pid: PidIndex,
    kind: PidfdKind,
    seen_readable: bool,
}

/// An open pidfd as seen from outside the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PidfdInfo {
    /// The pidfd.
    pub fd: FdId,
    /// The `struct pid` the pidfd holds. A pidfd holds the same `struct pid`
    /// for its whole life, whichever task holds that pid.
    pub pid: PidIndex,
    /// Process pidfd, or `PIDFD_THREAD` pidfd.
    pub kind: PidfdKind,
    /// Whether a [`Action::Poll`] step has returned the pidfd readable.
    pub seen_readable: bool,
}

/// One thread group, its `struct pid`s, the pidfds a watcher opened on them,
/// and its parent's view (reaped or not).
///
/// All tasks belong to the same thread group until they are released, as in
/// the kernel, where `release_task` removes a task from the thread list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelState {
    tasks: Vec<Task>,
    leader: ThreadIndex,
    group_exit: bool,
    exec: Option<Exec>,
    pidfds: Vec<Pidfd>,
    exec_old_tids: Vec<PidIndex>,
}

impl Default for KernelState {
    fn default() -> Self {
        Self::new()
    }
}

impl KernelState {
    /// Creates the initial state: thread 0 is the running thread-group leader
    /// holding pid 0, and no pidfd is open.
    pub fn new() -> Self {
        Self {
            tasks: vec![Task {
                pid: PidIndex(0),
                state: TaskState::Running,
                sigkill_pending: false,
            }],
            leader: ThreadIndex(0),
            group_exit: false,
            exec: None,
            pidfds: Vec::new(),
            exec_old_tids: Vec::new(),
        }
    }

    /// Returns the number of threads ever created, released ones included.
    pub fn thread_count(&self) -> usize {
        self.tasks.len()
    }

    /// Returns the current thread-group leader. After the group is reaped this
    /// is the released last leader.
    pub fn leader(&self) -> ThreadIndex {
        self.leader
    }

    /// Returns the state of a thread, or `None` if it was never created.
    pub fn thread_state(&self, thread: ThreadIndex) -> Option<TaskState> {
        self.tasks.get(thread.0).map(|task| task.state)
    }

    /// Returns whether a thread has a SIGKILL pending, or `None` if it was
    /// never created.
    pub fn sigkill_pending(&self, thread: ThreadIndex) -> Option<bool> {
        self.tasks.get(thread.0).map(|task| task.sigkill_pending)
    }

    /// Returns the `struct pid` a thread holds, or `None` if the thread was
    /// never created or has been released.
    pub fn pid_of(&self, thread: ThreadIndex) -> Option<PidIndex> {
        let task = self.tasks.get(thread.0)?;
        (task.state != TaskState::Released).then_some(task.pid)
    }

    /// Returns the task that holds a `struct pid` (`pid_task(pid,
    /// PIDTYPE_PID)`), or `None` if that task has been released.
    pub fn task_of(&self, pid: PidIndex) -> Option<ThreadIndex> {
        self.tasks
            .iter()
            .position(|task| task.pid == pid && task.state != TaskState::Released)
            .map(ThreadIndex)
    }

    /// Returns whether the parent has reaped the thread group.
    pub fn is_reaped(&self) -> bool {
        self.tasks
            .iter()
            .all(|task| task.state == TaskState::Released)
    }

    /// Returns the thread in execve, if an execve is in progress.
    pub fn exec_thread(&self) -> Option<ThreadIndex> {
        self.exec.map(|exec| exec.thread)
    }

    /// Returns the old TIDs of subthreads whose exec completed: each such pid
    /// was held by the old leader until it was released.
    pub fn exec_old_tids(&self) -> &[PidIndex] {
        &self.exec_old_tids
    }

    /// Returns whether any task of the group is running.
    pub fn any_running(&self) -> bool {
        self.tasks
            .iter()
            .any(|task| task.state == TaskState::Running)
    }

    /// Returns the open pidfds in opening order.
    pub fn pidfds(&self) -> impl Iterator<Item = PidfdInfo> + '_ {
        self.pidfds
            .iter()
            .enumerate()
            .map(|(index, pidfd)| PidfdInfo {
                fd: FdId(index),
                pid: pidfd.pid,
                kind: pidfd.kind,
                seen_readable: pidfd.seen_readable,
            })
    }

    /// Returns an open pidfd, or `None` if no pidfd has that id.
    pub fn pidfd(&self, fd: FdId) -> Option<PidfdInfo> {
        self.pidfds().nth(fd.0)
    }

    /// Returns the readiness `pidfd_poll` reports for a pidfd under `rule`, or
    /// `None` if no pidfd has that id.
    pub fn poll(&self, rule: Rule, fd: FdId) -> Option<Readiness> {
        let pidfd = self.pidfds.get(fd.0)?;
        Some(self.poll_pid(rule, pidfd.pid, pidfd.kind))
    }

    /// Returns the readiness `pidfd_poll` reports under `rule` for a pidfd of
    /// `kind` that holds `pid`.
    ///
    /// The kernel looks up the task with `pid_task(pid, PIDTYPE_PID)`:
    ///
    /// - No task (released): POLLIN|POLLHUP, or only POLLIN before Linux 6.9.
    /// - The task has not exited: nothing.
    /// - The task has exited: POLLIN if the rule's test passes. Before 6.9 and
    ///   for process pidfds, the test is `thread_group_empty(task)`. On 6.9 to
    ///   6.14 a `PIDFD_THREAD` pidfd passes always. From 6.15 the test is
    ///   `!delay_group_leader(task)`: a leader passes only once it is the
    ///   last task of its group, any other task passes.
    pub fn poll_pid(&self, rule: Rule, pid: PidIndex, kind: PidfdKind) -> Readiness {
        let Some(thread) = self.task_of(pid) else {
            return if rule.has_pollhup() {
                Readiness::HANGUP
            } else {
                Readiness::READABLE
            };
        };

        if self.tasks[thread.0].state != TaskState::Zombie {
            return Readiness::NONE;
        }

        let group_empty = self.live_task_count() == 1;
        let is_leader = thread == self.leader;
        let reports = match rule {
            Rule::NoThreadPidfd => group_empty,
            Rule::Legacy => kind == PidfdKind::Thread || group_empty,
            Rule::Fixed => !is_leader || group_empty,
        };
        if reports {
            Readiness::READABLE
        } else {
            Readiness::NONE
        }
    }

    /// Returns every action valid in this state under `rule`, in a fixed
    /// order. `OpenPidfd` is listed for every pid with a task and every kind
    /// the rule supports, and `Poll` for every open pidfd, including polls
    /// that would change nothing.
    pub fn valid_actions(&self, rule: Rule) -> Vec<Action> {
        let mut actions = Vec::new();
        self.candidate_actions(rule, &mut actions);
        actions.retain(|action| self.apply(rule, *action).is_ok());
        actions
    }

    /// Pushes every action that names an existing thread, pid or pidfd, valid
    /// or not, in a fixed order.
    pub(crate) fn candidate_actions(&self, rule: Rule, actions: &mut Vec<Action>) {
        actions.push(Action::SpawnThread);

        for index in 0..self.tasks.len() {
            actions.push(Action::ThreadExit {
                thread: ThreadIndex(index),
            });
        }

        actions.push(Action::LeaderExit);
        actions.push(Action::KillGroup);

        for index in 0..self.tasks.len() {
            actions.push(Action::HandleSigkill {
                thread: ThreadIndex(index),
            });
        }
        for index in 0..self.tasks.len() {
            actions.push(Action::ExecStart {
                thread: ThreadIndex(index),
            });
        }

        actions.push(Action::ExecSwapPids);
        actions.push(Action::ExecReleaseOldLeader);
        actions.push(Action::ExecFinish);
        actions.push(Action::Reap);

        for index in 0..self.tasks.len() {
            actions.push(Action::OpenPidfd {
                pid: PidIndex(index),
                kind: PidfdKind::Process,
            });
            if rule.has_thread_pidfd() {
                actions.push(Action::OpenPidfd {
                    pid: PidIndex(index),
                    kind: PidfdKind::Thread,
                });
            }
        }

        for index in 0..self.pidfds.len() {
            actions.push(Action::Poll { fd: FdId(index) });
        }
    }

    /// Applies one kernel step and returns the next state, or the reason the
    /// step is impossible in this state.
    pub fn apply(&self, rule: Rule, action: Action) -> Result<Self, ActionError> {
        let mut next = self.clone();
        match action {
            Action::SpawnThread => next.spawn_thread()?,
            Action::ThreadExit { thread } => next.thread_exit(thread)?,
            Action::LeaderExit => next.leader_exit()?,
            Action::KillGroup => next.kill_group()?,
            Action::HandleSigkill { thread } => next.handle_sigkill(thread)?,
            Action::ExecStart { thread } => next.exec_start(thread)?,
            Action::ExecSwapPids => next.exec_swap_pids()?,
            Action::ExecReleaseOldLeader => next.exec_release_old_leader()?,
            Action::ExecFinish => next.exec_finish()?,
            Action::Reap => next.reap()?,
            Action::OpenPidfd { pid, kind } => {
                next.open_pidfd(rule, pid, kind)?;
            }
            Action::Poll { fd } => {
                let readiness = self.poll(rule, fd).ok_or(ActionError::NoSuchPidfd(fd))?;
                if readiness.readable {
                    next.pidfds[fd.0].seen_readable = true;
                }
            }
        }
        Ok(next)
    }

    /// Describes an action in words, as taken from this state. The
    /// description names the threads and pids involved; it does not check
    /// that the action is valid.
    pub fn describe(&self, rule: Rule, action: Action) -> String {
        match action {
            Action::SpawnThread => {
                let new = self.tasks.len();
                format!("a running thread creates thread {new} (clone with CLONE_THREAD), holding pid {new}")
            }
            Action::ThreadExit { thread } => {
                format!("{thread} calls SYS_exit and is released at once (a subthread auto-reaps)")
            }
            Action::LeaderExit => {
                let subthreads = self.live_task_count().saturating_sub(1);
                if subthreads > 0 {
                    format!(
                        "leader {} calls SYS_exit and becomes a zombie while {subthreads} subthread(s) run",
                        self.leader
                    )
                } else {
                    format!("leader {} calls SYS_exit and becomes a zombie", self.leader)
                }
            }
            Action::KillGroup => "the parent sends SIGKILL to the thread group".to_string(),
            Action::HandleSigkill { thread } => {
                let aborts_exec = self
                    .exec
                    .is_some_and(|exec| exec.thread == thread && exec.phase == ExecPhase::KillingOthers);
                if thread == self.leader {
                    format!("leader {thread} handles SIGKILL and becomes a zombie")
                } else if aborts_exec {
                    format!("{thread} handles SIGKILL in execve, which fails, and is released")
                } else {
                    format!("{thread} handles SIGKILL, exits and is released")
                }
            }
            Action::ExecStart { thread } => {
                format!("{thread} calls execve; de_thread sends SIGKILL to every other thread")
            }
            Action::ExecSwapPids => match self.exec {
                Some(exec) => format!(
                    "{} takes over the leader's {} and becomes the leader; old leader {} now holds {}",
                    exec.thread,
                    self.tasks[self.leader.0].pid,
                    self.leader,
                    self.tasks[exec.thread.0].pid
                ),
                None => "an exec'ing thread swaps pids with the leader".to_string(),
            },
            Action::ExecReleaseOldLeader => match self.exec.map(|exec| exec.phase) {
                Some(ExecPhase::PidsSwapped { old_leader }) => format!(
                    "old leader {old_leader} is released, so {} has no task; execve completes",
                    self.tasks[old_leader.0].pid
                ),
                _ => "the old leader is released".to_string(),
            },
            Action::ExecFinish => format!(
                "execve in leader {} completes: no other thread is left",
                self.leader
            ),
            Action::Reap => format!(
                "the parent reaps the thread group, releasing leader {}",
                self.leader
            ),
            Action::OpenPidfd { pid, kind } => format!(
                "the watcher opens {} ({kind}) on {pid}",
                FdId(self.pidfds.len())
            ),
            Action::Poll { fd } => match self.poll(rule, fd) {
                Some(readiness) => format!("the watcher polls {fd}: {readiness}"),
                None => format!("the watcher polls {fd}"),
            },
        }
    }

    /// Counts tasks that are still in the thread group (not released).
    fn live_task_count(&self) -> usize {
        self.tasks
            .iter()
            .filter(|task| task.state != TaskState::Released)
            .count()
    }

    fn task(&self, thread: ThreadIndex) -> Result<&Task, ActionError> {
        self.tasks
            .get(thread.0)
            .ok_or(ActionError::NoSuchThread(thread))
    }

    /// Checks that a thread can make a system call of its own: it runs, has
    /// no SIGKILL pending and is not inside execve.
    fn check_can_act(&self, thread: ThreadIndex) -> Result<(), ActionError> {
        let task = self.task(thread)?;
        if task.state != TaskState::Running {
            return Err(ActionError::NotRunning {
                thread,
                state: task.state,
            });
        }
        if task.sigkill_pending {
            return Err(ActionError::SigkillPending(thread));
        }
        if self.exec.is_some_and(|exec| exec.thread == thread) {
            return Err(ActionError::InExecve(thread));
        }
        Ok(())
    }

    fn spawn_thread(&mut self) -> Result<(), ActionError> {
        let can_clone =
            (0..self.tasks.len()).any(|index| self.check_can_act(ThreadIndex(index)).is_ok());
        if !can_clone {
            return Err(ActionError::NoThreadCanAct);
        }

        let index = self.tasks.len();
        self.tasks.push(Task {
            pid: PidIndex(index),
            state: TaskState::Running,
            sigkill_pending: false,
        });
        Ok(())
    }

    fn thread_exit(&mut self, thread: ThreadIndex) -> Result<(), ActionError> {
        self.check_can_act(thread)?;
        if thread == self.leader {
            return Err(ActionError::IsLeader(thread));
        }

        self.tasks[thread.0].state = TaskState::Released;
        Ok(())
    }

    fn leader_exit(&mut self) -> Result<(), ActionError> {
        self.check_can_act(self.leader)?;

        self.tasks[self.leader.0].state = TaskState::Zombie;
        Ok(())
    }

    fn kill_group(&mut self) -> Result<(), ActionError> {
        if self.group_exit {
            return Err(ActionError::GroupExiting);
        }
        if !self.any_running() {
            return Err(ActionError::NoRunningThread);
        }

        self.group_exit = true;
        for task in &mut self.tasks {
            if task.state == TaskState::Running {
                task.sigkill_pending = true;
            }
        }
        Ok(())
    }

    fn handle_sigkill(&mut self, thread: ThreadIndex) -> Result<(), ActionError> {
        let task = self.task(thread)?;
        if task.state != TaskState::Running || !task.sigkill_pending {
            return Err(ActionError::NoSigkillPending(thread));
        }

        // After the pid swap, de_thread goes on to release the old leader
        // without checking for signals, so the SIGKILL waits until then.
        if let Some(exec) = self.exec {
            if exec.thread == thread {
                if let ExecPhase::PidsSwapped { .. } = exec.phase {
                    return Err(ActionError::InExecve(thread));
                }
                self.exec = None;
            }
        }

        self.tasks[thread.0].sigkill_pending = false;
        self.tasks[thread.0].state = if thread == self.leader {
            TaskState::Zombie
        } else {
            TaskState::Released
        };
        Ok(())
    }

    fn exec_start(&mut self, thread: ThreadIndex) -> Result<(), ActionError> {
        self.check_can_act(thread)?;
        if let Some(exec) = self.exec {
            return Err(ActionError::ExecInProgress(exec.thread));
        }

        self.exec = Some(Exec {
            thread,
            phase: ExecPhase::KillingOthers,
        });
        for (index, task) in self.tasks.iter_mut().enumerate() {
            if index != thread.0 && task.state == TaskState::Running {
                task.sigkill_pending = true;
            }
        }
        Ok(())
    }

    /// Checks that every task other than the exec'ing thread and the leader
    /// has been released.
    fn others_released(&self, exec_thread: ThreadIndex) -> bool {
        self.tasks.iter().enumerate().all(|(index, task)| {
            index == exec_thread.0 || index == self.leader.0 || task.state == TaskState::Released
        })
    }

    fn exec_swap_pids(&mut self) -> Result<(), ActionError> {
        let exec = self.exec.ok_or(ActionError::NoExec)?;
        if exec.phase != ExecPhase::KillingOthers || exec.thread == self.leader {
            return Err(ActionError::ExecNotReady(exec.thread));
        }
        let leader_zombie = self.tasks[self.leader.0].state == TaskState::Zombie;
        if !leader_zombie || !self.others_released(exec.thread) {
            return Err(ActionError::ExecNotReady(exec.thread));
        }

        let old_leader = self.leader;
        let leader_pid = self.tasks[old_leader.0].pid;
        self.tasks[old_leader.0].pid = self.tasks[exec.thread.0].pid;
        self.tasks[exec.thread.0].pid = leader_pid;
        self.leader = exec.thread;
        self.exec = Some(Exec {
            thread: exec.thread,
            phase: ExecPhase::PidsSwapped { old_leader },
        });
        Ok(())
    }

    fn exec_release_old_leader(&mut self) -> Result<(), ActionError> {
        let exec = self.exec.ok_or(ActionError::NoExec)?;
        let ExecPhase::PidsSwapped { old_leader } = exec.phase else {
            return Err(ActionError::ExecNotReady(exec.thread));
        };

        self.tasks[old_leader.0].state = TaskState::Released;
        let old_tid = self.tasks[old_leader.0].pid;
        if !self.exec_old_tids.contains(&old_tid) {
            self.exec_old_tids.push(old_tid);
        }
        self.exec = None;
        Ok(())
    }

    fn exec_finish(&mut self) -> Result<(), ActionError> {
        let exec = self.exec.ok_or(ActionError::NoExec)?;
        if exec.thread != self.leader
            || exec.phase != ExecPhase::KillingOthers
            || !self.others_released(exec.thread)
        {
            return Err(ActionError::ExecNotReady(exec.thread));
        }

        self.exec = None;
        Ok(())
    }

    fn reap(&mut self) -> Result<(), ActionError> {
        let leader_state = self.tasks[self.leader.0].state;
        if leader_state == TaskState::Released {
            return Err(ActionError::AlreadyReaped);
        }
        let others = self.live_task_count() - 1;
        if leader_state != TaskState::Zombie || others > 0 {
            return Err(ActionError::NotReapable {
                leader_state,
                others,
            });
        }

        self.tasks[self.leader.0].state = TaskState::Released;
        Ok(())
    }

    /// Opens a pidfd as `pidfd_open` does, and returns its id.
    pub(crate) fn open_pidfd(
        &mut self,
        rule: Rule,
        pid: PidIndex,
        kind: PidfdKind,
    ) -> Result<FdId, OpenError> {
        if kind == PidfdKind::Thread && !rule.has_thread_pidfd() {
            return Err(OpenError::ThreadPidfdUnsupported(rule));
        }
        if pid.0 >= self.tasks.len() {
            return Err(OpenError::NoSuchPid(pid));
        }
        let thread = self.task_of(pid).ok_or(OpenError::PidHasNoTask(pid))?;

        // pidfd_open without PIDFD_THREAD requires pid_has_task(pid,
        // PIDTYPE_TGID), which only the leader's pid satisfies.
        if kind == PidfdKind::Process && thread != self.leader {
            return Err(OpenError::NotLeader(pid));
        }

        self.pidfds.push(Pidfd {
            pid,
            kind,
            seen_readable: false,
        });
        Ok(FdId(self.pidfds.len() - 1))
    }
}
