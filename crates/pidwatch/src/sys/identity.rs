//! Process identity through pidfs inodes, and the `PID:INODE` notation.
//!
//! Since Linux 6.9, pidfds live on pidfs and each `struct pid` gets an inode
//! number that is never reused while the system runs (on 64-bit kernels), so
//! `PID:INODE` names one process without PID-reuse ambiguity. util-linux
//! tools (`kill`, `waitpid`, `lsfd`) accept and print the same form. Before
//! 6.9 pidfds are anonymous inodes that all share one inode number, so there
//! is no identity to read.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::str::FromStr;

use super::pidfd::{pidfd_open, PidfdFlags};

/// `PID_FS_MAGIC` from `<linux/magic.h>`: the `f_type` of pidfs.
///
/// ```
/// let pidfd = pidwatch::sys::pidfd_open(std::process::id(), Default::default())?;
/// let statfs = rustix::fs::fstatfs(&pidfd)?;
/// let on_pidfs = statfs.f_type as i64 == pidwatch::sys::identity::PID_FS_MAGIC;
/// println!("pidfds live on pidfs: {on_pidfs}");
/// # Ok::<(), std::io::Error>(())
/// ```
pub const PID_FS_MAGIC: i64 = 0x5049_4446;

/// Returns the pidfs inode number of `pidfd`, or `None` when the pidfd is an
/// anonymous inode (kernels before 6.9), which carries no identity.
///
/// ```
/// use pidwatch::sys::{pidfd_inode, pidfd_open, PidfdFlags};
///
/// let pidfd = pidfd_open(std::process::id(), PidfdFlags::empty())?;
/// match pidfd_inode(&pidfd)? {
///     Some(inode) => println!("this process is {}:{inode}", std::process::id()),
///     None => println!("no pidfs before Linux 6.9"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pidfd_inode(pidfd: impl AsFd) -> io::Result<Option<u64>> {
    let statfs = rustix::fs::fstatfs(pidfd.as_fd())?;
    if statfs.f_type as i64 != PID_FS_MAGIC {
        return Ok(None);
    }
    let stat = rustix::fs::fstat(pidfd.as_fd())?;
    Ok(Some(stat.st_ino))
}

/// A PID or TID, optionally pinned to one process by its pidfs inode.
///
/// ```
/// use pidwatch::sys::PidInode;
///
/// let pinned: PidInode = "1234:56789".parse()?;
/// assert_eq!(pinned, PidInode { pid: 1234, inode: Some(56789) });
/// assert_eq!(pinned.to_string(), "1234:56789");
/// # Ok::<(), pidwatch::sys::identity::ParsePidError>(())
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, PartialOrd, Ord)]
pub struct PidInode {
    /// The PID (or TID) in the caller's PID namespace.
    pub pid: u32,
    /// The pidfs inode number, when known.
    pub inode: Option<u64>,
}

/// A `PID[:INODE]` string that does not parse.
///
/// ```
/// let err = "12:".parse::<pidwatch::sys::PidInode>().unwrap_err();
/// assert!(err.to_string().starts_with(r#"invalid PID "12:""#));
/// ```
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct ParsePidError {
    what: &'static str,
    input: String,
    reason: String,
}

impl ParsePidError {
    /// Returns the text that failed to parse.
    ///
    /// ```
    /// let err = pidwatch::sys::parse_pid("x1", "PID").unwrap_err();
    /// assert_eq!(err.input(), "x1");
    /// ```
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// The largest PID Linux can hand out (`PID_MAX_LIMIT` on 64-bit kernels is
/// 4,194,304); anything above cannot be a task.
///
/// ```
/// assert!(pidwatch::sys::parse_pid("4194305", "PID").is_err());
/// ```
pub const PID_MAX_LIMIT: u32 = 4_194_304;

/// Parses a decimal PID or TID in `1..=PID_MAX_LIMIT`.
///
/// ```
/// use pidwatch::sys::parse_pid;
///
/// assert_eq!(parse_pid("42", "TID"), Ok(42));
/// assert!(parse_pid("0", "PID").is_err());
/// assert!(parse_pid("-1", "PID").is_err());
/// ```
pub fn parse_pid(input: &str, what: &'static str) -> Result<u32, ParsePidError> {
    let error = |reason: &str| ParsePidError {
        what,
        input: input.to_owned(),
        reason: reason.to_owned(),
    };

    let example = format!("give a {what} such as 1234");
    if input.is_empty() {
        return Err(error(&format!("it is empty; {example}")));
    }
    if !input.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error(&format!(
            "expected a positive decimal number; {example}"
        )));
    }
    let too_large = || {
        error(&format!(
            "it is larger than the maximum {PID_MAX_LIMIT}, so no task can have it; {example}"
        ))
    };
    let value: u64 = input.parse().map_err(|_| too_large())?;
    if value == 0 {
        let task = if what == "TID" { "thread" } else { "process" };
        return Err(error(&format!(
            "0 is not a {task}; give a {what} of 1 or more"
        )));
    }
    if value > u64::from(PID_MAX_LIMIT) {
        return Err(too_large());
    }
    Ok(value as u32)
}

impl PidInode {
    /// Parses `PID` or `PID:INODE`, where `what` names the value in errors
    /// ("PID", "TID").
    ///
    /// ```
    /// use pidwatch::sys::PidInode;
    ///
    /// let thread = PidInode::parse("4321", "TID")?;
    /// assert_eq!(thread.inode, None);
    /// # Ok::<(), pidwatch::sys::identity::ParsePidError>(())
    /// ```
    pub fn parse(input: &str, what: &'static str) -> Result<Self, ParsePidError> {
        let Some((pid, inode)) = input.split_once(':') else {
            return Ok(PidInode {
                pid: parse_pid(input, what)?,
                inode: None,
            });
        };

        let hint = if what == "TID" {
            "use TID or TID:INODE as `pidwatch id --thread TID` prints it"
        } else {
            "use PID or PID:INODE as `pidwatch id PID` prints it"
        };
        let inode_error = |reason: &str| ParsePidError {
            what,
            input: input.to_owned(),
            reason: format!("{reason}; {hint}"),
        };
        if pid.is_empty() {
            return Err(inode_error(&format!("the {what} before ':' is missing")));
        }
        let pid = parse_pid(pid, what).map_err(|err| ParsePidError {
            input: input.to_owned(),
            ..err
        })?;
        if inode.is_empty() {
            return Err(inode_error("the inode after ':' is missing"));
        }
        if !inode.bytes().all(|b| b.is_ascii_digit()) {
            return Err(inode_error("the inode after ':' must be a decimal number"));
        }
        let inode = inode
            .parse::<u64>()
            .map_err(|_| inode_error("the inode after ':' does not fit in 64 bits"))?;
        if inode == 0 {
            return Err(inode_error("inode 0 names no task"));
        }
        Ok(PidInode {
            pid,
            inode: Some(inode),
        })
    }
}

impl FromStr for PidInode {
    type Err = ParsePidError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        PidInode::parse(input, "PID")
    }
}

impl fmt::Display for PidInode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inode {
            Some(inode) => write!(f, "{}:{}", self.pid, inode),
            None => write!(f, "{}", self.pid),
        }
    }
}

/// The outcome of opening a pidfd for a `PID:INODE`.
///
/// ```
/// use pidwatch::sys::{open_checked, Opened, PidInode, PidfdFlags};
///
/// let me = PidInode { pid: std::process::id(), inode: None };
/// assert!(matches!(open_checked(me, PidfdFlags::empty())?, Opened::Pidfd { .. }));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Opened {
    /// The pidfd refers to the requested task.
    Pidfd {
        /// The new pidfd.
        pidfd: OwnedFd,
        /// Its pidfs inode (`None` before Linux 6.9).
        inode: Option<u64>,
    },
    /// The PID now belongs to a task with a different inode: the requested
    /// one has exited and its PID was reused.
    Reused {
        /// Inode of the task that has the PID now.
        current_inode: u64,
    },
}

/// Opens a pidfd for `target` and, when it names an inode, checks that the
/// task behind the PID is still that one.
///
/// An inode cannot be checked on kernels before 6.9 (no pidfs): that fails
/// with `EOPNOTSUPP`, because opening without the check could wait on the
/// wrong process.
///
/// ```
/// use pidwatch::sys::{open_checked, pidfd_inode, pidfd_open, Opened, PidInode, PidfdFlags};
///
/// let pid = std::process::id();
/// let Some(inode) = pidfd_inode(pidfd_open(pid, PidfdFlags::empty())?)? else {
///     return Ok(()); // No pidfs before Linux 6.9.
/// };
/// let wrong = PidInode { pid, inode: Some(inode + 1) };
/// assert!(matches!(open_checked(wrong, PidfdFlags::empty())?, Opened::Reused { .. }));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open_checked(target: PidInode, flags: PidfdFlags) -> io::Result<Opened> {
    let pidfd = match pidfd_open(target.pid, flags) {
        Ok(pidfd) => pidfd,
        // The number of a requested process now names a non-leader thread
        // (EINVAL before Linux 6.18, ENOENT since): compare that thread's
        // inode, so a reused PID reads as "exited" and not as "a thread".
        Err(err)
            if target.inode.is_some()
                && !flags.contains(PidfdFlags::PIDFD_THREAD)
                && matches!(err.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) =>
        {
            let current = pidfd_open(target.pid, flags | PidfdFlags::PIDFD_THREAD)
                .ok()
                .and_then(|thread| pidfd_inode(&thread).ok().flatten());
            return match current {
                Some(current) if Some(current) != target.inode => Ok(Opened::Reused {
                    current_inode: current,
                }),
                _ => Err(err),
            };
        }
        Err(err) => return Err(err),
    };
    let inode = pidfd_inode(&pidfd)?;

    match (target.inode, inode) {
        (Some(expected), Some(current)) if expected != current => Ok(Opened::Reused {
            current_inode: current,
        }),
        (Some(_), None) => Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
        _ => Ok(Opened::Pidfd { pidfd, inode }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_plain_pid() {
        assert_eq!(
            PidInode::parse("42", "PID").unwrap(),
            PidInode {
                pid: 42,
                inode: None
            }
        );
    }

    #[test]
    fn parse_pid_with_inode() {
        let parsed = PidInode::parse("42:9001", "PID").unwrap();
        assert_eq!(parsed.pid, 42);
        assert_eq!(parsed.inode, Some(9001));
        assert_eq!(parsed.to_string(), "42:9001");
    }

    #[test]
    fn parse_rejects_bad_input() {
        let cases = [
            ("", "empty"),
            ("0", "0 is not a process"),
            ("-1", "positive decimal"),
            ("+1", "positive decimal"),
            ("2147483648", "larger than the maximum"),
            ("9223372036854775808", "larger than the maximum"),
            ("abc", "positive decimal"),
            ("12:", "inode after ':' is missing"),
            (":12", "the PID before ':' is missing"),
            ("12:0", "inode 0 names no task"),
            ("12:x", "decimal number"),
            ("12:99999999999999999999", "64 bits"),
            ("1 2", "positive decimal"),
        ];
        for (input, expected) in cases {
            let err = PidInode::parse(input, "PID").unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{input:?}: {err} does not contain {expected:?}"
            );
            assert_eq!(err.input(), input);
        }
    }

    #[test]
    fn inode_of_own_pidfd_is_stable() {
        let me = std::process::id();
        let first = pidfd_open(me, PidfdFlags::empty()).unwrap();
        let second = pidfd_open(me, PidfdFlags::empty()).unwrap();
        let Some(inode) = pidfd_inode(&first).unwrap() else {
            eprintln!("skipped: pidfs (Linux 6.9) is missing, so pidfds carry no inode identity");
            return;
        };
        assert_eq!(pidfd_inode(&second).unwrap(), Some(inode));
    }
}
