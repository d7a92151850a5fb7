//! The error type of the library.
//!
//! Every fallible call in the crate returns [`Error`]. Its variants are the
//! cases a caller handles differently: the target is gone, the number names
//! the wrong kind of task, the kernel lacks a capability, the caller lacks a
//! permission or a file descriptor. Everything else is [`Error::Io`], with
//! the failed operation and the kernel's error.
//!
//! ```
//! use pidwatch::{Error, Target, Watcher};
//!
//! let mut watcher = Watcher::new()?;
//! // PID_MAX_LIMIT is 4,194,304, so no task can have this PID.
//! match watcher.add(Target::process(4_194_304)) {
//!     Err(Error::NotFound { id, .. }) => println!("{id} has exited or never existed"),
//!     Err(Error::PermissionDenied { .. }) => println!("run as the owner or as root"),
//!     Err(other) => return Err(other),
//!     Ok(id) => println!("watching {id:?}"),
//! }
//! # Ok::<(), pidwatch::Error>(())
//! ```

use std::io;
use std::os::fd::RawFd;

use crate::sys::identity::ParsePidError;
use crate::sys::PidInode;

/// Everything that can go wrong when watching a target.
///
/// The variants are the cases a caller acts on differently; the kernel's
/// error code is kept in [`Error::Io`] for everything else. The enum is
/// `#[non_exhaustive]`: match the variants you handle and keep a fallback
/// arm.
///
/// [`Error`] converts into [`std::io::Error`] with the matching
/// [`std::io::ErrorKind`], so code that returns `io::Result` can use `?`:
///
/// ```
/// fn watch_self() -> std::io::Result<()> {
///     let mut watcher = pidwatch::Watcher::new()?;
///     watcher.add(pidwatch::Target::process(std::process::id()))?;
///     Ok(())
/// }
/// watch_self().unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No task has this PID or TID: it exited and was reaped, or it never
    /// existed in this PID namespace.
    ///
    /// `pidfd_open` fails with `ESRCH`. A zombie is still found: its exit
    /// is reported as an event.
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
    ///
    /// Without `PIDFD_THREAD`, `pidfd_open` accepts only thread-group
    /// leaders: it fails with `EINVAL` (Linux 5.3 to 6.17) or `ENOENT`
    /// (6.18) for any other TID, and `/proc/TID/status` names the thread
    /// group. Watch the TID with [`Target::thread`](crate::Target::thread),
    /// or its process with `Target::process(tgid)`.
    #[error("{tid} is a thread{}, not a process; watch it as a thread instead", of_process(*tgid))]
    NotAProcess {
        /// The TID that was given.
        tid: u32,
        /// Its thread group, when `/proc` could tell.
        tgid: Option<u32>,
    },

    /// A TID that is not a thread of the process it was given with, or a
    /// process pidfd where a thread pidfd was expected.
    ///
    /// The kernel opens a `PIDFD_THREAD` pidfd for any TID, so membership in
    /// a thread group is checked against `PIDFD_GET_INFO` (Linux 6.13) or
    /// `/proc/PID/task/TID`. A TID read from `/proc/PID/task` gets this
    /// error when the thread exited and its number was reused before the
    /// pidfd was opened.
    #[error("{tid} is not a thread of process {pid}{}", belongs_to(*tgid))]
    NotAThread {
        /// The TID that was given.
        tid: u32,
        /// The process it was expected to belong to.
        pid: u32,
        /// The thread group it belongs to instead, when the kernel could
        /// tell.
        tgid: Option<u32>,
    },

    /// A file descriptor given as a pidfd is not one.
    #[error("file descriptor {fd} is not a pidfd ({reason}); pass a descriptor from pidfd_open")]
    NotAPidfd {
        /// The descriptor number.
        fd: RawFd,
        /// The kind of file it is, or the reason the check failed.
        reason: String,
    },

    /// A `PID`, `TID` or `PID:INODE` string that does not parse.
    #[error(transparent)]
    Parse(#[from] ParsePidError),

    /// The kernel (or a seccomp sandbox) lacks a capability that this
    /// request needs.
    #[error("{capability} is not available ({reason}); it needs Linux {since} or later")]
    Unsupported {
        /// The kernel's name for the capability, such as `PIDFD_THREAD`.
        capability: &'static str,
        /// The mainline release that introduced it, such as `"6.9"`.
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
        /// The soft `RLIMIT_NOFILE` at the time of the failure
        /// (`u64::MAX` for no limit).
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
    ///
    /// ```
    /// let err = pidwatch::Error::io("epoll_wait failed", std::io::Error::from_raw_os_error(4));
    /// assert!(err.to_string().starts_with("epoll_wait failed: "));
    /// ```
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Returns true when the target is known to have exited already
    /// ([`Error::NotFound`] or [`Error::Reused`]).
    ///
    /// ```
    /// use pidwatch::{Target, Watcher};
    ///
    /// let mut child = std::process::Command::new("true").spawn()?;
    /// let pid = child.id();
    /// child.wait()?;
    /// match Watcher::new()?.add(Target::process(pid)) {
    ///     Err(err) => assert!(err.is_gone(), "{err}"),
    ///     // Another process took the PID in the meantime.
    ///     Ok(_) => {}
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::NotFound { .. } | Error::Reused { .. })
    }

    /// Returns the [`std::io::ErrorKind`] that fits the error, the one the
    /// conversion into [`std::io::Error`] uses.
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let err = pidwatch::Error::NotFound { what: "PID", id: 42 };
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// ```
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::NotFound { .. } | Error::Reused { .. } => io::ErrorKind::NotFound,
            Error::NotAProcess { .. }
            | Error::NotAThread { .. }
            | Error::NotAPidfd { .. }
            | Error::Parse(_) => io::ErrorKind::InvalidInput,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            Error::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            // EMFILE has no ErrorKind of its own on stable Rust.
            Error::TooManyOpenFiles { .. } => io::ErrorKind::Other,
            Error::Io { source, .. } => source.kind(),
        }
    }
}

impl From<Error> for io::Error {
    /// Converts to an `io::Error` of [`Error::kind`] that keeps the whole
    /// message and the original error as its source.
    fn from(err: Error) -> Self {
        io::Error::new(err.kind(), err)
    }
}

fn of_process(tgid: Option<u32>) -> String {
    tgid.map(|tgid| format!(" of process {tgid}"))
        .unwrap_or_default()
}

fn belongs_to(tgid: Option<u32>) -> String {
    tgid.map(|tgid| format!(": it belongs to process {tgid}"))
        .unwrap_or_else(|| ": it has exited, or it belongs to another process".to_owned())
}

/// The result type of the library.
///
/// ```
/// fn watch(pid: u32) -> pidwatch::Result<pidwatch::TargetId> {
///     pidwatch::Watcher::new()?.add(pidwatch::Target::process(pid))
/// }
/// assert!(watch(std::process::id()).is_ok());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_thread_names_both_processes() {
        let err = Error::NotAThread {
            tid: 12,
            pid: 10,
            tgid: Some(11),
        };
        assert_eq!(
            err.to_string(),
            "12 is not a thread of process 10: it belongs to process 11"
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn io_conversion_keeps_kind_and_message() {
        let err = Error::PermissionDenied {
            what: "PID",
            id: 1,
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        let message = err.to_string();
        let converted = io::Error::from(err);
        assert_eq!(converted.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(converted.to_string(), message);
    }

    #[test]
    fn parse_error_converts() {
        let parse = "12:x".parse::<PidInode>().unwrap_err();
        let err = Error::from(parse);
        assert!(err.to_string().contains("12:x"), "{err}");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
