//! The watcher on a tokio runtime (feature `tokio`).
//!
//! [`AsyncWatcher`] wraps a [`Watcher`] and registers its epoll descriptor
//! with the caller's runtime through [`tokio::io::unix::AsyncFd`]. Where the
//! kernel gives pidfds, waiting costs no thread: the runtime's reactor
//! wakes the task when a pidfd reports an exit, and the task then steps the
//! watcher without blocking ([`Watcher::next_event`] with a zero timeout).
//! Targets that the watcher polls through `/proc` (see
//! [`Watcher::poll_timeout`]) are stepped again on a tokio timer, never by a
//! blocking call on the runtime.
//!
//! ```no_run
//! use pidwatch::tokio::AsyncWatcher;
//! use pidwatch::Target;
//!
//! # async fn run() -> pidwatch::Result<()> {
//! let mut watcher = AsyncWatcher::new()?;
//! watcher.add(Target::process(1234))?;
//! while let Some(event) = watcher.next_event().await? {
//!     println!("{} {:?} ({})", event.identity, event.kind, event.source);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Runtime
//!
//! The watcher belongs to the runtime it was created in and needs the I/O
//! driver (`enable_io`, or `enable_all`, which `#[tokio::main]` and
//! `#[tokio::test]` turn on). The time driver (`enable_time`) is needed
//! only when targets are polled through `/proc`.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ::tokio::io::unix::AsyncFd;
use ::tokio::io::Interest;
use ::tokio::time::{Instant, Sleep};
use futures_core::Stream;

use crate::error::{Error, Result};
use crate::watch::{Event, EventKind, Identity, Target, TargetId, Watcher};

/// How many times one poll steps the watcher before it yields to the
/// runtime. Each step consumes what epoll reported, so the bound is only
/// reached when wakeups keep arriving that produce no event.
const MAX_STEPS_PER_POLL: usize = 32;

/// The [`Watcher`] as the descriptor that [`AsyncFd`] registers.
struct Registered(Watcher);

impl AsRawFd for Registered {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Watches processes and threads on a tokio runtime, and reports each exit
/// once.
///
/// The events, their order per target and their [`Source`](crate::Source)
/// are those of [`Watcher`]; only the waiting differs. Read them with
/// [`next_event`](AsyncWatcher::next_event), as a [`Stream`], or for one
/// target with [`wait`](AsyncWatcher::wait).
///
/// # Cancellation safety
///
/// [`next_event`](AsyncWatcher::next_event), the [`Stream`] and
/// [`wait`](AsyncWatcher::wait) are cancellation safe: an event is taken
/// from the watcher's queue only in the poll that returns it, so a future
/// dropped before it completes (in `tokio::select!`, or by
/// `tokio::time::timeout`) loses no event. A dropped `wait` also removes
/// the target it added.
///
/// ```no_run
/// use std::time::Duration;
/// use pidwatch::tokio::AsyncWatcher;
/// use pidwatch::Target;
///
/// # async fn run() -> pidwatch::Result<()> {
/// let mut watcher = AsyncWatcher::new()?;
/// watcher.add(Target::process(1234))?;
/// loop {
///     tokio::select! {
///         event = watcher.next_event() => match event? {
///             Some(event) => println!("{event:?}"),
///             None => break,
///         },
///         _ = tokio::time::sleep(Duration::from_secs(1)) => println!("still waiting"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct AsyncWatcher {
    fd: AsyncFd<Registered>,
    /// Events of other targets that [`AsyncWatcher::wait`] read while it
    /// waited, returned before anything new.
    stash: VecDeque<Event>,
    /// Armed while [`Watcher::poll_timeout`] returns a timeout, to step the
    /// watcher again without readiness.
    timer: Option<Pin<Box<Sleep>>>,
}

impl AsyncWatcher {
    /// Creates a watcher with no targets on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when called outside a tokio runtime, or when epoll or
    /// its registration fails.
    ///
    /// # Panics
    ///
    /// As [`AsyncFd::new`], when the current runtime has no I/O driver
    /// (built without `enable_io`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// let watcher = pidwatch::tokio::AsyncWatcher::new()?;
    /// assert!(watcher.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Outside a runtime it returns an error:
    ///
    /// ```
    /// assert!(pidwatch::tokio::AsyncWatcher::new().is_err());
    /// ```
    pub fn new() -> Result<Self> {
        AsyncWatcher::from_watcher(Watcher::new()?)
    }

    /// Registers an existing [`Watcher`], with its targets and queued
    /// events, on the current tokio runtime.
    ///
    /// # Errors and panics
    ///
    /// As [`AsyncWatcher::new`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// use pidwatch::{Target, Watcher};
    /// use pidwatch::tokio::AsyncWatcher;
    ///
    /// let mut watcher = Watcher::new()?;
    /// watcher.add(Target::process(std::process::id()))?;
    /// let watcher = AsyncWatcher::from_watcher(watcher)?;
    /// assert_eq!(watcher.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_watcher(watcher: Watcher) -> Result<Self> {
        if let Err(err) = ::tokio::runtime::Handle::try_current() {
            return Err(Error::io(
                "AsyncWatcher needs a tokio runtime; create it inside one",
                io::Error::other(err),
            ));
        }
        // SAFETY: `Registered` returns the descriptor of the epoll instance
        // that the watcher owns for its whole life. The watcher is never
        // handed out mutably (no `get_mut`), so it cannot be swapped for
        // another, and it is dropped only with the `AsyncFd`.
        let fd =
            unsafe { AsyncFd::register_with_interest(Registered(watcher), Interest::READABLE) }
                .map_err(|err| {
                    Error::io(
                        "registering the watcher's epoll descriptor with tokio",
                        err.into(),
                    )
                })?;
        Ok(AsyncWatcher {
            fd,
            stash: VecDeque::new(),
            timer: None,
        })
    }

    /// Adds a target and returns its handle, as [`Watcher::add`]. A target
    /// that has already exited gets its events queued at once.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pidwatch::tokio::AsyncWatcher;
    /// use pidwatch::{EventKind, Target};
    ///
    /// let mut child = std::process::Command::new("true").spawn()?;
    /// let mut watcher = AsyncWatcher::new()?;
    /// let id = watcher.add(Target::child(&child)?)?;
    /// let event = watcher.next_event().await?.expect("the child exits");
    /// assert_eq!((event.target, event.kind), (id, EventKind::Exited));
    /// child.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn add(&mut self, target: Target) -> Result<TargetId> {
        self.watcher_mut().add(target)
    }

    /// Stops watching a target and returns its pidfd, as
    /// [`Watcher::remove`]. Its queued events are dropped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// use pidwatch::tokio::AsyncWatcher;
    /// use pidwatch::Target;
    ///
    /// let mut watcher = AsyncWatcher::new()?;
    /// let id = watcher.add(Target::process(std::process::id()))?;
    /// assert!(watcher.remove(id).is_some());
    /// assert!(watcher.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove(&mut self, id: TargetId) -> Option<OwnedFd> {
        self.stash.retain(|event| event.target != id);
        self.watcher_mut().remove(id)
    }

    /// Returns the number of targets still watched.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// let watcher = pidwatch::tokio::AsyncWatcher::new()?;
    /// assert_eq!(watcher.len(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn len(&self) -> usize {
        self.get_ref().len()
    }

    /// Returns true when no target is watched and no event is queued; the
    /// next [`next_event`](AsyncWatcher::next_event) then returns `None`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// let mut watcher = pidwatch::tokio::AsyncWatcher::new()?;
    /// assert!(watcher.is_empty());
    /// assert!(watcher.next_event().await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.stash.is_empty() && self.get_ref().is_empty()
    }

    /// Returns the identity of a watched target, as [`Watcher::identity`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// let mut watcher = pidwatch::tokio::AsyncWatcher::new()?;
    /// let me = std::process::id();
    /// let id = watcher.add(pidwatch::Target::process(me))?;
    /// assert_eq!(watcher.identity(id).and_then(|identity| identity.pid), Some(me));
    /// # Ok(())
    /// # }
    /// ```
    pub fn identity(&self, id: TargetId) -> Option<Identity> {
        self.get_ref().identity(id)
    }

    /// Borrows the inner [`Watcher`], for its other read-only methods such
    /// as [`Watcher::pidfd`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// let mut watcher = pidwatch::tokio::AsyncWatcher::new()?;
    /// let id = watcher.add(pidwatch::Target::process(std::process::id()))?;
    /// assert!(watcher.get_ref().pidfd(id).is_some());
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_ref(&self) -> &Watcher {
        &self.fd.get_ref().0
    }

    fn watcher_mut(&mut self) -> &mut Watcher {
        &mut self.fd.get_mut().0
    }

    /// Waits for the next event of any target.
    ///
    /// Returns `Ok(None)` when no target is watched and no event is queued,
    /// as [`Watcher::next_event`] does; targets added later make it return
    /// events again. Cancellation safe.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pidwatch::tokio::AsyncWatcher;
    /// use pidwatch::Target;
    ///
    /// let mut child = std::process::Command::new("sh").args(["-c", "exit 3"]).spawn()?;
    /// let mut watcher = AsyncWatcher::new()?;
    /// watcher.add(Target::child(&child)?)?;
    /// let event = watcher.next_event().await?.expect("the child exits");
    /// // The watcher reads its own child's status without reaping it.
    /// assert_eq!(event.status.and_then(|status| status.code()), Some(3));
    /// child.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next_event(&mut self) -> Result<Option<Event>> {
        poll_fn(|cx| self.poll_next_event(cx)).await
    }

    /// Polls for the next event, for hand-written futures and streams.
    ///
    /// Returns `Poll::Ready(Ok(Some(event)))` for an event,
    /// `Poll::Ready(Ok(None))` when no target is watched and no event is
    /// queued, and `Poll::Pending` after arranging for `cx`'s waker to be
    /// woken when a target may have an event. Only the waker of the last
    /// call is woken.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> pidwatch::Result<()> {
    /// use std::future::poll_fn;
    ///
    /// let mut watcher = pidwatch::tokio::AsyncWatcher::new()?;
    /// let event = poll_fn(|cx| watcher.poll_next_event(cx)).await?;
    /// assert!(event.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub fn poll_next_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>>> {
        if let Some(event) = self.stash.pop_front() {
            return Poll::Ready(Ok(Some(event)));
        }
        self.poll_watcher(cx)
    }

    /// Steps the inner watcher until it has an event, and otherwise arms
    /// the reactor (and, for `/proc` polling, the timer) to wake `cx`.
    fn poll_watcher(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Event>>> {
        for _ in 0..MAX_STEPS_PER_POLL {
            let watcher = self.watcher_mut();
            match watcher.next_event(Some(Duration::ZERO)) {
                Ok(Some(event)) => return Poll::Ready(Ok(Some(event))),
                Ok(None) if watcher.is_empty() => {
                    self.timer = None;
                    return Poll::Ready(Ok(None));
                }
                Ok(None) => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
            let poll_timeout = watcher.poll_timeout();

            match self.fd.poll_read_ready_mut(cx) {
                Poll::Ready(Ok(mut guard)) => {
                    // The step above read everything epoll had ready, unless
                    // its buffer was full or an entry arrived since. Clear
                    // tokio's readiness only when epoll has nothing left,
                    // because the registration is edge-triggered.
                    if !has_ready_entries(guard.get_inner()) {
                        guard.clear_ready();
                    }
                    continue;
                }
                Poll::Ready(Err(err)) => {
                    return Poll::Ready(Err(Error::io(
                        "waiting for readiness of the watcher's epoll descriptor",
                        err,
                    )));
                }
                Poll::Pending => {}
            }

            let Some(timeout) = poll_timeout else {
                self.timer = None;
                return Poll::Pending;
            };
            // The watcher polls some targets through /proc: step it again
            // after `timeout` even without readiness.
            let deadline = Instant::now() + timeout;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(::tokio::time::sleep_until(deadline)));
            timer.as_mut().reset(deadline);
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }

        // Yield to the runtime, and come back at once.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Adds `target`, waits until it exits, and returns its
    /// [`EventKind::Exited`] event.
    ///
    /// The target is removed afterwards, so no [`EventKind::Reaped`] event
    /// follows for it. Events of other targets that arrive meanwhile are
    /// kept for [`next_event`](AsyncWatcher::next_event).
    ///
    /// The exit status of a target that is not a child of this process is
    /// known only after the reap (Linux 6.15), so this event's `status` is
    /// then `None`. To get it, add the target with
    /// [`add`](AsyncWatcher::add) and read its `Reaped` event.
    ///
    /// Cancellation safe: when the future is dropped before it completes,
    /// the target is removed and no event of other targets is lost.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pidwatch::tokio::AsyncWatcher;
    /// use pidwatch::Target;
    ///
    /// let mut child = std::process::Command::new("sh").args(["-c", "exit 5"]).spawn()?;
    /// let mut watcher = AsyncWatcher::new()?;
    /// let exited = watcher.wait(Target::child(&child)?).await?;
    /// assert_eq!(exited.status.and_then(|status| status.code()), Some(5));
    /// assert!(watcher.is_empty());
    /// child.wait()?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait(&mut self, target: Target) -> Result<Event> {
        let id = self.add(target)?;
        let guard = RemoveOnDrop { watcher: self, id };
        poll_fn(|cx| guard.watcher.poll_exit_of(id, cx)).await
    }

    /// Polls the inner watcher for the exit of `id`, setting aside the
    /// events of other targets.
    fn poll_exit_of(&mut self, id: TargetId, cx: &mut Context<'_>) -> Poll<Result<Event>> {
        loop {
            match self.poll_watcher(cx) {
                Poll::Ready(Ok(Some(event))) if event.target == id => {
                    if event.kind == EventKind::Exited {
                        return Poll::Ready(Ok(event));
                    }
                }
                Poll::Ready(Ok(Some(event))) => self.stash.push_back(event),
                Poll::Ready(Ok(None)) => {
                    // A watched target always reports Exited before the
                    // watcher lets go of it, and nothing but `wait` can
                    // reach the watcher meanwhile, so this is a bug if
                    // reached.
                    return Poll::Ready(Err(Error::io(
                        format!("waiting for target {id:?}"),
                        io::Error::other("the target was removed before it exited"),
                    )));
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Removes the target of [`AsyncWatcher::wait`] when it completes or is
/// dropped.
struct RemoveOnDrop<'a> {
    watcher: &'a mut AsyncWatcher,
    id: TargetId,
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        self.watcher.remove(self.id);
    }
}

/// Returns true when the epoll descriptor has entries ready now. A failed
/// poll counts as ready, so the caller steps the watcher again and gets the
/// error from there.
fn has_ready_entries(registered: &Registered) -> bool {
    let epoll = registered.0.as_fd();
    let mut fds = [rustix::event::PollFd::new(
        &epoll,
        rustix::event::PollFlags::IN,
    )];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(count) => count > 0,
        Err(_) => true,
    }
}

/// The events of every target, as [`AsyncWatcher::next_event`] returns
/// them.
///
/// The stream ends (`None`) when no target is watched and no event is
/// queued. Like `FuturesUnordered`, it may be polled again after targets
/// are added, and then yields their events.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pidwatch::tokio::AsyncWatcher;
/// use pidwatch::{EventKind, Target};
/// use tokio_stream::StreamExt;
///
/// let mut children = Vec::new();
/// let mut watcher = AsyncWatcher::new()?;
/// for code in [1, 2] {
///     let child = std::process::Command::new("sh").arg("-c").arg(format!("exit {code}")).spawn()?;
///     watcher.add(Target::child(&child)?)?;
///     children.push(child);
/// }
/// let mut codes = Vec::new();
/// while let Some(event) = watcher.next().await {
///     let event = event?;
///     if event.kind == EventKind::Exited {
///         codes.extend(event.status.and_then(|status| status.code()));
///     }
///     if codes.len() == children.len() {
///         // Reap the children, which ends the stream on kernels that report reaps.
///         for child in &mut children {
///             child.wait()?;
///         }
///     }
/// }
/// codes.sort();
/// assert_eq!(codes, [1, 2]);
/// # Ok(())
/// # }
/// ```
impl Stream for AsyncWatcher {
    type Item = Result<Event>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_event(cx).map(Result::transpose)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.stash.len(), None)
    }
}

impl fmt::Debug for AsyncWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncWatcher")
            .field("watcher", self.get_ref())
            .field("stash", &self.stash.len())
            .field("timer", &self.timer.is_some())
            .finish()
    }
}
