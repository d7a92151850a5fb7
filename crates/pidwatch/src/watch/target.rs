//! Watch targets, and how each kind gets its pidfd.

use std::io;
use std::os::fd::OwnedFd;
use std::process::Child;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::sys::{self, Feature, Features, Opened, PidInode, PidfdFlags};

/// Something to watch: a process or a single thread.
#[derive(Debug)]
#[non_exhaustive]
pub enum Target {
    /// A process (thread group), by PID, optionally pinned by inode. Its
    /// exit is reported once the whole thread group has exited.
    Process(PidInode),

    /// A single thread, by TID, optionally pinned by inode. A thread-group
    /// leader watched this way reports its exit only once the whole thread
    /// group is gone, and not at all when another thread's exec takes over
    /// its PID (the Linux 6.15 semantics of `PIDFD_THREAD`).
    Thread(PidInode),

    /// A process pidfd the caller already holds.
    ProcessPidfd(OwnedFd),

    /// A `PIDFD_THREAD` pidfd the caller already holds.
    ThreadPidfd(OwnedFd),
}

impl Target {
    /// Returns a target for the process with this PID.
    pub fn process(pid: u32) -> Self {
        Target::Process(PidInode { pid, inode: None })
    }

    /// Returns a target for the thread with this TID.
    pub fn thread(tid: u32) -> Self {
        Target::Thread(PidInode {
            pid: tid,
            inode: None,
        })
    }

    /// Returns a target for a child started with [`std::process::Command`].
    ///
    /// The child cannot be reaped while it is borrowed here, so its PID
    /// still names it when the pidfd is opened.
    pub fn child(child: &Child) -> Result<Self> {
        let pid = child.id();
        let pidfd = sys::pidfd_open(pid, PidfdFlags::empty())
            .map_err(|err| open_error(err, "PID", pid, false))?;
        Ok(Target::ProcessPidfd(pidfd))
    }
}

/// Whether a target is a whole process or one thread.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A thread group, watched through a process pidfd.
    Process,
    /// One thread, watched through a `PIDFD_THREAD` pidfd.
    Thread,
}

/// A target's identity: the numbers and the pidfs inode it had when it was
/// added.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize)]
pub struct Identity {
    /// Process or thread.
    pub kind: TargetKind,
    /// The PID of the process (the thread-group ID for a thread), when known.
    pub pid: Option<u32>,
    /// The TID, for a thread target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    /// The pidfs inode (Linux 6.9), which names the task for the life of
    /// the system.
    pub inode: Option<u64>,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let number = match (self.kind, self.tid, self.pid) {
            (TargetKind::Thread, Some(tid), _) => {
                write!(f, "thread ")?;
                tid
            }
            (_, _, Some(pid)) => {
                write!(f, "process ")?;
                pid
            }
            _ => return write!(f, "pidfd target"),
        };
        match self.inode {
            Some(inode) => write!(f, "{number}:{inode}"),
            None => write!(f, "{number}"),
        }
    }
}

/// A target with its pidfd open and its identity read.
pub(crate) struct OpenTarget {
    pub pidfd: OwnedFd,
    pub identity: Identity,
}

/// Opens the pidfd for `target` and reads its identity.
pub(crate) fn open(target: Target) -> Result<OpenTarget> {
    let features = Features::get();
    let nonblock = if features.has(Feature::PidfdNonblock) {
        PidfdFlags::PIDFD_NONBLOCK
    } else {
        PidfdFlags::empty()
    };

    let (pidfd, kind, requested) = match target {
        Target::Process(requested) => {
            let pidfd = open_pinned(requested, nonblock, "PID")?;
            (pidfd, TargetKind::Process, Some(requested))
        }
        Target::Thread(requested) => {
            if !features.has(Feature::PidfdThread) {
                return Err(unsupported(Feature::PidfdThread));
            }
            // NOTE: Linux 6.9 to 6.14 (and 6.12 before 6.12.31) report a
            // leader's exit as soon as it is a zombie, even while subthreads
            // live. The watcher trusts the kernel, so on those kernels a
            // thread target on a leader can report that exit early.
            let pidfd = open_pinned(requested, nonblock | PidfdFlags::PIDFD_THREAD, "TID")?;
            (pidfd, TargetKind::Thread, Some(requested))
        }
        Target::ProcessPidfd(pidfd) => (pidfd, TargetKind::Process, None),
        Target::ThreadPidfd(pidfd) => (pidfd, TargetKind::Thread, None),
    };

    let identity = identify(&pidfd, kind, requested);
    Ok(OpenTarget { pidfd, identity })
}

/// Opens a pidfd for `requested`, checking its inode when one is given.
fn open_pinned(requested: PidInode, flags: PidfdFlags, what: &'static str) -> Result<OwnedFd> {
    let thread = flags.contains(PidfdFlags::PIDFD_THREAD);
    match sys::open_checked(requested, flags) {
        Ok(Opened::Pidfd { pidfd, .. }) => Ok(pidfd),
        Ok(Opened::Reused { current_inode }) => Err(Error::Reused {
            target: requested,
            current_inode,
        }),
        Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(Error::Unsupported {
            capability: "checking a PID:INODE",
            since: Feature::PidfsInode.since(),
            reason: "pidfds are anonymous inodes on this kernel, so an inode cannot be checked"
                .to_owned(),
        }),
        Err(err) => Err(open_error(err, what, requested.pid, thread)),
    }
}

/// Maps a `pidfd_open` failure to the error a caller can act on.
pub fn open_error(err: io::Error, what: &'static str, id: u32, thread: bool) -> Error {
    match err.raw_os_error() {
        Some(libc::ESRCH) => Error::NotFound { what, id },

        // A non-leader TID without PIDFD_THREAD: EINVAL before Linux 6.18,
        // ENOENT since. /proc shows which case it is.
        Some(libc::EINVAL | libc::ENOENT) if !thread => match sys::procfs::tgid_of(id) {
            Ok(Some(tgid)) if tgid != id => Error::NotAProcess {
                tid: id,
                tgid: Some(tgid),
            },
            Ok(None) => Error::NotFound { what, id },
            _ => Error::io(format!("pidfd_open({id}) failed"), err),
        },

        Some(libc::ENOSYS) => unsupported_because(Feature::PidfdOpen, &err),
        Some(libc::EPERM | libc::EACCES) => Error::PermissionDenied {
            what,
            id,
            source: err,
        },
        Some(libc::EMFILE | libc::ENFILE) => Error::TooManyOpenFiles {
            limit: rustix::process::getrlimit(rustix::process::Resource::Nofile)
                .current
                .unwrap_or(u64::MAX),
        },
        _ => Error::io(
            format!(
                "pidfd_open({id}{}) failed",
                if thread { ", PIDFD_THREAD" } else { "" }
            ),
            err,
        ),
    }
}

fn unsupported(feature: Feature) -> Error {
    let reason = Features::get()
        .probes()
        .iter()
        .find(|probe| probe.feature == feature)
        .and_then(|probe| probe.reason.clone())
        .unwrap_or_else(|| "the probe failed".to_owned());
    Error::Unsupported {
        capability: feature.name(),
        since: feature.since(),
        reason,
    }
}

fn unsupported_because(feature: Feature, err: &io::Error) -> Error {
    Error::Unsupported {
        capability: feature.name(),
        since: feature.since(),
        reason: err.to_string(),
    }
}

/// Reads who a pidfd refers to: from `PIDFD_GET_INFO` where the kernel has
/// it (6.13), else from the requested numbers and `/proc`.
fn identify(pidfd: &OwnedFd, kind: TargetKind, requested: Option<PidInode>) -> Identity {
    let inode = sys::pidfd_inode(pidfd).ok().flatten();
    let info = sys::pidfd_get_info(pidfd, sys::PidfdInfoMask::PIDFD_INFO_PID).ok();

    let (pid, tid) = match (info.and_then(|i| i.pid), info.and_then(|i| i.tgid)) {
        (Some(task), Some(tgid)) => (Some(tgid), Some(task)),
        _ => {
            let number = requested.map(|r| r.pid);
            let tgid = match (kind, number) {
                (TargetKind::Thread, Some(tid)) => sys::procfs::tgid_of(tid).ok().flatten(),
                _ => number,
            };
            (tgid, number)
        }
    };

    Identity {
        kind,
        pid,
        tid: if kind == TargetKind::Thread {
            tid
        } else {
            None
        },
        inode,
    }
}
