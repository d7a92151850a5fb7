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

mod poll;
pub mod strategy;
mod target;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use rustix::event::epoll;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::sys::{self, Feature, Features, Readiness};

use poll::Observed;
use target::{Context, OpenTarget};

pub use strategy::{Plan, Regime};
pub use target::{open_error, Identity, Target, TargetKind};

/// How many epoll events one `epoll_wait` call reads.
const EPOLL_BATCH: usize = 256;

/// A handle for a target added to a [`Watcher`].
///
/// ```
/// use pidwatch::{Target, Watcher};
///
/// let mut watcher = Watcher::new()?;
/// let first = watcher.add(Target::process(std::process::id()))?;
/// let second = watcher.add(Target::process(std::process::id()))?;
/// assert_ne!(first, second);
/// # Ok::<(), pidwatch::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TargetId(u64);

/// The kind of a watcher event.
///
/// ```
/// use pidwatch::EventKind;
///
/// assert_eq!(serde_json::to_string(&EventKind::Reaped)?, r#""reaped""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
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
///
/// ```
/// use pidwatch::Source;
///
/// assert_eq!(Source::Polled.to_string(), "polled");
/// assert_eq!(serde_json::to_string(&Source::Verified)?, r#""verified""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// The kernel reported it through the pidfd, and the kernel's semantics
    /// are the ones pidwatch promises.
    Kernel,

    /// The kernel reported it through a pidfd the watcher chose for the
    /// promised semantics. Some kernels report a leader's exit on its
    /// `PIDFD_THREAD` pidfd while other threads of its group run, and some
    /// have no `PIDFD_THREAD`. There a leader watched as a thread is watched
    /// through a process pidfd on the same struct pid, which reports only
    /// once the whole group has exited.
    Verified,

    /// The watcher saw it by reading `/proc` at an interval, because the
    /// kernel (or a sandbox, or the descriptor limit) gave no pidfd for the
    /// target. The start time read at registration rules out PID reuse.
    Polled,
}

impl Source {
    /// Returns the name used in JSON output and logs.
    ///
    /// ```
    /// assert_eq!(pidwatch::Source::Kernel.name(), "kernel");
    /// ```
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
///
/// ```
/// use pidwatch::{EventKind, Target, Watcher};
///
/// let mut child = std::process::Command::new("sh").args(["-c", "exit 2"]).spawn()?;
/// let mut watcher = Watcher::new()?;
/// watcher.add(Target::child(&child)?)?;
/// let event = watcher.next_event(None)?.expect("the child exits");
/// assert_eq!(event.kind, EventKind::Exited);
/// let json = serde_json::to_value(&event)?;
/// assert_eq!(json["status"], serde_json::json!({"code": 2}));
/// child.wait()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[non_exhaustive]
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

/// A watched target and its state in the watcher.
struct Entry {
    opened: OpenTarget,
    exited: bool,
}

/// Settings for a [`Watcher`], for the cases where the defaults do not fit.
///
/// ```
/// use pidwatch::watch::{Regime, Watcher};
///
/// // Watch as the oldest pidfd-less kernels must, through /proc, and give
/// // up rather than poll when descriptors run out.
/// let watcher = Watcher::builder().regime(Regime::NoPidfd).strict(true).build()?;
/// assert_eq!(watcher.len(), 0);
/// # Ok::<(), pidwatch::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    regime: Option<Regime>,
    strict: bool,
    max_poll_interval: Duration,
}

impl Builder {
    /// Watches as in `regime` instead of the running kernel's. An older
    /// regime than the kernel's is always possible (its strategies need
    /// less); a newer one fails in [`Builder::build`]. Tests and benchmarks
    /// use it to run every strategy on one kernel.
    ///
    /// ```
    /// use pidwatch::watch::{Regime, Watcher};
    ///
    /// // Every regime older than the kernel's can be forced.
    /// let watcher = Watcher::builder().regime(Regime::NoPidfd).build()?;
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn regime(mut self, regime: Regime) -> Self {
        self.regime = Some(regime);
        self
    }

    /// With `strict`, a target that cannot get a pidfd because the
    /// descriptor limit is reached fails with
    /// [`Error::TooManyOpenFiles`]; without it (the default), the watcher
    /// first raises the soft `RLIMIT_NOFILE` to the hard limit, and then
    /// watches such targets through `/proc`.
    ///
    /// ```
    /// let watcher = pidwatch::Watcher::builder().strict(true).build()?;
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets the longest time between two `/proc` polling rounds (2 s by
    /// default, at least 10 ms), which bounds how late a polled exit is
    /// reported. Rounds come more often while they are cheap: the watcher
    /// keeps polling near 1% of one core.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let watcher = pidwatch::Watcher::builder()
    ///     .max_poll_interval(Duration::from_millis(100))
    ///     .build()?;
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn max_poll_interval(mut self, interval: Duration) -> Self {
        self.max_poll_interval = interval.max(poll::MIN_INTERVAL);
        self
    }

    /// Creates the watcher.
    ///
    /// ```
    /// let watcher = pidwatch::Watcher::builder().build()?;
    /// assert!(watcher.is_empty());
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn build(self) -> Result<Watcher> {
        if let Some(regime) = self.regime {
            regime.check_available()?;
        }
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|err| Error::io("epoll_create1 failed", err.into()))?;
        Ok(Watcher {
            epoll,
            targets: HashMap::new(),
            next_id: 0,
            pending: VecDeque::new(),
            polled: BTreeSet::new(),
            next_round: None,
            max_poll_interval: self.max_poll_interval,
            context: Context {
                forced: self.regime,
                strict: self.strict,
                reaps_visible: Features::get().has(Feature::PollHupAfterReap),
                warned_nofile: false,
                spare: poll::Spare::new(),
            },
        })
    }
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
    /// Targets that `/proc` polling rounds look at.
    polled: BTreeSet<TargetId>,
    next_round: Option<Instant>,
    max_poll_interval: Duration,
    context: Context,
}

impl Watcher {
    /// Creates a watcher with no targets, for the running kernel.
    ///
    /// ```
    /// let watcher = pidwatch::Watcher::new()?;
    /// assert_eq!(watcher.len(), 0);
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn new() -> Result<Self> {
        Watcher::builder().build()
    }

    /// Returns a builder for a watcher with other settings.
    ///
    /// ```
    /// let watcher = pidwatch::Watcher::builder().strict(true).build()?;
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn builder() -> Builder {
        Builder {
            regime: None,
            strict: false,
            max_poll_interval: poll::DEFAULT_MAX_INTERVAL,
        }
    }

    /// Adds a target, opening its pidfd, and returns its handle.
    ///
    /// A target that has already exited (a zombie, or a pidfd whose task is
    /// gone) is accepted, and the next call to [`Watcher::next_event`]
    /// reports it, so no exit is missed between the caller's check and the
    /// registration.
    ///
    /// ```
    /// use pidwatch::{EventKind, Target, Watcher};
    ///
    /// // A zombie is accepted, and its exit is queued at once.
    /// let mut child = std::process::Command::new("true").spawn()?;
    /// let pidfd = pidwatch::sys::pidfd_open(child.id(), Default::default())?;
    /// pidwatch::sys::wait_readable(&pidfd, None)?;
    ///
    /// let mut watcher = Watcher::new()?;
    /// let id = watcher.add(Target::process(child.id()))?;
    /// let event = watcher.next_event(Some(std::time::Duration::ZERO))?.expect("queued");
    /// assert_eq!((event.target, event.kind), (id, EventKind::Exited));
    /// child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add(&mut self, target: Target) -> Result<TargetId> {
        let opened = target::open(target, &mut self.context)?;
        let id = TargetId(self.next_id);
        self.next_id += 1;

        if let Some(fd) = opened.registered() {
            epoll::add(
                &self.epoll,
                fd,
                epoll::EventData::new_u64(id.0),
                epoll::EventFlags::IN | epoll::EventFlags::ET,
            )
            .map_err(|err| {
                Error::io(
                    format!("epoll_ctl(ADD) for {}", opened.identity),
                    err.into(),
                )
            })?;
        }

        tracing::debug!(
            target_id = id.0,
            identity = %opened.identity,
            plan = ?opened.plan,
            source = %opened.source,
            "watching"
        );
        let primary_poll = opened.registered().is_none() || opened.plan == Plan::PollThread;
        self.targets.insert(
            id,
            Entry {
                opened,
                exited: false,
            },
        );
        if primary_poll {
            // Read /proc once now, so an exit before the first round is
            // not late by a whole round.
            self.start_polling(id);
            self.check(id)?;
        }
        // A pidfd that is already readable (a task that exited before it was
        // registered) is put on epoll's ready list by epoll_ctl itself, so
        // the next call to next_event reports it without a poll here.
        Ok(id)
    }

    /// Stops watching a target and returns its pidfd, or `None` when the
    /// target is unknown, already finished, or watched without a pidfd of
    /// its own.
    ///
    /// Events still queued for the target are dropped, even for a finished
    /// target, so none is returned after this call.
    ///
    /// ```
    /// use pidwatch::{Target, Watcher};
    ///
    /// let mut watcher = Watcher::new()?;
    /// let id = watcher.add(Target::process(std::process::id()))?;
    /// let pidfd = watcher.remove(id);
    /// assert!(watcher.is_empty());
    /// assert!(watcher.remove(id).is_none());
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn remove(&mut self, id: TargetId) -> Option<OwnedFd> {
        self.pending.retain(|event| event.target != id);
        let entry = self.targets.remove(&id)?;
        self.deregister(id, &entry);
        entry.opened.pidfd
    }

    /// Returns the number of targets still watched.
    ///
    /// ```
    /// let mut watcher = pidwatch::Watcher::new()?;
    /// watcher.add(pidwatch::Target::process(std::process::id()))?;
    /// assert_eq!(watcher.len(), 1);
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Returns true when no target is watched and no event is queued.
    ///
    /// ```
    /// let mut watcher = pidwatch::Watcher::new()?;
    /// assert!(watcher.is_empty());
    /// // With nothing to watch, next_event returns at once.
    /// assert!(watcher.next_event(None)?.is_none());
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.pending.is_empty()
    }

    /// Returns the identity of a watched target.
    ///
    /// A target that has finished (exited and reaped) stays known here until
    /// its last queued event is taken.
    ///
    /// ```
    /// use pidwatch::{Target, TargetKind, Watcher};
    ///
    /// let mut watcher = Watcher::new()?;
    /// let me = std::process::id();
    /// let id = watcher.add(Target::process(me))?;
    /// let identity = watcher.identity(id).expect("watched");
    /// assert_eq!((identity.kind, identity.pid), (TargetKind::Process, Some(me)));
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn identity(&self, id: TargetId) -> Option<Identity> {
        self.targets
            .get(&id)
            .map(|entry| entry.opened.identity)
            .or_else(|| {
                self.pending
                    .iter()
                    .find(|event| event.target == id)
                    .map(|event| event.identity)
            })
    }

    /// Returns how the watcher watches a target: the [`Source`] its events
    /// will carry and the [`Plan`] behind it.
    ///
    /// ```
    /// use pidwatch::watch::{Plan, Regime, Watcher};
    /// use pidwatch::{Source, Target};
    ///
    /// let mut watcher = Watcher::builder().regime(Regime::NoPidfd).build()?;
    /// let id = watcher.add(Target::process(std::process::id()))?;
    /// assert_eq!(watcher.strategy(id), Some((Source::Polled, Plan::PollProcess)));
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn strategy(&self, id: TargetId) -> Option<(Source, Plan)> {
        self.targets
            .get(&id)
            .map(|entry| (entry.opened.source, entry.opened.plan))
    }

    /// Borrows the pidfd of a watched target, for example to send it a
    /// signal with [`sys::pidfd_send_signal`]. `None` for a target watched
    /// without a pidfd of its own (through `/proc`, or a leader watched as a
    /// thread on a kernel without `PIDFD_THREAD`).
    ///
    /// ```
    /// use pidwatch::sys::{pidfd_send_signal, SignalScope};
    /// use pidwatch::{Target, Watcher};
    ///
    /// let mut child = std::process::Command::new("sleep").arg("10").spawn()?;
    /// let mut watcher = Watcher::new()?;
    /// let id = watcher.add(Target::child(&child)?)?;
    /// if let Some(pidfd) = watcher.pidfd(id) {
    ///     pidfd_send_signal(pidfd, libc::SIGTERM, SignalScope::Default)?;
    /// }
    /// child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pidfd(&self, id: TargetId) -> Option<BorrowedFd<'_>> {
        self.targets
            .get(&id)
            .and_then(|entry| entry.opened.pidfd.as_ref())
            .map(|pidfd| pidfd.as_fd())
    }

    /// Returns how long the caller may wait on [`AsFd::as_fd`] (the epoll
    /// descriptor) before it must call [`Watcher::next_event`] again even
    /// without readiness, or `None` when readiness alone is enough. Targets
    /// watched by polling `/proc` need these calls.
    ///
    /// ```
    /// use pidwatch::watch::{Regime, Watcher};
    /// use pidwatch::Target;
    ///
    /// let mut watcher = Watcher::new()?;
    /// watcher.add(Target::process(std::process::id()))?;
    /// // A process pidfd needs no polling.
    /// assert_eq!(watcher.poll_timeout(), None);
    ///
    /// let mut polled = Watcher::builder().regime(Regime::NoPidfd).build()?;
    /// polled.add(Target::process(std::process::id()))?;
    /// assert!(polled.poll_timeout().is_some());
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn poll_timeout(&self) -> Option<Duration> {
        if !self.pending.is_empty() {
            return Some(Duration::ZERO);
        }
        self.next_round
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Returns the next event, waiting up to `timeout` (`None` waits as long
    /// as targets remain).
    ///
    /// Returns `Ok(None)` when the timeout passes, or at once when nothing
    /// is watched and nothing is queued.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pidwatch::{Target, Watcher};
    ///
    /// let mut watcher = Watcher::new()?;
    /// watcher.add(Target::process(std::process::id()))?;
    /// // This process is still running.
    /// assert!(watcher.next_event(Some(Duration::from_millis(10)))?.is_none());
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut first = true;
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if self.targets.is_empty() {
                return Ok(None);
            }

            let now = Instant::now();
            let left = deadline.map(|d| d.saturating_duration_since(now));
            if left == Some(Duration::ZERO) && !first {
                return Ok(None);
            }
            first = false;

            let until_round = self.next_round.map(|at| at.saturating_duration_since(now));
            let wait = match (left, until_round) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.wait_ready(wait)?;
            if self.next_round.is_some_and(|at| at <= Instant::now()) {
                self.poll_round()?;
            }
        }
    }

    /// Waits for epoll readiness and turns it into queued events.
    fn wait_ready(&mut self, timeout: Option<Duration>) -> Result<()> {
        // A buffer on the stack: it costs no allocation per wait, and the
        // watcher stays `Send` and `Sync`, which a stored buffer of rustix's
        // `epoll::Event` (it contains a raw pointer) would prevent.
        let mut buffer = [const { MaybeUninit::<epoll::Event>::uninit() }; EPOLL_BATCH];
        let mut timespec = timeout.map(sys::pidfd::to_timespec);
        loop {
            let (ready, _) = match epoll::wait(&self.epoll, &mut buffer, timespec.as_ref()) {
                Ok(filled) => filled,
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(err) => return Err(Error::io("epoll_wait failed", err.into())),
            };
            let count = ready.len();
            for event in ready.iter() {
                self.check(TargetId(event.data.u64()))?;
            }

            // A full buffer may have left ready targets behind. Edge-triggered
            // registrations would not report them again, so drain them now.
            if count < EPOLL_BATCH {
                return Ok(());
            }
            timespec = Some(sys::pidfd::to_timespec(Duration::ZERO));
        }
    }

    /// Looks at a target now: its registered pidfd, or `/proc` for a
    /// polled one.
    fn check(&mut self, id: TargetId) -> Result<()> {
        let Some(entry) = self.targets.get(&id) else {
            // A stale wakeup for a target removed in the same batch.
            return Ok(());
        };
        match entry.opened.plan {
            Plan::PollThread | Plan::PollProcess => self.check_polled(id),
            Plan::OwnPidfd | Plan::ProcessPidfd => self.check_pidfd(id),
        }
    }

    /// Reads a target's registered pidfd and queues the events it has not
    /// reported yet.
    fn check_pidfd(&mut self, id: TargetId) -> Result<()> {
        let Some(entry) = self.targets.get_mut(&id) else {
            return Ok(());
        };
        let Some(fd) = entry.opened.registered() else {
            return Ok(());
        };
        let readiness = sys::readiness(fd).map_err(|err| {
            Error::io(
                format!("poll on the pidfd of {}", entry.opened.identity),
                err,
            )
        })?;
        let now = SystemTime::now();

        // PIDFD_INFO_EXIT is read once when the exit and the reap show
        // together, as they do for an autoreaped task or a late wakeup.
        let reaped_status = if readiness.hangup {
            sys::exit_status(fd).ok().flatten()
        } else {
            None
        };

        if readiness.exited() && !entry.exited {
            entry.exited = true;
            let status = if readiness.hangup {
                reaped_status
            } else {
                exit_status(&entry.opened, readiness)
            };
            tracing::debug!(target_id = id.0, identity = %entry.opened.identity, %readiness, "exited");
            self.pending
                .push_back(event(id, &entry.opened, EventKind::Exited, status, now));
        }

        if readiness.hangup {
            let status = reaped_status;
            tracing::debug!(target_id = id.0, identity = %entry.opened.identity, "reaped");
            self.pending
                .push_back(event(id, &entry.opened, EventKind::Reaped, status, now));
            self.finish(id);
        } else if readiness.exited() && !self.context.reaps_visible {
            // Before Linux 6.9 a pidfd does not change when its task is
            // reaped: watch for the reap in /proc if the start time is known.
            if entry.opened.polled.is_some() {
                if let Some(fd) = entry.opened.registered() {
                    if let Err(err) = epoll::delete(&self.epoll, fd) {
                        tracing::warn!(target_id = id.0, error = %err, "epoll_ctl(DEL) failed");
                    }
                }
                self.start_polling(id);
            } else {
                self.finish(id);
            }
        }
        Ok(())
    }

    /// Reads `/proc` for a polled target (or a pidfd target waiting for its
    /// reap) and queues the events it has not reported yet.
    fn check_polled(&mut self, id: TargetId) -> Result<()> {
        let Some(entry) = self.targets.get_mut(&id) else {
            return Ok(());
        };
        let Some(polled) = entry.opened.polled else {
            return Ok(());
        };
        let observed = self
            .context
            .spare
            .retry(|| polled.observe())
            .map_err(|err| {
                Error::io(
                    format!(
                        "reading /proc/{}/stat for {}",
                        polled.number, entry.opened.identity
                    ),
                    err,
                )
            })?;
        let now = SystemTime::now();

        if observed != Observed::Alive && !entry.exited {
            entry.exited = true;
            tracing::debug!(target_id = id.0, identity = %entry.opened.identity, ?observed, "exited");
            self.pending
                .push_back(event(id, &entry.opened, EventKind::Exited, None, now));
        }
        if observed == Observed::Reaped {
            tracing::debug!(target_id = id.0, identity = %entry.opened.identity, "reaped");
            self.pending
                .push_back(event(id, &entry.opened, EventKind::Reaped, None, now));
            self.finish(id);
        }
        Ok(())
    }

    /// Adds a target to the polling rounds.
    fn start_polling(&mut self, id: TargetId) {
        self.polled.insert(id);
        if self.next_round.is_none() {
            self.next_round = Some(Instant::now() + poll::MIN_INTERVAL);
        }
    }

    /// Polls every polled target, then spaces the next round by the cost of
    /// this one.
    fn poll_round(&mut self) -> Result<()> {
        let started = Instant::now();
        let ids: Vec<TargetId> = self.polled.iter().copied().collect();
        for id in ids {
            // Polled targets, and pidfd targets that have exited and wait
            // for a reap that their pidfd cannot show.
            if self.targets.contains_key(&id) {
                self.check_polled(id)?;
            } else {
                self.polled.remove(&id);
            }
        }
        let cost = started.elapsed();
        self.next_round = if self.polled.is_empty() {
            None
        } else {
            let interval = poll::next_interval(cost, self.max_poll_interval);
            tracing::trace!(
                targets = self.polled.len(),
                ?cost,
                ?interval,
                "polling round"
            );
            Some(Instant::now() + interval)
        };
        Ok(())
    }

    /// Drops a target whose events are all reported.
    fn finish(&mut self, id: TargetId) {
        if let Some(entry) = self.targets.remove(&id) {
            self.deregister(id, &entry);
        }
    }

    /// Takes a target out of epoll and out of the polling rounds.
    fn deregister(&mut self, id: TargetId, entry: &Entry) {
        self.polled.remove(&id);
        if self.polled.is_empty() {
            self.next_round = None;
        }
        if let Some(fd) = entry.opened.registered() {
            // A pidfd target polled for its reap has left epoll already.
            match epoll::delete(&self.epoll, fd) {
                Ok(()) | Err(rustix::io::Errno::NOENT) => {}
                Err(err) => {
                    tracing::warn!(target_id = id.0, error = %err, "epoll_ctl(DEL) failed")
                }
            }
        }
    }
}

/// Builds an event of a target.
fn event(
    id: TargetId,
    opened: &OpenTarget,
    kind: EventKind,
    status: Option<ExitStatus>,
    time: SystemTime,
) -> Event {
    Event {
        target: id,
        kind,
        identity: opened.identity,
        status,
        source: opened.source,
        time,
    }
}

/// Returns the exit status known when a target exits: from
/// `PIDFD_INFO_EXIT` if it is already reaped, else by peeking at a child
/// with `waitid(WNOWAIT)`, which leaves it for its owner to reap.
fn exit_status(opened: &OpenTarget, readiness: Readiness) -> Option<ExitStatus> {
    let fd = opened.registered()?;
    if readiness.hangup {
        return sys::exit_status(fd).ok().flatten();
    }
    if opened.identity.kind == TargetKind::Process || opened.plan == Plan::ProcessPidfd {
        return sys::pidfd::waitid_peek(fd).ok().flatten();
    }
    None
}

/// The epoll descriptor of the watcher. It becomes readable when a target
/// may have an event. An event loop (tokio's `AsyncFd`, for example) can
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
