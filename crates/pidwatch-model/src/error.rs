//! Errors for actions that are impossible in the current state.

use thiserror::Error;

use crate::kernel::{FdId, PidIndex, TaskState, ThreadIndex};
use crate::rule::Rule;

/// `ESRCH` as defined by Linux on every architecture.
pub const ESRCH: i32 = 3;

/// `EINVAL` as defined by Linux on every architecture.
pub const EINVAL: i32 = 22;

/// Reason an action is impossible in the current state.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ActionError {
    /// The thread index names no thread created so far.
    #[error("{0} does not exist")]
    NoSuchThread(ThreadIndex),
    /// The thread has exited, so it cannot make a system call.
    #[error("{thread} is {state}, not running")]
    NotRunning {
        /// The thread named by the action.
        thread: ThreadIndex,
        /// Its current state.
        state: TaskState,
    },
    /// The thread has a SIGKILL pending and can only exit.
    #[error("{0} has SIGKILL pending and can only exit")]
    SigkillPending(ThreadIndex),
    /// The thread is inside execve.
    #[error("{0} is inside execve")]
    InExecve(ThreadIndex),
    /// No thread can make a system call: every thread has exited, has a
    /// SIGKILL pending or is inside execve.
    #[error("no thread can create a thread: every thread has exited, has SIGKILL pending or is inside execve")]
    NoThreadCanAct,
    /// The thread is the thread-group leader, which exits with a leader exit
    /// instead.
    #[error("{0} is the thread-group leader; use a leader exit instead")]
    IsLeader(ThreadIndex),
    /// The thread group has already been sent SIGKILL.
    #[error("the thread group has already been sent SIGKILL")]
    GroupExiting,
    /// Every thread has exited, so no thread can receive a signal.
    #[error("no thread of the group is running")]
    NoRunningThread,
    /// The thread has no SIGKILL pending (or has already exited).
    #[error("{0} has no SIGKILL pending")]
    NoSigkillPending(ThreadIndex),
    /// Another execve is already in progress in the thread group.
    #[error("{0} is already inside execve")]
    ExecInProgress(ThreadIndex),
    /// The step continues an execve, but none is in progress.
    #[error("no execve is in progress")]
    NoExec,
    /// The execve in progress is not at the point where this step happens.
    #[error("the execve in {0} is not ready for this step")]
    ExecNotReady(ThreadIndex),
    /// The parent cannot reap yet: a wait call reaps a thread group only
    /// when the leader is a zombie and every other thread is released.
    #[error("the thread group cannot be reaped: the leader is {leader_state} and {others} other thread(s) are not released")]
    NotReapable {
        /// State of the thread-group leader.
        leader_state: TaskState,
        /// Number of other threads not yet released.
        others: usize,
    },
    /// The parent has already reaped the thread group.
    #[error("the thread group has already been reaped")]
    AlreadyReaped,
    /// The pidfd id names no pidfd opened so far.
    #[error("{0} does not exist")]
    NoSuchPidfd(FdId),
    /// `pidfd_open` fails.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// Reason `pidfd_open` fails.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The thread index names no thread created so far.
    #[error("{0} does not exist")]
    NoSuchThread(ThreadIndex),
    /// The thread has been released, so its TID names no task (`ESRCH`).
    #[error("{0} has been released; pidfd_open fails with ESRCH")]
    ThreadReleased(ThreadIndex),
    /// The pid index names no `struct pid` created so far.
    #[error("{0} does not exist")]
    NoSuchPid(PidIndex),
    /// The `struct pid` has no task any more (`ESRCH`).
    #[error("{0} has no task; pidfd_open fails with ESRCH")]
    PidHasNoTask(PidIndex),
    /// A process pidfd was requested on a pid that is not the TGID of a
    /// thread group (`EINVAL` before Linux 6.18, `ENOENT` from 6.18;
    /// [`OpenError::errno`] returns the older `EINVAL`).
    #[error("{0} is not held by a thread-group leader; a process pidfd needs PIDFD_THREAD here, and pidfd_open fails with EINVAL (ENOENT from Linux 6.18)")]
    NotLeader(PidIndex),
    /// The kernel regime has no `PIDFD_THREAD` flag (`EINVAL`).
    #[error("PIDFD_THREAD does not exist under the {0} rule; pidfd_open fails with EINVAL")]
    ThreadPidfdUnsupported(Rule),
}

impl OpenError {
    /// Returns the errno `pidfd_open` sets for this failure. A thread or pid
    /// index that was never created maps to `ESRCH`, like a TID that names no
    /// task.
    pub const fn errno(&self) -> i32 {
        match self {
            OpenError::NoSuchThread(_)
            | OpenError::ThreadReleased(_)
            | OpenError::NoSuchPid(_)
            | OpenError::PidHasNoTask(_) => ESRCH,
            OpenError::NotLeader(_) | OpenError::ThreadPidfdUnsupported(_) => EINVAL,
        }
    }
}

/// A rule name that [`Rule::from_str`](std::str::FromStr::from_str) does not
/// know.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown rule {0:?}; expected one of: no-thread-pidfd, legacy, fixed")]
pub struct ParseRuleError(pub String);
