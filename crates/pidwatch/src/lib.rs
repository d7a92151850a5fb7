//! Watch any Linux process or thread exit, and get each exit reported
//! exactly once.
//!
//! pidwatch watches processes and single threads, your children or not,
//! through pidfds. It reports each exit once, with the Linux 6.15 semantics
//! for thread-group leaders on every kernel it supports, and says with each
//! event how it was obtained.
//!
//! ```
//! use pidwatch::{EventKind, Target, Watcher};
//!
//! let mut child = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn()?;
//! let mut watcher = Watcher::new()?;
//! let id = watcher.add(Target::child(&child)?)?;
//! while let Some(event) = watcher.next_event(None)? {
//!     if event.target == id && event.kind == EventKind::Exited {
//!         // For its own child the watcher reads the status without reaping.
//!         assert_eq!(event.status.and_then(|status| status.code()), Some(7));
//!         break;
//!     }
//! }
//! child.wait()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Events
//!
//! A [`Watcher`] reports two [`Event`]s per target, in this order:
//!
//! - [`EventKind::Exited`], once, when the target has exited. A process has
//!   exited when its whole thread group has: it is then a zombie, or gone.
//!   A target that has already exited when it is added is reported at once.
//! - [`EventKind::Reaped`], once, when the parent has reaped it and no task
//!   uses its PID any more. A reaped task's pidfd reports `POLLHUP` from
//!   Linux 6.9 on. Before that, the watcher sees the reap in `/proc`, by the
//!   start time it read when the target was added.
//!
//! Each event carries the target's [`Identity`] (kind, PID, TID and pidfs
//! inode), the wait status as a [`std::process::ExitStatus`] when it is
//! known, and its [`Source`]. The status of a child of the watching process
//! is read with `waitid(WNOWAIT)` as soon as it exits, which leaves the
//! child for its owner to reap. Any other task's status is known after the
//! reap, through `PIDFD_INFO_EXIT` (Linux 6.15), so it comes with the
//! reaped event.
//!
//! # Processes and threads
//!
//! [`Target::process`] watches a thread group. [`Target::thread`] watches
//! one thread, by TID. For a thread-group leader (TID = PID), pidwatch
//! applies the semantics that Linux 6.15 (and 6.12.31) gave `PIDFD_THREAD`
//! pidfds:
//!
//! - A leader that exits early, with `SYS_exit` while other threads of its
//!   group still run, stays a zombie, and its exit is reported only once
//!   the whole group is gone.
//! - When a subthread calls `execve`, it takes over the leader's PID; the
//!   old leader's exit is not reported, and the target goes on watching the
//!   task that now has the PID.
//!
//! [`check`] runs these scenarios on the running kernel (`pidwatch check`).
//!
//! # Kernel regimes
//!
//! The [`sys::Features`] probe calls each kernel feature once; pidwatch
//! never reads the kernel version. The [`Regime`](watch::Regime) it finds
//! decides how each target is watched, and [`Event::source`] says which way
//! each event came:
//!
//! | regime | kernels | processes | leader as a thread | other threads | `source` |
//! | --- | --- | --- | --- | --- | --- |
//! | `fixed` | 6.15+, 6.12.31+ | process pidfd | `PIDFD_THREAD` pidfd | `PIDFD_THREAD` pidfd | `kernel` |
//! | `legacy-thread-pidfd` | 6.9 to 6.14, 6.12 before 6.12.31 | process pidfd | process pidfd on the same struct pid | `PIDFD_THREAD` pidfd | `verified` for the leader |
//! | `no-thread-pidfd` | 5.3 to 6.8 | process pidfd | process pidfd | `/proc` polled, plus the group's pidfd | `verified` for the leader, `polled` for threads |
//! | `no-pidfd` | before 5.3, or `pidfd_open` blocked by seccomp | `/proc` polled | `/proc` polled | `/proc` polled | `polled` |
//!
//! - `kernel`: the target's own pidfd reported the exit, and the kernel's
//!   rule is the one pidwatch promises.
//! - `verified`: the kernel's `PIDFD_THREAD` pidfd of a leader would report
//!   the leader's exit while other threads of its group run (6.9 to 6.14),
//!   or there is no `PIDFD_THREAD` (before 6.9). The watcher waits on a
//!   process pidfd of the same struct pid instead, which reports only once
//!   the whole group has exited, and follows the PID through a subthread's
//!   `execve`.
//! - `polled`: the watcher read `/proc` in rounds, from 10 ms up to 500 ms
//!   apart ([`watch::Builder::max_poll_interval`]). The start time read when
//!   the target was added rules out a reused PID. An event comes up to one
//!   round late, and [`Watcher::poll_timeout`] tells event loops when the
//!   next round is due.
//!
//! Before Linux 6.9 (no pidfs, no `POLLHUP` after reap) reaps are seen in
//! `/proc`, and `PID:INODE` targets fail with [`Error::Unsupported`]. When
//! the descriptor limit is reached, the watcher raises the soft
//! `RLIMIT_NOFILE` to the hard limit, then polls the targets it cannot open
//! a pidfd for ([`watch::Builder::strict`] makes that an error instead).
//! `pidwatch check` shows the running kernel's regime and runs the
//! scenarios.

//! # Integration
//!
//! - **Event loops**: [`Watcher`] implements [`AsFd`](std::os::fd::AsFd).
//!   Its epoll descriptor becomes readable when a target may have an event.
//!   Then call [`Watcher::next_event`] with a zero timeout until it returns
//!   `None`, and call it again after [`Watcher::poll_timeout`] even without
//!   readiness. Each call drains every ready epoll entry, so the descriptor
//!   is quiet again when it returns `None`.
//! - **tokio** (feature `tokio`): `tokio::AsyncWatcher` registers that
//!   descriptor with the caller's runtime, so waiting needs no thread of its
//!   own. It has `next_event().await`, a `futures_core::Stream` of events,
//!   and `wait(target).await`, and all three are cancellation safe.
//! - **Targets**: from a [`std::process::Child`] ([`Target::child`]), from a
//!   pidfd that you own ([`Target::from_pidfd`], also `TryFrom<OwnedFd>`),
//!   from a `PID` or `PID:INODE` string ([`str::parse`], [`Target::parse`]),
//!   and from a TID of a known process ([`Target::thread_of`]).
//! - **serde**: [`Event`], [`EventKind`], [`Identity`], [`Source`] and
//!   [`TargetId`] implement `Serialize`. Exit statuses encode as
//!   `{"code": N}` or `{"signal": N, "core_dumped": B}`. serde is not
//!   optional, because the crate's command-line tool and its model crate
//!   need it anyway.
//! - **Errors**: one [`Error`] type, whose variants say what to do next. It
//!   converts into [`std::io::Error`].
//!
//! # Cargo features
//!
//! - `tokio`: the `tokio` module (`tokio` with `net`, `rt` and `time`, and
//!   `futures-core`).
//!
//! # Layout
//!
//! - [`watch`]: the watcher, targets and events.
//! - [`sys`]: one thin wrapper per system call, the `/proc` readers and the
//!   feature probe.
//! - [`check`]: the conformance scenarios behind `pidwatch check`.
//! - [`helper`]: the scriptable test process the scenarios drive.

#![warn(missing_docs)]

pub mod check;
pub mod error;
pub mod helper;
mod interop;
mod serialize;
pub mod sys;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod watch;

pub use error::{Error, Result};
pub use watch::{Event, EventKind, Identity, Source, Target, TargetId, TargetKind, Watcher};
