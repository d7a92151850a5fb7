//! The error type of the library.

use std::io;

use crate::sys::PidInode;

/// Everything that can go wrong when watching a target.
///
/// The variants are the cases a caller acts on differently; the kernel's
/// error code is kept in [`Error::Io`] for everything else.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No task has this PID or TID: it exited and was reaped, or it never
    /// existed in this PID namespace.
    #[error("no process or thread with {what} {id}: it has exited, or it never existed in this PID namespace")]
    NotFound {
        /// "PID" or "TID".
        what: &'static str,
        /// The number that was looked up.
        id: u32,
    },

    /// The PID exists but belongs to a different process than the inode
    /// names: the requested process has exited and its PID was reused.
    #[error(
        "{target} has exited: {pid} now names another process or thread (inode {current_inode})",
        pid = target.pid
    )]
    Reused {
        /// The `PID:INODE` that was requested.
        target: PidInode,
        /// The inode of the process that has the PID now.
        current_inode: u64,
    },

    /// A non-leader thread was given where a process was expected.
    #[error("{tid} is a thread{}, not a process; watch it as a thread instead", of_process(*tgid))]
    NotAProcess {
        /// The TID that was given.
        tid: u32,
        /// Its thread group, when `/proc` could tell.
        tgid: Option<u32>,
    },

    /// The kernel (or a seccomp sandbox) lacks a capability that this
    /// request needs.
    #[error("{capability} is not available ({reason}); it needs Linux {since} or later")]
    Unsupported {
        /// The kernel's name for the capability.
        capability: &'static str,
        /// The mainline release that introduced it.
        since: &'static str,
        /// The kernel's error, or what the feature probe observed.
        reason: String,
    },

    /// The caller may not open or signal this task.
    #[error("permission denied for {what} {id}: {source}")]
    PermissionDenied {
        /// "PID" or "TID".
        what: &'static str,
        /// The number that was looked up.
        id: u32,
        /// The kernel's error.
        source: io::Error,
    },

    /// The process has no file descriptor left for another pidfd.
    #[error("too many open files: the limit is {limit} descriptors; raise it with `ulimit -n` or watch fewer targets")]
    TooManyOpenFiles {
        /// The soft `RLIMIT_NOFILE` at the time of the failure.
        limit: u64,
    },

    /// Any other system call failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// The failed operation, with the values involved.
        context: String,
        /// The kernel's error.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an `io::Error` with a description of what failed.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Returns true when the target is known to have exited already
    /// ([`Error::NotFound`] or [`Error::Reused`]).
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::Reused { .. })
    }
}

fn of_process(tgid: Option<u32>) -> String {
    tgid.map(|tgid| format!(" of process {tgid}"))
        .unwrap_or_default()
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
