//! The tokio watcher on real processes and threads. It reports the same
//! events as the sync watcher in every regime the kernel can serve, and the
//! `/proc` polling regimes run its timer. Its futures are cancellation
//! safe, and its stream ends and restarts with its targets.
//!
//! `PIDWATCH_QUIET_WINDOW_MS` sets how long both watchers must stay quiet
//! where the semantics promise no exit (default 200 ms).

#![cfg(feature = "tokio")]

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use pidwatch::helper::HelperProcess;
use pidwatch::sys::{self, Feature, Features, PidfdFlags};
use pidwatch::tokio::AsyncWatcher;
use pidwatch::watch::Regime;
use pidwatch::{Error, Event, EventKind, Source, Target, TargetId, Watcher};
use tokio::runtime::Runtime;
use tokio::time::timeout;
use tokio_stream::StreamExt;

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn quiet_window() -> Duration {
    let ms = std::env::var("PIDWATCH_QUIET_WINDOW_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(200);
    Duration::from_millis(ms)
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
}

fn reaps_visible() -> bool {
    let visible = Features::get().has(Feature::PollHupAfterReap);
    if !visible {
        eprintln!(
            "note: POLLHUP after reap (Linux 6.9) is missing, so no reaped events are expected"
        );
    }
    visible
}

fn spawn_sleep() -> Child {
    Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep")
}

/// Starts `sleep 60` as a grandchild that `sh` leaves behind, so it is not
/// a child of the test, and returns its PID.
fn spawn_orphan_sleep() -> u32 {
    let output = Command::new("sh")
        .args(["-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
        .stdout(Stdio::piped())
        .output()
        .expect("run sh");
    String::from_utf8(output.stdout)
        .expect("sh prints a PID")
        .trim()
        .parse()
        .expect("sh prints a PID")
}

/// An event without its time, which differs between two watchers.
#[derive(Clone, Debug, Eq, PartialEq, PartialOrd, Ord)]
struct Seen {
    target: TargetId,
    kind: String,
    identity: String,
    status: Option<i32>,
    source: String,
}

impl Seen {
    fn of(event: &Event) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Seen {
            target: event.target,
            kind: format!("{:?}", event.kind),
            identity: format!("{:?}", event.identity),
            status: event.status.map(|status| status.into_raw()),
            source: event.source.to_string(),
        }
    }
}

/// A sync and an async watcher on the same targets, added in the same
/// order so that their target ids match.
struct Both {
    runtime: Runtime,
    sync: Watcher,
    async_watcher: AsyncWatcher,
    /// Every event of each side so far.
    sync_seen: Vec<Event>,
    async_seen: Vec<Event>,
}

impl Both {
    /// Creates both watchers in `regime`, or returns `None` (after a skip
    /// message) when the kernel cannot serve it.
    fn new(regime: Regime) -> Option<Self> {
        let build = || Watcher::builder().regime(regime).build();
        let sync = match build() {
            Ok(watcher) => watcher,
            Err(err @ Error::Unsupported { .. }) => {
                eprintln!("skipped: the {regime} regime: {err}");
                return None;
            }
            Err(err) => panic!("creating a watcher in the {regime} regime failed: {err}"),
        };
        let runtime = runtime();
        let async_watcher = {
            let _context = runtime.enter();
            let inner = build().expect("create the inner watcher");
            AsyncWatcher::from_watcher(inner).expect("create the async watcher")
        };
        Some(Both {
            runtime,
            sync,
            async_watcher,
            sync_seen: Vec::new(),
            async_seen: Vec::new(),
        })
    }

    /// Adds the target that `make` returns to both watchers.
    fn add(&mut self, make: impl Fn() -> Target) -> pidwatch::Result<TargetId> {
        let sync_id = self.sync.add(make())?;
        let async_id = self.async_watcher.add(make())?;
        assert_eq!(
            sync_id, async_id,
            "the watchers numbered a target differently"
        );
        Ok(sync_id)
    }

    /// Reads events from each watcher until it has nothing left to watch:
    /// every target has reported all its events.
    fn collect_all(&mut self) {
        while !self.sync.is_empty() {
            match self
                .sync
                .next_event(Some(EVENT_TIMEOUT))
                .expect("sync next_event")
            {
                Some(event) => self.sync_seen.push(event),
                None => panic!(
                    "the sync watcher still watches {} targets after {EVENT_TIMEOUT:?}: {:?}",
                    self.sync.len(),
                    self.sync_seen
                ),
            }
        }
        self.collect_async_until(|watcher, _| watcher.is_empty());
    }

    /// Reads events from each watcher until `done` holds for all the events
    /// that watcher reported so far.
    fn collect_until(&mut self, done: impl Fn(&[Event]) -> bool) {
        while !done(&self.sync_seen) {
            match self
                .sync
                .next_event(Some(EVENT_TIMEOUT))
                .expect("sync next_event")
            {
                Some(event) => self.sync_seen.push(event),
                None => panic!(
                    "the sync watcher stopped short within {EVENT_TIMEOUT:?}: {:?}",
                    self.sync_seen
                ),
            }
        }
        self.collect_async_until(|_, events| done(events));
    }

    fn collect_async_until(&mut self, done: impl Fn(&AsyncWatcher, &[Event]) -> bool) {
        while !done(&self.async_watcher, &self.async_seen) {
            let watcher = &mut self.async_watcher;
            let next = self
                .runtime
                .block_on(async { timeout(EVENT_TIMEOUT, watcher.next_event()).await });
            match next {
                Ok(Ok(Some(event))) => self.async_seen.push(event),
                Ok(Ok(None)) => panic!("the async watcher ended early: {:?}", self.async_seen),
                Ok(Err(err)) => panic!("async next_event failed: {err}"),
                Err(_) => panic!(
                    "the async watcher stopped short within {EVENT_TIMEOUT:?}: {:?}",
                    self.async_seen
                ),
            }
        }
    }

    /// Asserts that neither watcher reports anything within the quiet
    /// window.
    fn assert_quiet(&mut self) {
        let window = quiet_window();
        let extra = self.sync.next_event(Some(window)).expect("sync next_event");
        assert!(extra.is_none(), "the sync watcher reported {extra:?}");
        let watcher = &mut self.async_watcher;
        let extra = self
            .runtime
            .block_on(async { timeout(window, watcher.next_event()).await });
        // `Ok(None)` means the watcher has nothing left to watch.
        assert!(
            matches!(extra, Err(_) | Ok(Ok(None))),
            "the async watcher reported {extra:?}"
        );
    }

    /// Asserts that both watchers reported the same events: the same set,
    /// and the same order for each target.
    ///
    /// One status may differ: a non-child's exit status is known only
    /// after its reap, so an exited event carries it when the watcher
    /// happened to look after the reap, and `None` before. Such a pair
    /// counts as the same event when the other fields match.
    fn assert_same(&self) {
        let per_target = |events: &[Event]| {
            let mut map: BTreeMap<TargetId, Vec<Seen>> = BTreeMap::new();
            for event in events {
                map.entry(event.target).or_default().push(Seen::of(event));
            }
            map
        };
        let mut sync = per_target(&self.sync_seen);
        let async_events = per_target(&self.async_seen);
        for (target, events) in &mut sync {
            let Some(others) = async_events.get(target) else {
                continue;
            };
            for (mine, other) in events.iter_mut().zip(others) {
                let exited_before_reap =
                    mine.kind == "Exited" && (mine.status.is_none() || other.status.is_none());
                if exited_before_reap {
                    mine.status = other.status;
                }
            }
        }
        assert_eq!(
            sync, async_events,
            "sync (left) and async (right) watchers differ"
        );
    }
}

/// Returns true when `target` has an event of `kind` in `events`.
fn has(events: &[Event], target: TargetId, kind: EventKind) -> bool {
    events
        .iter()
        .any(|event| event.target == target && event.kind == kind)
}

#[test]
fn same_events_child_exit() {
    for regime in Regime::ALL {
        child_exit_in(regime);
    }
}

fn child_exit_in(regime: Regime) {
    let Some(mut both) = Both::new(regime) else {
        return;
    };
    let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    let id = both.add(|| Target::child(&child).unwrap()).unwrap();

    both.collect_until(|events| has(events, id, EventKind::Exited));
    assert_eq!(
        both.sync_seen[0].status.and_then(|status| status.code()),
        Some(7)
    );
    assert_eq!(child.wait().unwrap().code(), Some(7));
    both.collect_all();
    both.assert_same();
}

#[test]
fn same_events_killed_process() {
    for regime in Regime::ALL {
        killed_process_in(regime);
    }
}

fn killed_process_in(regime: Regime) {
    let Some(mut both) = Both::new(regime) else {
        return;
    };
    let pid = spawn_orphan_sleep();
    let id = both.add(|| Target::process(pid)).unwrap();
    both.assert_quiet();

    let pidfd = sys::pidfd_open(pid, PidfdFlags::empty()).unwrap();
    sys::pidfd_send_signal(&pidfd, libc::SIGKILL, sys::SignalScope::Default).unwrap();

    // Its new parent reaps it.
    both.collect_all();
    both.assert_same();
    assert_eq!(both.sync_seen[0].target, id);
    assert_eq!(both.sync_seen[0].kind, EventKind::Exited);
    if regime == Regime::NoPidfd {
        // The async watcher saw it on its timer.
        assert_eq!(both.async_seen[0].source, Source::Polled);
    }
}

#[test]
fn same_events_thread_exit() {
    for regime in Regime::ALL {
        thread_exit_in(regime);
    }
}

fn thread_exit_in(regime: Regime) {
    let Some(mut both) = Both::new(regime) else {
        return;
    };
    let (tid, stop, handle) = common::start_thread();
    let id = match both.add(|| Target::thread(tid)) {
        Ok(id) => id,
        Err(Error::Unsupported {
            capability, since, ..
        }) => {
            eprintln!("skipped: {capability} (Linux {since}) is missing");
            stop.send(()).unwrap();
            handle.join().unwrap();
            return;
        }
        Err(err) => panic!("adding thread {tid} failed: {err}"),
    };
    both.assert_quiet();

    stop.send(()).unwrap();
    handle.join().unwrap();
    // A thread other than the leader is released as soon as it exits.
    both.collect_all();
    both.assert_same();
    assert_eq!(both.sync_seen[0].target, id);
    assert_eq!(both.sync_seen[0].kind, EventKind::Exited);
    assert_eq!(both.sync_seen[0].identity.tid, Some(tid));
}

#[test]
fn same_events_premature_leader_exit() {
    for regime in Regime::ALL {
        premature_leader_exit_in(regime);
    }
}

fn premature_leader_exit_in(regime: Regime) {
    let Some(mut both) = Both::new(regime) else {
        return;
    };
    let program = Path::new(env!("CARGO_BIN_EXE_pidwatch"));
    let (mut helper, ready) = HelperProcess::spawn(program).expect("start the helper");

    let process = both.add(|| Target::process(ready.pid)).unwrap();
    let leader = match both.add(|| Target::thread(ready.pid)) {
        Ok(id) => id,
        Err(Error::Unsupported {
            capability, since, ..
        }) => {
            eprintln!("skipped: {capability} (Linux {since}) is missing");
            return;
        }
        Err(err) => panic!("adding the leader {} failed: {err}", ready.pid),
    };
    let controller = both.add(|| Target::thread(ready.controller)).unwrap();

    // The leader calls SYS_exit while the controller thread runs on: no
    // target has exited yet.
    helper.request("leader-exit").expect("leader-exit");
    both.assert_quiet();

    helper.kill().expect("kill the helper");
    let targets = [process, leader, controller];
    both.collect_until(|events| {
        targets
            .iter()
            .all(|&target| has(events, target, EventKind::Exited))
    });
    let status = helper.reap().expect("reap the helper");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    both.collect_all();
    both.assert_same();
}

/// Polls `future` once with a waker that does nothing, and returns whether
/// it was still pending.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> bool {
    let mut context = Context::from_waker(Waker::noop());
    future.poll(&mut context).is_pending()
}

#[test]
fn dropped_next_event_loses_nothing() {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut watcher = AsyncWatcher::new().unwrap();
    let mut child = spawn_sleep();
    let id = watcher.add(Target::child(&child).unwrap()).unwrap();

    // A future that waited and was dropped by a timeout.
    let waited = runtime.block_on(timeout(Duration::from_millis(50), watcher.next_event()));
    assert!(waited.is_err(), "got {waited:?} while the child runs");

    // A future that was pending when the exit happened, dropped unpolled.
    {
        let pending = pin!(watcher.next_event());
        assert!(poll_once(pending));
        child.kill().unwrap();
        let pidfd = sys::pidfd_open(child.id(), PidfdFlags::empty()).unwrap();
        assert!(
            sys::wait_readable(&pidfd, Some(EVENT_TIMEOUT))
                .unwrap()
                .readable
        );
    }

    let event = runtime
        .block_on(timeout(EVENT_TIMEOUT, watcher.next_event()))
        .expect("the exit arrives")
        .unwrap()
        .expect("an event");
    assert_eq!(event.target, id);
    assert_eq!(event.kind, EventKind::Exited);
    child.wait().unwrap();
}

#[test]
fn dropped_stream_next_loses_nothing() {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut watcher = AsyncWatcher::new().unwrap();
    let mut child = spawn_sleep();
    let id = watcher.add(Target::child(&child).unwrap()).unwrap();

    let waited = runtime.block_on(timeout(Duration::from_millis(50), watcher.next()));
    assert!(waited.is_err(), "got {waited:?} while the child runs");

    child.kill().unwrap();
    let event = runtime
        .block_on(timeout(EVENT_TIMEOUT, watcher.next()))
        .expect("the exit arrives")
        .expect("the stream goes on")
        .unwrap();
    assert_eq!((event.target, event.kind), (id, EventKind::Exited));
    child.wait().unwrap();
}

#[test]
fn dropped_wait_removes_its_target_and_keeps_others() {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut watcher = AsyncWatcher::new().unwrap();

    // `other` exits at once; its events are read while `wait` waits.
    let mut other = Command::new("sh").args(["-c", "exit 4"]).spawn().unwrap();
    let other_id = watcher.add(Target::child(&other).unwrap()).unwrap();
    let mut sleeper = spawn_sleep();
    let waited = runtime.block_on(timeout(
        quiet_window(),
        watcher.wait(Target::child(&sleeper).unwrap()),
    ));
    assert!(waited.is_err(), "wait returned {waited:?} while sleep runs");
    assert_eq!(watcher.len(), 1, "the dropped wait left its target behind");

    let event = runtime
        .block_on(timeout(EVENT_TIMEOUT, watcher.next_event()))
        .expect("the other exit arrives")
        .unwrap()
        .expect("an event");
    assert_eq!((event.target, event.kind), (other_id, EventKind::Exited));
    assert_eq!(event.status.and_then(|status| status.code()), Some(4));

    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    other.wait().unwrap();
}

#[test]
fn wait_returns_exit_and_removes_target() {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut watcher = AsyncWatcher::new().unwrap();
    let mut child = Command::new("sh").args(["-c", "exit 9"]).spawn().unwrap();

    let event = runtime
        .block_on(timeout(
            EVENT_TIMEOUT,
            watcher.wait(Target::child(&child).unwrap()),
        ))
        .expect("the exit arrives")
        .unwrap();
    assert_eq!(event.kind, EventKind::Exited);
    assert_eq!(event.status.and_then(|status| status.code()), Some(9));
    assert!(watcher.is_empty());

    child.wait().unwrap();
    let after = runtime.block_on(watcher.next_event()).unwrap();
    assert!(after.is_none(), "a reaped event followed: {after:?}");
}

#[test]
fn stream_ends_and_restarts_with_targets() {
    let runtime = runtime();
    let _context = runtime.enter();
    let mut watcher = AsyncWatcher::new().unwrap();
    assert!(runtime.block_on(watcher.next()).is_none());

    let mut child = Command::new("true").spawn().unwrap();
    let id = watcher.add(Target::child(&child).unwrap()).unwrap();
    let first = runtime
        .block_on(timeout(EVENT_TIMEOUT, watcher.next()))
        .expect("the exit arrives")
        .expect("the stream yields again after add")
        .unwrap();
    assert_eq!((first.target, first.kind), (id, EventKind::Exited));

    child.wait().unwrap();
    let rest: Vec<Event> = runtime
        .block_on(timeout(
            EVENT_TIMEOUT,
            (&mut watcher).collect::<Result<_, _>>(),
        ))
        .expect("the stream ends")
        .unwrap();
    let kinds: Vec<EventKind> = rest.iter().map(|event| event.kind).collect();
    if reaps_visible() {
        assert_eq!(kinds, [EventKind::Reaped]);
    } else {
        assert!(kinds.is_empty(), "{kinds:?}");
    }
}

#[test]
fn watchers_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Watcher>();
    assert_send_sync::<AsyncWatcher>();
    assert_send_sync::<Event>();
    assert_send_sync::<Error>();
}

#[tokio::test(flavor = "current_thread")]
async fn polled_wait_leaves_runtime_free() {
    let watcher = Watcher::builder()
        .regime(Regime::NoPidfd)
        .build()
        .expect("the no-pidfd regime needs nothing");
    let mut watcher = AsyncWatcher::from_watcher(watcher).unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.3"])
        .spawn()
        .unwrap();
    let id = watcher.add(Target::process(child.id())).unwrap();

    // A blocking wait would hold the runtime's only thread until the exit,
    // so the ticker would not run before the event arrives.
    let ticks = Arc::new(AtomicU32::new(0));
    let ticker = tokio::spawn({
        let ticks = Arc::clone(&ticks);
        async move {
            let mut interval = tokio::time::interval(Duration::from_millis(10));
            loop {
                interval.tick().await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let event = timeout(EVENT_TIMEOUT, watcher.next_event())
        .await
        .expect("the exit arrives")
        .unwrap()
        .expect("an event");
    assert_eq!((event.target, event.kind), (id, EventKind::Exited));
    assert_eq!(event.source, Source::Polled);
    assert!(ticks.load(Ordering::Relaxed) > 0, "the ticker never ran");
    ticker.abort();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_task_waits_for_exit() {
    let mut child = Command::new("sh").args(["-c", "exit 2"]).spawn().unwrap();
    let target = Target::child(&child).unwrap();
    let task = tokio::spawn(async move {
        let mut watcher = AsyncWatcher::new()?;
        watcher.wait(target).await
    });
    let event = timeout(EVENT_TIMEOUT, task)
        .await
        .expect("the exit arrives")
        .expect("the task does not panic")
        .unwrap();
    assert_eq!(event.status.and_then(|status| status.code()), Some(2));
    child.wait().unwrap();
}

#[test]
fn many_children_more_than_one_epoll_batch() {
    // More targets than one epoll_wait of the watcher returns (256), all
    // ready at once.
    const CHILDREN: usize = 300;
    let runtime = runtime();
    let _context = runtime.enter();
    let mut watcher = AsyncWatcher::new().unwrap();
    let mut children = Vec::new();
    for _ in 0..CHILDREN {
        let child = spawn_sleep();
        let id = watcher.add(Target::child(&child).unwrap()).unwrap();
        children.push((id, child));
    }
    for (_, child) in &mut children {
        child.kill().unwrap();
    }
    for (_, child) in &mut children {
        child.wait().unwrap();
    }

    let mut exited = std::collections::HashSet::new();
    while !watcher.is_empty() {
        let event = runtime
            .block_on(timeout(EVENT_TIMEOUT, watcher.next_event()))
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {CHILDREN} exits within {EVENT_TIMEOUT:?}",
                    exited.len()
                )
            })
            .unwrap()
            .expect("an event while targets remain");
        if event.kind == EventKind::Exited {
            assert!(exited.insert(event.target), "second exit of {event:?}");
        }
    }
    assert_eq!(exited.len(), CHILDREN);
}

#[test]
fn watcher_outlives_its_runtime() {
    let runtime = runtime();
    let mut watcher = {
        let _context = runtime.enter();
        AsyncWatcher::new().unwrap()
    };
    watcher
        .add(Target::process(std::process::id()))
        .expect("watch this process");
    drop(runtime);

    // Polling reports the runtime's shutdown as an error, and dropping the
    // watcher afterwards neither panics nor blocks.
    let other = self::runtime();
    let result = other.block_on(async { timeout(EVENT_TIMEOUT, watcher.next_event()).await });
    assert!(
        matches!(result, Ok(Err(_))),
        "expected an error from the shut-down runtime, got {result:?}"
    );
    drop(watcher);
}
