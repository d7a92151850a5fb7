//! Watch targets, and how each kind gets its pidfd.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;

use serde::Serialize;

use super::poll::{Polled, Scope, Spare};
use super::strategy::{plan, Plan, Regime};
use super::Source;
use crate::error::{Error, Result};
use crate::sys::{self, Feature, Features, Opened, PidInode, PidfdFlags};

/// Something to watch: a process or a single thread.
///
/// ```
/// use pidwatch::{Target, TargetKind, Watcher};
///
/// let mut child = std::process::Command::new("sleep").arg("10").spawn()?;
/// let targets = [
///     Target::process(child.id()),
///     Target::parse(&child.id().to_string(), TargetKind::Process)?,
///     Target::child(&child)?,
/// ];
/// let mut watcher = Watcher::new()?;
/// for target in targets {
///     watcher.add(target)?;
/// }
/// assert_eq!(watcher.len(), 3);
/// child.kill()?;
/// child.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Target {
    /// A process (thread group), by PID, optionally pinned by inode. Its
    /// exit is reported once the whole thread group has exited.
    Process(PidInode),

    /// A single thread, by TID, optionally pinned by inode. A thread-group
    /// leader watched this way reports its exit only once the whole thread
    /// group is gone, and not at all when another thread's exec takes over
    /// its PID (the Linux 6.15 semantics of `PIDFD_THREAD`), on every
    /// kernel.
    Thread(PidInode),

    /// A process pidfd the caller already holds.
    ProcessPidfd(OwnedFd),

    /// A `PIDFD_THREAD` pidfd the caller already holds.
    ThreadPidfd(OwnedFd),
}

impl Target {
    /// Returns a target for the process with this PID.
    ///
    /// ```
    /// let target = pidwatch::Target::process(1234);
    /// assert!(matches!(target, pidwatch::Target::Process(id) if id.pid == 1234));
    /// ```
    pub fn process(pid: u32) -> Self {
        Target::Process(PidInode { pid, inode: None })
    }

    /// Returns a target for the thread with this TID.
    ///
    /// ```
    /// // The thread-group leader of this process, watched as a thread: it exits
    /// // only with the whole group.
    /// let target = pidwatch::Target::thread(std::process::id());
    /// let mut watcher = pidwatch::Watcher::new()?;
    /// watcher.add(target)?;
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
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
    ///
    /// ```
    /// let mut child = std::process::Command::new("true").spawn()?;
    /// let mut watcher = pidwatch::Watcher::new()?;
    /// watcher.add(pidwatch::Target::child(&child)?)?;
    /// let exited = watcher.next_event(None)?.expect("the child exits");
    /// assert_eq!(exited.status.and_then(|status| status.code()), Some(0));
    /// child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn child(child: &Child) -> Result<Self> {
        let pid = child.id();
        match sys::pidfd_open(pid, PidfdFlags::empty()) {
            Ok(pidfd) => Ok(Target::ProcessPidfd(pidfd)),
            // No pidfd_open (before 5.3, or blocked by a sandbox): the PID of
            // an unreaped child is as safe, and the watcher polls it.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::ENOSYS | libc::EPERM | libc::EACCES)
                ) =>
            {
                Ok(Target::process(pid))
            }
            Err(err) => Err(open_error(err, "PID", pid, false)),
        }
    }
}

/// Whether a target is a whole process or one thread.
///
/// ```
/// use pidwatch::{Target, TargetKind, Watcher};
///
/// let mut watcher = Watcher::new()?;
/// let id = watcher.add(Target::thread(std::process::id()))?;
/// assert_eq!(watcher.identity(id).map(|identity| identity.kind), Some(TargetKind::Thread));
/// # Ok::<(), pidwatch::Error>(())
/// ```
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
///
/// ```
/// use pidwatch::{Target, Watcher};
///
/// let mut watcher = Watcher::new()?;
/// let me = std::process::id();
/// let identity = watcher.add(Target::process(me)).map(|id| watcher.identity(id))?.expect("watched");
/// // "process PID:INODE" (or "process PID" before Linux 6.9).
/// assert!(identity.to_string().starts_with(&format!("process {me}")));
/// # Ok::<(), pidwatch::Error>(())
/// ```
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

/// A target with its pidfds open, its plan chosen and its identity read.
pub(crate) struct OpenTarget {
    pub identity: Identity,
    /// The target's own pidfd, when it has one.
    pub pidfd: Option<OwnedFd>,
    /// A process pidfd registered in epoll in place of the target's own
    /// ([`Plan::ProcessPidfd`]), or that reports the group's exit for a
    /// polled thread ([`Plan::PollThread`]).
    pub stand_in: Option<OwnedFd>,
    /// The task as `/proc` shows it: the primary watch for a polled target,
    /// and the way to see the reap of a pidfd target on kernels without
    /// `POLLHUP` after reap.
    pub polled: Option<Polled>,
    pub plan: Plan,
    pub source: Source,
}

impl OpenTarget {
    /// Returns the descriptor to register with epoll.
    pub fn registered(&self) -> Option<&OwnedFd> {
        match self.plan {
            Plan::OwnPidfd => self.pidfd.as_ref(),
            Plan::ProcessPidfd | Plan::PollThread => self.stand_in.as_ref(),
            Plan::PollProcess => None,
        }
    }
}

/// The watcher settings and state that [`open`] uses.
pub(crate) struct Context {
    /// The regime the watcher was asked for, or `None` to use the kernel's.
    pub forced: Option<Regime>,
    /// Fail rather than poll when the descriptor limit is reached.
    pub strict: bool,
    /// Whether the kernel reports a reap with `POLLHUP`.
    pub reaps_visible: bool,
    /// Whether the watcher has already warned that it polls for lack of
    /// descriptors.
    pub warned_nofile: bool,
    /// The descriptor kept back for `/proc` reads at the limit.
    pub spare: Spare,
}

impl Context {
    /// Returns the regime for a target. The thread-group probe runs only
    /// when the result depends on it.
    fn regime(&self, leader_thread: bool) -> Regime {
        if let Some(regime) = self.forced {
            return regime;
        }
        let features = Features::get();
        match Regime::without_fix_probe(features) {
            Some(regime) => regime,
            None if leader_thread => Regime::with_fix(features.thread_group_fix()),
            // Without a leader thread target, the legacy and fixed regimes
            // watch alike.
            None => Regime::Fixed,
        }
    }
}

/// Opens what `target` needs in the watcher's regime and reads its
/// identity.
pub(crate) fn open(target: Target, context: &mut Context) -> Result<OpenTarget> {
    let opened = match target {
        Target::Process(requested) => open_process(requested, context)?,
        Target::Thread(requested) => open_thread(requested, context)?,
        Target::ProcessPidfd(pidfd) => {
            let identity = identify(&pidfd, TargetKind::Process, None);
            own_pidfd(pidfd, identity)
        }
        Target::ThreadPidfd(pidfd) => open_thread_pidfd(pidfd, context)?,
    };
    Ok(with_reap_watch(opened, context))
}

/// Watches a target through its own pidfd.
fn own_pidfd(pidfd: OwnedFd, identity: Identity) -> OpenTarget {
    OpenTarget {
        identity,
        pidfd: Some(pidfd),
        stand_in: None,
        polled: None,
        plan: Plan::OwnPidfd,
        source: Source::Kernel,
    }
}

fn open_process(requested: PidInode, context: &mut Context) -> Result<OpenTarget> {
    let regime = context.regime(false);
    if plan(regime, TargetKind::Process, true) == Plan::PollProcess {
        return poll_process(requested, TargetKind::Process, context);
    }
    match open_pinned(requested, PidfdFlags::empty(), "PID", context)? {
        Some(pidfd) => {
            let identity = identify(&pidfd, TargetKind::Process, Some(requested));
            Ok(own_pidfd(pidfd, identity))
        }
        None => poll_process(requested, TargetKind::Process, context),
    }
}

fn open_thread(requested: PidInode, context: &mut Context) -> Result<OpenTarget> {
    let tid = requested.pid;
    let tgid = context
        .spare
        .retry(|| sys::procfs::tgid_of(tid))
        .map_err(|err| Error::io(format!("reading /proc/{tid}/status"), err))?
        .ok_or(Error::NotFound {
            what: "TID",
            id: tid,
        })?;
    let leader = tgid == tid;
    let regime = context.regime(leader);

    match plan(regime, TargetKind::Thread, leader) {
        Plan::OwnPidfd => {
            let flags = PidfdFlags::PIDFD_THREAD;
            match open_pinned(requested, flags, "TID", context)? {
                Some(pidfd) => {
                    // The thread may be gone before identify() reads it: the
                    // thread group read from /proc before the open still
                    // names it.
                    let mut identity = identify(&pidfd, TargetKind::Thread, Some(requested));
                    identity.pid = identity.pid.or(Some(tgid));
                    Ok(own_pidfd(pidfd, identity))
                }
                None => poll_thread(requested, tgid, leader, context),
            }
        }
        Plan::ProcessPidfd => {
            // Pin the thread first where PIDFD_THREAD exists, so that the
            // process pidfd can be checked to be on the same struct pid.
            let thread = if regime >= Regime::LegacyThreadPidfd {
                open_pinned(requested, PidfdFlags::PIDFD_THREAD, "TID", context)?
            } else {
                None
            };
            let pinned = match &thread {
                Some(pidfd) => PidInode {
                    pid: tid,
                    inode: sys::pidfd_inode(pidfd).ok().flatten(),
                },
                None => requested,
            };
            match open_pinned(pinned, PidfdFlags::empty(), "TID", context) {
                Ok(Some(process)) => {
                    let identity = Identity {
                        tid: Some(tid),
                        ..identify(&process, TargetKind::Thread, Some(requested))
                    };
                    tracing::debug!(%identity, %regime, "watching a thread-group leader through a process pidfd");
                    Ok(OpenTarget {
                        identity,
                        pidfd: thread,
                        stand_in: Some(process),
                        polled: None,
                        plan: Plan::ProcessPidfd,
                        source: Source::Verified,
                    })
                }
                Ok(None) => poll_thread(requested, tgid, leader, context),
                // The leader was reaped between the two opens: its thread
                // pidfd reports that by itself.
                Err(err) if err.is_gone() && thread.is_some() => {
                    let pidfd = thread.expect("checked above");
                    let identity = identify(&pidfd, TargetKind::Thread, Some(requested));
                    Ok(own_pidfd(pidfd, identity))
                }
                Err(err) => Err(err),
            }
        }
        Plan::PollThread | Plan::PollProcess => poll_thread(requested, tgid, leader, context),
    }
}

/// Watches a `PIDFD_THREAD` pidfd the caller holds. Only a leader's needs a
/// stand-in, found through the PID that the pidfd's fdinfo shows.
fn open_thread_pidfd(pidfd: OwnedFd, context: &mut Context) -> Result<OpenTarget> {
    let identity = identify(&pidfd, TargetKind::Thread, None);
    let tid = identity
        .tid
        .or_else(|| sys::procfs::pidfd_pid(pidfd.as_fd()).ok().flatten());
    let leader = tid.is_some() && tid == identity.pid;
    let Some(tid) = tid.filter(|_| leader) else {
        return Ok(own_pidfd(pidfd, identity));
    };
    if context.regime(true) == Regime::Fixed {
        return Ok(own_pidfd(pidfd, identity));
    }

    let pinned = PidInode {
        pid: tid,
        inode: sys::pidfd_inode(&pidfd).ok().flatten(),
    };
    match open_pinned(pinned, PidfdFlags::empty(), "TID", context) {
        Ok(Some(process)) => Ok(OpenTarget {
            identity,
            pidfd: Some(pidfd),
            stand_in: Some(process),
            polled: None,
            plan: Plan::ProcessPidfd,
            source: Source::Verified,
        }),
        // Gone, or no descriptor left: the caller's pidfd still reports the
        // leader's reap.
        Ok(None) | Err(_) => Ok(own_pidfd(pidfd, identity)),
    }
}

/// Watches a thread group by polling `/proc`.
fn poll_process(
    requested: PidInode,
    kind: TargetKind,
    context: &mut Context,
) -> Result<OpenTarget> {
    let pid = requested.pid;
    reject_inode(
        requested,
        if kind == TargetKind::Thread {
            "TID"
        } else {
            "PID"
        },
    )?;

    let (polled, _) = context
        .spare
        .retry(|| Polled::read(pid, Scope::Group))
        .map_err(|err| Error::io(format!("reading /proc/{pid}/stat"), err))?
        .ok_or(Error::NotFound {
            what: "PID",
            id: pid,
        })?;
    match context.spare.retry(|| sys::procfs::tgid_of(pid)) {
        Ok(Some(tgid)) if tgid != pid && kind == TargetKind::Process => {
            return Err(Error::NotAProcess {
                tid: pid,
                tgid: Some(tgid),
            })
        }
        Ok(None) => {
            return Err(Error::NotFound {
                what: "PID",
                id: pid,
            })
        }
        _ => {}
    }

    Ok(OpenTarget {
        identity: Identity {
            kind,
            pid: Some(pid),
            tid: (kind == TargetKind::Thread).then_some(pid),
            inode: None,
        },
        pidfd: None,
        stand_in: None,
        polled: Some(polled),
        plan: Plan::PollProcess,
        source: Source::Polled,
    })
}

/// Watches one thread by polling `/proc`, with the group's process pidfd
/// (when one can be had) to hear of the group's exit at once. A leader is
/// watched as its group.
fn poll_thread(
    requested: PidInode,
    tgid: u32,
    leader: bool,
    context: &mut Context,
) -> Result<OpenTarget> {
    if leader {
        return poll_process(requested, TargetKind::Thread, context);
    }
    let tid = requested.pid;
    reject_inode(requested, "TID")?;

    let read = |spare: &mut Spare| {
        spare
            .retry(|| Polled::read(tid, Scope::Thread))
            .map_err(|err| Error::io(format!("reading /proc/{tid}/stat"), err))?
            .ok_or(Error::NotFound {
                what: "TID",
                id: tid,
            })
    };
    let (polled, _) = read(&mut context.spare)?;

    // The group's pidfd, then a second read: if the thread's start time is
    // unchanged, the pidfd was opened while the thread lived in that group.
    let group = if context.regime(false) >= Regime::NoThreadPidfd {
        match open_pinned(
            PidInode {
                pid: tgid,
                inode: None,
            },
            PidfdFlags::empty(),
            "PID",
            context,
        ) {
            Ok(group) => group,
            Err(err) if err.is_gone() => None,
            Err(err) => return Err(err),
        }
    } else {
        None
    };
    let (again, _) = read(&mut context.spare)?;
    if again != polled {
        return Err(Error::NotFound {
            what: "TID",
            id: tid,
        });
    }

    Ok(OpenTarget {
        identity: Identity {
            kind: TargetKind::Thread,
            pid: Some(tgid),
            tid: Some(tid),
            inode: None,
        },
        pidfd: None,
        stand_in: group,
        polled: Some(polled),
        plan: Plan::PollThread,
        source: Source::Polled,
    })
}

/// Rejects a `PID:INODE` target, whose inode cannot be checked without a pidfd.
fn reject_inode(requested: PidInode, what: &'static str) -> Result<()> {
    if requested.inode.is_none() {
        return Ok(());
    }
    Err(Error::Unsupported {
        capability: if what == "TID" {
            "checking a TID:INODE"
        } else {
            "checking a PID:INODE"
        },
        since: Feature::PidfsInode.since(),
        reason:
            "this target is watched through /proc, which has no pidfs inode; give the number alone"
                .to_owned(),
    })
}

/// Reads the start time of a pidfd target on kernels whose pidfds do not
/// report the reap, so the reap can be seen in `/proc` after the exit.
fn with_reap_watch(mut opened: OpenTarget, context: &Context) -> OpenTarget {
    if context.reaps_visible || opened.polled.is_some() {
        return opened;
    }
    let Some(fd) = opened.registered() else {
        return opened;
    };
    let pid = opened
        .identity
        .pid
        .or_else(|| sys::procfs::pidfd_pid(fd.as_fd()).ok().flatten());
    let Some(pid) = pid else {
        return opened;
    };

    // The pidfd was opened first; if it is still quiet after /proc was
    // read, the stat belongs to the task it names. Without POLLHUP a zombie
    // and a reaped task look alike on the pidfd, so a zombie that /proc
    // shows under this PID is taken to be ours.
    // NOTE: a PID reused by a task that is itself a zombie by the time of
    // this read would be mistaken for the target. That needs a reap and a
    // full PID wrap inside one registration.
    let stat = Polled::read(pid, Scope::Group).ok().flatten();
    let quiet = sys::readiness(fd).is_ok_and(|r| !r.exited());
    opened.polled = match stat {
        Some((polled, stat)) if quiet || stat.is_dead() => Some(polled),
        _ => None,
    };
    opened
}

/// Opens a pidfd for `requested`, checking its inode when one is given.
///
/// Returns `Ok(None)` when the descriptor limit is reached even after
/// raising the soft limit and the watcher is not strict: the caller then
/// polls the target.
fn open_pinned(
    requested: PidInode,
    flags: PidfdFlags,
    what: &'static str,
    context: &mut Context,
) -> Result<Option<OwnedFd>> {
    let flags = if Features::get().has(Feature::PidfdNonblock) {
        flags | PidfdFlags::PIDFD_NONBLOCK
    } else {
        flags
    };
    let thread = flags.contains(PidfdFlags::PIDFD_THREAD);

    let mut raised = false;
    loop {
        // Without an inode to check, open_checked's inode read is skipped,
        // and the identity reads the inode once, later.
        let opened = match requested.inode {
            None => sys::pidfd_open(requested.pid, flags)
                .map(|pidfd| Opened::Pidfd { pidfd, inode: None }),
            Some(_) => sys::open_checked(requested, flags),
        };
        match opened {
            Ok(Opened::Pidfd { pidfd, .. }) => return Ok(Some(pidfd)),
            Ok(Opened::Reused { current_inode }) => {
                return Err(Error::Reused {
                    target: requested,
                    current_inode,
                })
            }
            Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                return Err(Error::Unsupported {
                    capability: "checking a PID:INODE",
                    since: Feature::PidfsInode.since(),
                    reason:
                        "pidfds are anonymous inodes on this kernel, so an inode cannot be checked"
                            .to_owned(),
                })
            }
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) && !raised => {
                raised = true;
                if !raise_nofile_limit() {
                    return out_of_descriptors(requested, context);
                }
            }
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) => {
                return out_of_descriptors(requested, context);
            }
            Err(err) => return Err(open_error(err, what, requested.pid, thread)),
        }
    }
}

/// Decides what to do when no descriptor is left for a pidfd.
fn out_of_descriptors(requested: PidInode, context: &mut Context) -> Result<Option<OwnedFd>> {
    let limit = nofile_limit();
    if context.strict || requested.inode.is_some() {
        return Err(Error::TooManyOpenFiles { limit });
    }
    if !context.warned_nofile {
        context.warned_nofile = true;
        tracing::warn!(
            limit,
            "no file descriptor left for a pidfd; watching further targets through /proc"
        );
    }
    Ok(None)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns whether it
/// grew.
fn raise_nofile_limit() -> bool {
    use rustix::process::{getrlimit, setrlimit, Resource};

    let limit = getrlimit(Resource::Nofile);
    let (Some(soft), hard) = (limit.current, limit.maximum) else {
        return false;
    };
    if hard.is_some_and(|hard| hard <= soft) {
        return false;
    }
    let raised = rustix::process::Rlimit {
        current: hard,
        maximum: hard,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = soft, to = ?hard, "raised the soft RLIMIT_NOFILE to the hard limit");
            true
        }
        Err(err) => {
            tracing::debug!(error = %err, "could not raise RLIMIT_NOFILE");
            false
        }
    }
}

fn nofile_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX)
}

/// Maps a `pidfd_open` failure to the error a caller can act on.
///
/// ```
/// use pidwatch::sys::{pidfd_open, PidfdFlags};
/// use pidwatch::watch::open_error;
///
/// let err = pidfd_open(4_194_304, PidfdFlags::empty()).unwrap_err();
/// let err = open_error(err, "PID", 4_194_304, false);
/// assert!(err.is_gone(), "{err}");
/// ```
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
            limit: nofile_limit(),
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
    let inode = inode_of(pidfd);
    if let (TargetKind::Process, Some(requested)) = (kind, requested) {
        // pidfd_open without PIDFD_THREAD succeeded on this number, so it is
        // a thread-group leader's PID: PIDFD_GET_INFO would return it again.
        return Identity {
            kind,
            pid: Some(requested.pid),
            tid: None,
            inode,
        };
    }
    let info = sys::pidfd_get_info(pidfd, sys::PidfdInfoMask::PIDFD_INFO_PID).ok();

    let (pid, tid) = match (info.and_then(|i| i.pid), info.and_then(|i| i.tgid)) {
        (Some(task), Some(tgid)) => (Some(tgid), Some(task)),
        _ => {
            // A pidfd from the caller has no requested number: fdinfo
            // (Linux 5.4) shows it.
            let number = requested
                .map(|r| r.pid)
                .or_else(|| sys::procfs::pidfd_pid(pidfd.as_fd()).ok().flatten());
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

/// Returns the pidfs inode of a pidfd. On a kernel with pidfs (known from
/// the feature probe), one `fstat` is enough; elsewhere there is none.
fn inode_of(pidfd: &OwnedFd) -> Option<u64> {
    if !Features::get().has(Feature::PidfsInode) {
        return None;
    }
    rustix::fs::fstat(pidfd).ok().map(|stat| stat.st_ino)
}
