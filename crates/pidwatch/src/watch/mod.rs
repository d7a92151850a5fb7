//! The watcher: many targets on one epoll instance, each exit reported once.
//!
//! Every target owns a pidfd registered edge-triggered (`EPOLLET`). A pidfd
//! stays readable from the moment its task exits, so level-triggered epoll
//! would wake the loop again and again while a zombie waits for its reaper.
//! The kernel wakes the pidfd's wait queue when the task exits and again
//! when it is reaped (Linux 6.9), so the edge-triggered registration sees
//! both transitions without spinning. Readiness is only a hint: on every
//! wakeup the watcher polls the pidfd itself and derives the events from
//! what the kernel says now.

mod target;

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::epoll;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::sys::{self, Feature, Features, Readiness};

pub use target::{open_error, Identity, Target, TargetKind};

/// A handle for a target added to a [`Watcher`].
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TargetId(u64);

/// The kind of a watcher event.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The target has exited. A process is a zombie (or already reaped)
    /// and its whole thread group is gone. Reported exactly once per
    /// target.
    Exited,

    /// The target has been reaped: no task uses its `struct pid` any more.
    /// Reported once, after [`EventKind::Exited`], on kernels with `POLLHUP`
    /// after reap (Linux 6.9).
    Reaped,
}

/// The mechanism that produced an event.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// The kernel reported it through the pidfd, and the kernel's semantics
    /// are the ones pidwatch promises.
    Kernel,

    /// The kernel reported it through the pidfd and the watcher confirmed
    /// it: on kernels that report a thread-group leader's exit while other
    /// threads of its group still run, the watcher checked that the group
    /// really is empty.
    Verified,

    /// The watcher saw it by reading `/proc` at an interval, because the
    /// kernel (or a sandbox, or the descriptor limit) gave no pidfd for the
    /// target. The start time read at registration rules out PID reuse.
    Polled,
}

impl Source {
    /// Returns the name used in JSON output and logs.
    pub fn name(self) -> &'static str {
        match self {
            Source::Kernel => "kernel",
            Source::Verified => "verified",
            Source::Polled => "polled",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One exit or reap of a watched target.
///
/// It serializes with serde as `{"target": 0, "kind": "exited",
/// "identity": {...}, "status": {"code": 0}, "source": "kernel", "time":
/// 1796415867.392129}`: `status` is `{"code": N}`, `{"signal": N,
/// "core_dumped": B}` or `null`, and `time` is seconds since the Unix epoch.
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct Event {
    /// The target, as returned by [`Watcher::add`].
    pub target: TargetId,
    /// Exited or reaped.
    pub kind: EventKind,
    /// The target's identity.
    pub identity: Identity,
    /// The wait status, when known: for a reaped target on Linux 6.15+
    /// (`PIDFD_INFO_EXIT`), and for an exited child of the watching process.
    #[serde(serialize_with = "crate::serialize::exit_status")]
    pub status: Option<ExitStatus>,
    /// The mechanism that produced the event.
    pub source: Source,
    /// When the watcher saw it.
    #[serde(serialize_with = "crate::serialize::unix_seconds")]
    pub time: SystemTime,
}

struct Entry {
    pidfd: OwnedFd,
    identity: Identity,
    exited: bool,
}

/// Watches processes and threads and reports each exit once.
///
/// ```no_run
/// use pidwatch::watch::{EventKind, Target, Watcher};
///
/// let mut watcher = Watcher::new()?;
/// let child = std::process::Command::new("true").spawn()?;
/// let id = watcher.add(Target::child(&child)?)?;
/// while let Some(event) = watcher.next_event(None)? {
///     if event.target == id && event.kind == EventKind::Exited {
///         println!("{} exited", event.identity);
///         break;
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Watcher {
    epoll: OwnedFd,
    targets: HashMap<TargetId, Entry>,
    next_id: u64,
    pending: VecDeque<Event>,
    reaps_visible: bool,
}

impl Watcher {
    /// Creates a watcher with no targets.
    pub fn new() -> Result<Self> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|err| Error::io("epoll_create1 failed", err.into()))?;
        Ok(Watcher {
            epoll,
            targets: HashMap::new(),
            next_id: 0,
            pending: VecDeque::new(),
            reaps_visible: Features::get().has(Feature::PollHupAfterReap),
        })
    }

    /// Adds a target, opening its pidfd, and returns its handle.
    ///
    /// A target that has already exited (a zombie, or a pidfd whose task is
    /// gone) is accepted and its events are queued at once, so they are
    /// never missed between the caller's check and the registration.
    pub fn add(&mut self, target: Target) -> Result<TargetId> {
        let opened = target::open(target)?;
        let id = TargetId(self.next_id);
        self.next_id += 1;

        epoll::add(
            &self.epoll,
            &opened.pidfd,
            epoll::EventData::new_u64(id.0),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )
        .map_err(|err| {
            Error::io(
                format!("epoll_ctl(ADD) for {}", opened.identity),
                err.into(),
            )
        })?;

        tracing::debug!(target_id = id.0, identity = %opened.identity, "watching");
        self.targets.insert(
            id,
            Entry {
                pidfd: opened.pidfd,
                identity: opened.identity,
                exited: false,
            },
        );

        // The task may have exited before the pidfd was registered.
        self.check(id)?;
        Ok(id)
    }

    /// Stops watching a target and returns its pidfd, or `None` when the
    /// target is unknown or already finished.
    pub fn remove(&mut self, id: TargetId) -> Option<OwnedFd> {
        let entry = self.targets.remove(&id)?;
        if let Err(err) = epoll::delete(&self.epoll, &entry.pidfd) {
            tracing::warn!(target_id = id.0, error = %err, "epoll_ctl(DEL) failed");
        }
        self.pending.retain(|event| event.target != id);
        Some(entry.pidfd)
    }

    /// Returns the number of targets still watched.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Returns true when no target is watched and no event is queued.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.pending.is_empty()
    }

    /// Returns the identity of a watched target.
    pub fn identity(&self, id: TargetId) -> Option<Identity> {
        self.targets.get(&id).map(|entry| entry.identity)
    }

    /// Borrows the pidfd of a watched target, for example to send it a
    /// signal with [`sys::pidfd_send_signal`].
    pub fn pidfd(&self, id: TargetId) -> Option<BorrowedFd<'_>> {
        self.targets.get(&id).map(|entry| entry.pidfd.as_fd())
    }

    /// Returns how long the caller may wait on [`AsFd::as_fd`] (the epoll
    /// descriptor) before it must call [`Watcher::next_event`] again even
    /// without readiness, or `None` when readiness alone is enough. Targets
    /// watched by polling `/proc` need these calls.
    pub fn poll_timeout(&self) -> Option<Duration> {
        None
    }

    /// Returns the next event, waiting up to `timeout` (`None` waits as long
    /// as targets remain).
    ///
    /// Returns `Ok(None)` when the timeout passes, or at once when nothing
    /// is watched and nothing is queued.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if self.targets.is_empty() {
                return Ok(None);
            }

            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) && !self.ready_now()? {
                return Ok(None);
            }
            self.wait_ready(left)?;
        }
    }

    /// Waits for epoll readiness and turns it into queued events.
    fn wait_ready(&mut self, timeout: Option<Duration>) -> Result<()> {
        let timespec = timeout.map(sys::pidfd::to_timespec);
        // A local buffer, because rustix's `epoll::Event` holds a raw
        // pointer, which would make the watcher neither `Send` nor `Sync`.
        let mut ready: Vec<epoll::Event> = Vec::with_capacity(256);
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut ready),
            timespec.as_ref(),
        ) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(()),
            Err(err) => return Err(Error::io("epoll_wait failed", err.into())),
        }

        for id in ready.iter().map(|e| TargetId(e.data.u64())) {
            self.check(id)?;
        }
        Ok(())
    }

    /// Polls epoll once without waiting; returns true if it queued events.
    fn ready_now(&mut self) -> Result<bool> {
        let before = self.pending.len();
        self.wait_ready(Some(Duration::ZERO))?;
        Ok(self.pending.len() > before)
    }

    /// Reads a target's pidfd and queues the events it has not reported yet.
    fn check(&mut self, id: TargetId) -> Result<()> {
        let Some(entry) = self.targets.get_mut(&id) else {
            // A stale wakeup for a target removed in the same batch.
            return Ok(());
        };
        let readiness = sys::readiness(&entry.pidfd)
            .map_err(|err| Error::io(format!("poll on the pidfd of {}", entry.identity), err))?;
        let now = SystemTime::now();

        if readiness.exited() && !entry.exited {
            entry.exited = true;
            let status = exit_status(entry, readiness);
            tracing::debug!(target_id = id.0, identity = %entry.identity, %readiness, "exited");
            self.pending.push_back(Event {
                target: id,
                kind: EventKind::Exited,
                identity: entry.identity,
                status,
                source: Source::Kernel,
                time: now,
            });
        }

        if readiness.hangup {
            let status = sys::exit_status(&entry.pidfd).ok().flatten();
            tracing::debug!(target_id = id.0, identity = %entry.identity, "reaped");
            self.pending.push_back(Event {
                target: id,
                kind: EventKind::Reaped,
                identity: entry.identity,
                status,
                source: Source::Kernel,
                time: now,
            });
            self.finish(id);
        } else if readiness.exited() && !self.reaps_visible {
            // Before Linux 6.9 a pidfd does not change when its task is
            // reaped, so there is nothing more to wait for.
            self.finish(id);
        }
        Ok(())
    }

    /// Drops a target whose events are all reported.
    fn finish(&mut self, id: TargetId) {
        if let Some(entry) = self.targets.remove(&id) {
            if let Err(err) = epoll::delete(&self.epoll, &entry.pidfd) {
                tracing::warn!(target_id = id.0, error = %err, "epoll_ctl(DEL) failed");
            }
        }
    }
}

/// Returns the exit status known when a target exits: from
/// `PIDFD_INFO_EXIT` if it is already reaped, else by peeking at a child
/// with `waitid(WNOWAIT)`, which leaves it for its owner to reap.
fn exit_status(entry: &Entry, readiness: Readiness) -> Option<ExitStatus> {
    if readiness.hangup {
        return sys::exit_status(&entry.pidfd).ok().flatten();
    }
    if entry.identity.kind == TargetKind::Process {
        return sys::pidfd::waitid_peek(&entry.pidfd).ok().flatten();
    }
    None
}

/// The epoll descriptor of the watcher. It becomes readable when a target
/// may have an event; an event loop (tokio's `AsyncFd`, for example) can
/// wait on it and then call [`Watcher::next_event`] with a zero timeout.
impl AsFd for Watcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("targets", &self.targets.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}
