//! An executable specification of how Linux reports the exit of tasks and
//! thread groups through pidfds, with an exhaustive explorer.
//!
//! The crate makes no system calls. It models one thread group: its tasks,
//! the `struct pid` each task holds, the pidfds a watcher opens on those
//! pids, and the parent that reaps the group. [`KernelState::poll_pid`]
//! computes what `pidfd_poll` (fs/pidfs.c) returns in every state under each
//! [`Rule`]:
//!
//! - The `struct pid` has no task (released, or reaped): POLLIN|POLLHUP,
//!   but POLLIN only before Linux 6.9.
//! - The task is a zombie and the pidfd is a `PIDFD_THREAD` pidfd, or the
//!   task's thread group is empty: POLLIN. From Linux 6.15 (and 6.12.31) a
//!   `PIDFD_THREAD` pidfd on the thread-group leader also waits for the
//!   group to be empty.
//! - Otherwise: nothing.
//!
//! # Kernel steps
//!
//! [`Action`] lists the steps the explorer interleaves. A non-leader thread
//! that exits is released in the same step, because it auto-reaps. A leader
//! that exits while subthreads run stays a zombie until the parent reaps
//! the group, and the parent can reap only once the leader is a zombie and
//! every other thread is released. An execve goes through `de_thread`
//! (fs/exec.c) in separate steps:
//!
//! 1. The exec'ing thread sends SIGKILL to every other thread. Each killed
//!    thread exits in its own step: a subthread is released, the leader
//!    becomes a zombie.
//! 2. An exec'ing subthread waits until the other subthreads are released
//!    and the leader is a zombie.
//! 3. The exec'ing subthread and the leader swap `struct pid`s: the exec'ing
//!    thread now holds the TGID and is the leader, the old leader holds the
//!    exec'ing thread's old TID.
//! 4. The old leader is released, so the old TID has no task and its pidfds
//!    hang up.
//!
//! An exec by the leader kills the other threads and swaps nothing.
//!
//! # Exploration
//!
//! [`explore`] runs the stateright breadth-first checker on one thread over
//! [`PidfdModel`] and checks the properties named in [`properties`]. On
//! [`Rule::Legacy`] it finds the premature leader exit (a `PIDFD_THREAD`
//! pidfd on the leader reports while a subthread runs) and the vanishing
//! notification (a subthread execs and takes over the leader's pid, so the
//! pidfd stops reporting). [`Rule::Fixed`] satisfies all four invariants.
//! [`Rule::NoThreadPidfd`] violates only the hang-up invariant, because those
//! kernels report a reaped process with POLLIN alone.
//!
//! Stateright expresses the whole model: the watcher's memory of a readable
//! pidfd is part of the state, so "a notification never vanishes" is an
//! invariant over single states. Stateright's checker supplies the verdicts
//! and the state count. Its BFS checker keeps the last state it finds for
//! each property rather than the first, so `explore` runs a second
//! breadth-first search of its own over the same [`PidfdModel`] to report
//! the shortest counterexample.
//!
//! The default [`Bounds`] allow 3 threads and 3 pidfds; every reachable
//! state is within 40 steps of the initial one, so the exploration is
//! complete.
//!
//! # Simulation
//!
//! [`Simulation`] runs user-level actions (each a whole system call) on the
//! same state machine, for comparison with a probe on a real kernel.
//!
//! ```
//! use pidwatch_model::{PidfdKind, Readiness, Rule, Simulation, ThreadIndex};
//!
//! let mut sim = Simulation::new(Rule::Legacy);
//! let thread = sim.spawn_thread()?;
//! let leader_fd = sim.open_pidfd(ThreadIndex(0), PidfdKind::Thread)?;
//!
//! sim.leader_exit()?;
//! assert_eq!(sim.poll(leader_fd)?, Readiness::READABLE);
//!
//! sim.exec(thread)?;
//! assert_eq!(sim.poll(leader_fd)?, Readiness::NONE);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod explore;
mod kernel;
mod model;
pub mod properties;
mod rule;
mod sim;

pub use error::{ActionError, OpenError, ParseRuleError, EINVAL, ESRCH};
pub use explore::{
    explore, Bounds, Exploration, PidfdReadiness, PropertyKind, PropertyReport, ThreadSnapshot,
    TraceStep, Verdict,
};
pub use kernel::{
    Action, FdId, KernelState, PidIndex, PidfdInfo, PidfdKind, TaskState, ThreadIndex,
};
pub use model::PidfdModel;
pub use rule::{Readiness, Rule, POLLHUP, POLLIN};
pub use sim::{Outcome, Simulation, UserAction};

/// The stateright crate, re-exported so callers can run their own checker on
/// [`PidfdModel`] with the same version.
pub use stateright;
