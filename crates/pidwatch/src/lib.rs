//! Watch any Linux process or thread exit through pidfds, and report each
//! exit exactly once.
//!
//! # Semantics
//!
//! A [`Watcher`] holds one pidfd per target on one epoll instance. It
//! reports [`EventKind::Exited`] once per target, when the kernel says the
//! target has exited, and [`EventKind::Reaped`] once more when its parent has
//! reaped it (Linux 6.9 and later, where a reaped task's pidfd also reports
//! `POLLHUP`). A target that has already exited when it is added (a zombie)
//! is reported at once.
//!
//! - A **process** target exits when its whole thread group has exited.
//! - A **thread** target ([`Target::thread`], a `PIDFD_THREAD` pidfd) exits
//!   when that thread exits. For a thread-group leader, Linux 6.15 (and
//!   6.12.31) defer the exit until every thread of the group is gone, and
//!   report none when a subthread's `execve` takes over the leader's PID.
//!   [`check`] runs those scenarios and shows whether the running kernel
//!   has that behaviour.
//!
//! Exit statuses come from `PIDFD_INFO_EXIT` after the reap (Linux 6.15),
//! or, for a child of the watching process, from `waitid(WNOWAIT)` as soon
//! as it exits. Identities carry the pidfs inode (Linux 6.9), which names a
//! process for the life of the system: see [`sys::PidInode`].
//!
//! # Layout
//!
//! - [`sys`]: one thin wrapper per system call, and the feature probe.
//! - [`watch`]: the watcher.
//! - [`check`]: the conformance scenarios behind `pidwatch check`.
//! - [`helper`]: the scriptable test process the scenarios drive.

pub mod check;
pub mod error;
pub mod helper;
pub mod sys;
pub mod watch;

pub use error::{Error, Result};
pub use watch::{Event, EventKind, Identity, Source, Target, TargetId, TargetKind, Watcher};
