//! Names of the properties the explorer checks, in report order.
//!
//! The first four are invariants (`Always`): [`explore`](crate::explore)
//! reports a shortest counterexample for each one a rule violates. The last
//! three are reachability checks (`Sometimes`) that show the bounds reach the
//! states the invariants are about.

/// Name of the property that a `PIDFD_THREAD` pidfd on the thread-group
/// leader's pid reports no exit while any task of the group runs.
pub const LEADER_THREAD_PIDFD_WAITS: &str =
    "leader thread pidfd never reports while a task of its group is alive";

/// Name of the property that a pidfd a watcher has seen readable stays
/// readable.
pub const NOTIFICATION_NEVER_VANISHES: &str = "exit notification never vanishes";

/// Name of the property that a pidfd whose `struct pid` has no task reports
/// POLLIN|POLLHUP.
pub const RELEASED_TASK_HANGS_UP: &str = "released task's pidfd hangs up";

/// Name of the property that, once a subthread's exec has completed, a pidfd
/// on that thread's old TID reports POLLIN|POLLHUP.
pub const EXEC_OLD_TID_HANGS_UP: &str = "old TID of an exec'ing thread hangs up";

/// Name of the reachability check that a pidfd on the leader's pid can be
/// open while the leader is a zombie and a subthread runs.
pub const PREMATURE_LEADER_EXIT_WATCHED: &str =
    "a pidfd watches the leader's pid after a premature leader exit";

/// Name of the reachability check that an exec by a subthread can complete.
pub const SUBTHREAD_EXEC_COMPLETES: &str = "an exec by a subthread completes";

/// Name of the reachability check that the parent can reap the group.
pub const GROUP_REAPED: &str = "the thread group is reaped";

/// Every property name, in the order [`explore`](crate::explore) reports
/// them.
pub const ALL: [&str; 7] = [
    LEADER_THREAD_PIDFD_WAITS,
    NOTIFICATION_NEVER_VANISHES,
    RELEASED_TASK_HANGS_UP,
    EXEC_OLD_TID_HANGS_UP,
    PREMATURE_LEADER_EXIT_WATCHED,
    SUBTHREAD_EXEC_COMPLETES,
    GROUP_REAPED,
];
