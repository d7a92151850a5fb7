//! The targets of `pidwatch wait`: the PIDs and TIDs named on the command
//! line, every thread of a `--threads` process, and the processes a
//! selection finds in `/proc`.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use pidwatch::sys::{procfs, PidInode};
use pidwatch::{Error, Identity, Target, TargetId, TargetKind, Watcher};

use super::args::WaitArgs;
use super::output::Watched;
use super::select::{self, Criteria, Pattern, Pick};
use super::{Code, Failure};

/// One target as the user named it on the command line.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash)]
struct Requested {
    kind: TargetKind,
    id: PidInode,
}

impl Requested {
    fn target(self) -> Target {
        match self.kind {
            TargetKind::Process => Target::Process(self.id),
            TargetKind::Thread => Target::Thread(self.id),
        }
    }

    fn identity(self) -> Identity {
        let (pid, tid) = match self.kind {
            TargetKind::Process => (Some(self.id.pid), None),
            TargetKind::Thread => (None, Some(self.id.pid)),
        };
        Identity {
            kind: self.kind,
            pid,
            tid,
            inode: self.id.inode,
        }
    }
}

/// A registered target and what the wait loop tracks about it.
pub struct Entry {
    pub watched: Watched,
    /// Whether the timeout signal goes to this target. The threads that
    /// `--threads` adds are not signalled: their process is.
    pub signalled_on_timeout: bool,
}

/// The targets registered with the watcher.
pub struct Targets {
    pub watcher: Watcher,
    pub entries: HashMap<TargetId, Entry>,
    /// Targets that had exited before they could be watched (`--exited`).
    pub already_exited: usize,
    /// Process and thread numbers already added, to skip duplicates.
    seen: HashSet<(TargetKind, PidInode)>,
    /// Numbers named on the command line whose task existed when they were
    /// validated.
    pub existed_at_start: HashSet<u32>,
}

impl Targets {
    /// Creates an empty set of targets on `watcher`.
    pub fn new(watcher: Watcher) -> Self {
        Targets {
            watcher,
            entries: HashMap::new(),
            already_exited: 0,
            seen: HashSet::new(),
            existed_at_start: HashSet::new(),
        }
    }

    pub fn total(&self) -> usize {
        self.entries.len() + self.already_exited
    }

    /// Adds a target and reads its command name.
    fn add(
        &mut self,
        target: Target,
        fallback: Identity,
        signalled: bool,
    ) -> Result<TargetId, Error> {
        let id = self.watcher.add(target)?;
        let mut identity = self.watcher.identity(id).unwrap_or(fallback);
        // Before Linux 6.13 a pidfd target's numbers come only from the
        // request, so keep the ones the CLI has.
        identity.pid = identity.pid.or(fallback.pid);
        identity.tid = identity.tid.or(fallback.tid);
        let comm = match (self.watcher.pidfd(id), identity.pid) {
            (Some(pidfd), Some(pid)) => select::command_name(pidfd, pid, identity.tid),
            (Some(pidfd), None) => identity
                .tid
                .and_then(|tid| select::command_name(pidfd, tid, None)),
            _ => None,
        };
        self.entries.insert(
            id,
            Entry {
                watched: Watched {
                    identity,
                    comm,
                    added: SystemTime::now(),
                },
                signalled_on_timeout: signalled,
            },
        );
        Ok(id)
    }
}

impl Targets {
    /// Adds a process or thread that a selection found, then checks that
    /// `/proc` still shows the same task, so a PID reused between the scan
    /// and the open is never watched. Returns false for a task that has
    /// exited meanwhile.
    fn add_selected(
        &mut self,
        target: Target,
        fallback: Identity,
        candidate: &select::Candidate,
        group: Option<u32>,
        signalled: bool,
    ) -> Result<bool, Failure> {
        let id = match self.add(target, fallback, signalled) {
            Ok(id) => id,
            Err(err) if err.is_gone() => return Ok(false),
            Err(err) => return Err(Failure::from_error(err)),
        };
        if select::still_same(candidate, group).map_err(Failure::from_error)? {
            return Ok(true);
        }
        tracing::debug!(
            id = candidate.id,
            "the task exited before it could be watched"
        );
        self.watcher.remove(id);
        self.entries.remove(&id);
        Ok(false)
    }
}

/// Adds the PIDs and `--thread` TIDs named on the command line.
pub fn add_requested(
    args: &WaitArgs,
    targets: &mut Targets,
    exited_before: &mut Vec<(Watched, String)>,
) -> Result<(), Failure> {
    let processes = args.pids.iter().map(|id| Requested {
        kind: TargetKind::Process,
        id: *id,
    });
    let threads = args.threads.iter().map(|id| Requested {
        kind: TargetKind::Thread,
        id: *id,
    });
    for requested in processes.chain(threads) {
        if !targets.seen.insert((requested.kind, requested.id)) {
            continue;
        }
        match targets.add(requested.target(), requested.identity(), true) {
            Ok(_) => {}
            // A target seen during validation that is gone now has exited in
            // between, which is what --exited would report.
            Err(err)
                if err.is_gone()
                    && (args.exited || targets.existed_at_start.contains(&requested.id.pid)) =>
            {
                targets.already_exited += 1;
                let watched = Watched {
                    identity: requested.identity(),
                    comm: None,
                    added: SystemTime::now(),
                };
                exited_before.push((watched, err.to_string()));
            }
            Err(err) if err.is_gone() => {
                return Err(Failure::new(
                    Code::Failure,
                    format!("{err}; pass --exited to count it as exited"),
                ));
            }
            Err(err) => return Err(Failure::from_error(err)),
        }
    }
    Ok(())
}

/// Adds each `--threads` process and all of its threads.
pub fn add_all_threads(args: &WaitArgs, targets: &mut Targets) -> Result<(), Failure> {
    for process in &args.all_threads {
        let pid = process.pid;
        // The start time read before the process is added tells, after the
        // thread listing, whether /proc/PID/task still showed this process
        // rather than a newer one that reused the PID.
        let before = procfs::task_stat(pid).map_err(|err| {
            Failure::new(
                Code::Failure,
                format!("cannot read /proc/{pid}/stat: {err}"),
            )
        })?;
        let requested = Requested {
            kind: TargetKind::Process,
            id: *process,
        };
        if targets.seen.insert((TargetKind::Process, *process)) {
            targets
                .add(requested.target(), requested.identity(), true)
                .map_err(Failure::from_error)?;
        }

        let threads = select::threads_of(pid).map_err(|err| {
            Failure::new(
                Code::Failure,
                format!("cannot list the threads of process {pid} in /proc/{pid}/task: {err}"),
            )
        })?;
        let group = select::Candidate {
            id: pid,
            comm: String::new(),
            start_time: before.map_or(0, |stat| stat.start_time),
        };
        if !select::still_same(&group, None).map_err(Failure::from_error)? {
            // The process has exited (its exit is reported), so the listing
            // may show another process's threads.
            tracing::debug!(pid, "the process exited while its threads were listed");
            continue;
        }
        let mut added = 0;
        // NOTE: threads started after this listing are not watched; their
        // exits show only in the process's own exit.
        for thread in &threads {
            let id = PidInode {
                pid: thread.id,
                inode: None,
            };
            if !targets.seen.insert((TargetKind::Thread, id)) {
                continue;
            }
            let fallback = Identity {
                kind: TargetKind::Thread,
                pid: Some(pid),
                tid: Some(thread.id),
                inode: None,
            };
            if targets.add_selected(Target::Thread(id), fallback, thread, Some(pid), false)? {
                added += 1;
            }
        }
        tracing::info!(pid, threads = added, "watching every thread");
    }
    Ok(())
}

/// Adds the processes that `--pattern`, `--uid`, `--euid` and `--parent`
/// select.
pub fn add_selected(args: &WaitArgs, targets: &mut Targets) -> Result<(), Failure> {
    if args.pattern.is_none()
        && args.uid.is_empty()
        && args.euid.is_empty()
        && args.parent.is_empty()
    {
        return Ok(());
    }
    let pattern = match &args.pattern {
        Some(pattern) => Some(
            Pattern::new(pattern, args.exact)
                .map_err(|message| Failure::new(Code::Failure, message))?,
        ),
        None => None,
    };
    let criteria = Criteria {
        pattern,
        full: args.full,
        uids: args.uid.clone(),
        euids: args.euid.clone(),
        parents: args.parent.clone(),
        pick: if args.newest {
            Some(Pick::Newest)
        } else if args.oldest {
            Some(Pick::Oldest)
        } else {
            None
        },
    };

    let candidates = criteria.scan().map_err(|err| {
        Failure::new(
            Code::Failure,
            format!("cannot read /proc to select processes: {err}"),
        )
    })?;
    let mut added = 0;
    for candidate in &candidates {
        let id = PidInode {
            pid: candidate.id,
            inode: None,
        };
        let fallback = Identity {
            kind: TargetKind::Process,
            pid: Some(candidate.id),
            tid: None,
            inode: None,
        };
        if targets.add_selected(Target::Process(id), fallback, candidate, None, true)? {
            targets.seen.insert((TargetKind::Process, id));
            added += 1;
        }
    }
    if added == 0 {
        return Err(Failure::new(
            Code::Failure,
            format!("no process matches: {}", criteria.describe()),
        ));
    }
    Ok(())
}
