//! Checks of the targets named on the command line, made before any of them
//! is watched. They reject targets whose exit pidwatch could never see
//! (pidwatch itself, a kernel thread), a thread named as a process, and one
//! PID named in two forms.
//!
//! The checks look at the task behind each number through a pidfd first and
//! through `/proc` second, because a procfs mounted with `hidepid=2` hides
//! other users' processes while `pidfd_open` still reaches them. A target
//! that is gone, or whose `PID:INODE` names a task that has exited, passes
//! unchanged: the watcher reports it as not found or already exited.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;

use pidwatch::sys::{self, procfs, PidInode, PidfdFlags, PidfdInfoMask};

use super::args::WaitArgs;
use super::{Code, Failure};

/// Whether the user named a number as a process or as a thread.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash)]
enum Kind {
    Process,
    Thread,
}

impl Kind {
    /// Returns the word the command line uses for the number.
    fn word(self) -> &'static str {
        match self {
            Kind::Process => "PID",
            Kind::Thread => "TID",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::Thread => "thread",
        }
    }
}

/// The facts the checks read about the task behind one number.
struct Task {
    /// A `PIDFD_THREAD` pidfd (a process pidfd before Linux 6.9), which
    /// pins the task while the checks read it.
    pidfd: OwnedFd,
    /// The thread group the task belongs to, when the kernel or `/proc`
    /// could tell.
    tgid: Option<u32>,
    /// The parent's PID from `PIDFD_GET_INFO` (0 when the parent is outside
    /// this PID namespace).
    ppid: Option<u32>,
}

/// Rejects the targets of `pidwatch wait` that can never be watched as
/// named, with a message that names the value and what to do instead.
///
/// Exact duplicates pass: the caller watches each once. Returns the numbers
/// whose task existed (running or a zombie) during the check, so that a
/// target reaped before the watcher opens it counts as exited rather than
/// as unknown.
pub fn targets(args: &WaitArgs) -> Result<HashSet<u32>, Failure> {
    let own_pid = std::process::id();
    let procfs = procfs_matches_namespace(own_pid);
    let named = args
        .pids
        .iter()
        .map(|id| (Kind::Process, *id))
        .chain(args.threads.iter().map(|id| (Kind::Thread, *id)));

    let mut existed = HashSet::new();
    let mut first_form: HashMap<(Kind, u32), PidInode> = HashMap::new();
    for (kind, id) in named {
        let first = *first_form.entry((kind, id.pid)).or_insert(id);
        if first != id {
            return Err(invalid(format!(
                "{} {} is named twice, as {first} and {id}: name each target once",
                kind.word(),
                id.pid
            )));
        }
        if check(kind, id, own_pid, procfs)? {
            existed.insert(id.pid);
        }
    }
    Ok(existed)
}

fn invalid(message: String) -> Failure {
    Failure::new(Code::Failure, message)
}

/// Returns true when `/proc` shows this process's PID namespace. In a new
/// PID namespace without its own procfs mount, `/proc` shows the parent
/// namespace's numbers, which name other tasks.
fn procfs_matches_namespace(own_pid: u32) -> bool {
    let matches = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str()?.parse::<u32>().ok())
        == Some(own_pid);
    if !matches {
        tracing::info!("/proc belongs to another PID namespace; skipping the checks that read it");
    }
    matches
}

/// Checks one target. `procfs` is true when `/proc` may be read for it.
/// Checks one target; returns whether its task existed, not yet reaped.
fn check(kind: Kind, id: PidInode, own_pid: u32, procfs: bool) -> Result<bool, Failure> {
    let Some(task) = open_task(id, procfs) else {
        return Ok(false);
    };
    let number = id.pid;
    let word = kind.word();

    if task.tgid == Some(own_pid) || number == own_pid {
        let what = if kind == Kind::Process && number == own_pid {
            "pidwatch itself"
        } else {
            "a thread of pidwatch itself"
        };
        return Err(invalid(format!(
            "{word} {id} is {what}, which cannot wait for its own exit: name another {}",
            kind.noun()
        )));
    }

    let stat = if procfs {
        procfs::task_stat(number)
    } else {
        Ok(None)
    };
    match stat {
        Ok(Some(stat)) if stat.is_kernel_thread() => {
            return Err(invalid(format!(
                "{word} {id} is the kernel thread {:?}, which never exits: name a user-space {}",
                stat.comm,
                kind.noun()
            )));
        }
        Ok(Some(_)) => {}
        // The task exists unless it was reaped just now (POLLHUP on its
        // pidfd), so /proc hides it (hidepid).
        Ok(None) | Err(_) if procfs && !reaped(&task.pidfd) => {
            // Kernel threads are kthreadd (PID 2, parent 0) and its children.
            if task.ppid.is_none_or(|ppid| ppid == 0 || ppid == 2) {
                eprintln!(
                    "pidwatch: warning: /proc/{number} is hidden (procfs mounted with hidepid), so pidwatch cannot tell whether {word} {number} is a kernel thread, which would never exit"
                );
            }
        }
        Ok(None) | Err(_) => {}
    }

    if kind == Kind::Process {
        if let Some(tgid) = task.tgid.filter(|tgid| *tgid != number) {
            return Err(invalid(format!(
                "PID {id} is not a process but a thread of process {tgid}: wait for the thread with `--thread {number}`, or for its whole process with PID {tgid}"
            )));
        }
    }

    Ok(!reaped(&task.pidfd))
}

/// Returns true when the task behind `pidfd` has been reaped (Linux 6.9
/// reports `POLLHUP`; older kernels never do).
fn reaped(pidfd: &OwnedFd) -> bool {
    sys::readiness(pidfd).is_ok_and(|readiness| readiness.hangup)
}

/// Opens the task behind `id.pid` and reads its thread group. Returns
/// `None` when no task has the number, or when `id` names an inode and the
/// task behind the number now has another one: the requested target has
/// exited, which the watcher reports.
fn open_task(id: PidInode, procfs: bool) -> Option<Task> {
    let pidfd = sys::pidfd_open(id.pid, PidfdFlags::PIDFD_THREAD)
        .or_else(|_| sys::pidfd_open(id.pid, PidfdFlags::empty()))
        .ok()?;
    if let (Some(expected), Ok(Some(current))) = (id.inode, sys::pidfd_inode(&pidfd)) {
        if expected != current {
            return None;
        }
    }

    let info = sys::pidfd_get_info(&pidfd, PidfdInfoMask::PIDFD_INFO_PID).ok();
    let tgid = match info.and_then(|info| info.tgid) {
        Some(tgid) => Some(tgid),
        None if procfs => procfs::tgid_of(id.pid).ok().flatten(),
        None => None,
    };
    Some(Task {
        pidfd,
        tgid,
        ppid: info.and_then(|info| info.ppid),
    })
}
