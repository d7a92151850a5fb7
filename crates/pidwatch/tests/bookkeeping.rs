//! Properties of the watcher's bookkeeping, on real processes and threads:
//! proptest generates scripts of add, exit, reap, remove and poll, and
//! after every step the events seen so far must obey these rules.
//!
//! - A target yields `Exited` at most once, and only after the script
//!   requested its exit (no live target is reported as exited).
//! - `Reaped` comes at most once, only after `Exited`, and for a process
//!   only after the test reaped it.
//! - A removed target yields nothing from the moment `remove` returns.
//! - At the end, every target that was not removed has yielded `Exited`,
//!   and `Reaped` on kernels that report reaps (Linux 6.9).
//!
//! `PIDWATCH_FULL=1` runs 256 scripts; the default is 16.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pidwatch::sys::{Feature, Features};
use pidwatch::{Event, EventKind, Target, TargetId, Watcher};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug)]
enum Step {
    AddProcess,
    AddThread,
    Exit(Index),
    Reap(Index),
    Remove(Index),
    /// Takes one event, which may leave others queued.
    PollOne,
    /// Takes every event that is ready.
    Poll,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::AddProcess),
        2 => Just(Step::AddThread),
        3 => any::<Index>().prop_map(Step::Exit),
        2 => any::<Index>().prop_map(Step::Reap),
        2 => any::<Index>().prop_map(Step::Remove),
        2 => Just(Step::PollOne),
        2 => Just(Step::Poll),
    ]
}

enum Task {
    Process(Child),
    Thread {
        stop: Option<mpsc::Sender<()>>,
        handle: Option<JoinHandle<()>>,
    },
}

struct Subject {
    id: TargetId,
    task: Task,
    exit_requested: bool,
    reaped: bool,
    removed: bool,
    exited_events: u32,
    reaped_events: u32,
}

impl Subject {
    fn exit(&mut self) {
        self.exit_requested = true;
        match &mut self.task {
            Task::Process(child) => {
                let _ = child.kill();
            }
            Task::Thread { stop, handle } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(handle) = handle.take() {
                    handle.join().unwrap();
                }
                self.reaped = true;
            }
        }
    }

    fn reap(&mut self) {
        if let Task::Process(child) = &mut self.task {
            if self.exit_requested && !self.reaped {
                child.wait().unwrap();
                self.reaped = true;
            }
        }
    }
}

/// Ends the task when a failed script drops it, so no process outlives
/// the test.
impl Drop for Subject {
    fn drop(&mut self) {
        if !self.exit_requested {
            self.exit();
        }
        if let Task::Process(child) = &mut self.task {
            let _ = child.wait();
        }
    }
}

struct Script {
    watcher: Watcher,
    subjects: Vec<Subject>,
    by_id: HashMap<TargetId, usize>,
    reaps_visible: bool,
    threads_supported: bool,
}

impl Script {
    fn pick(&mut self, index: &Index) -> Option<&mut Subject> {
        if self.subjects.is_empty() {
            return None;
        }
        let at = index.index(self.subjects.len());
        Some(&mut self.subjects[at])
    }

    fn run(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::AddProcess => {
                let child = Command::new("sleep").arg("60").spawn().unwrap();
                let id = self.watcher.add(Target::child(&child).unwrap()).unwrap();
                self.push(id, Task::Process(child));
            }
            Step::AddThread if self.threads_supported => {
                let (tid, stop, handle) = common::start_thread();
                let id = self.watcher.add(Target::thread(tid)).unwrap();
                let task = Task::Thread {
                    stop: Some(stop),
                    handle: Some(handle),
                };
                self.push(id, task);
            }
            Step::AddThread => {}
            Step::Exit(index) => {
                if let Some(subject) = self.pick(index) {
                    subject.exit();
                }
            }
            Step::Reap(index) => {
                if let Some(subject) = self.pick(index) {
                    subject.reap();
                }
            }
            Step::Remove(index) => {
                if self.subjects.is_empty() {
                    return Ok(());
                }
                let at = index.index(self.subjects.len());
                let subject = &mut self.subjects[at];
                if !subject.removed {
                    let finished = subject.exited_events == 1
                        && (subject.reaped_events == 1 || !self.reaps_visible);
                    let pidfd = self.watcher.remove(subject.id);
                    // Unknown or finished targets return no pidfd.
                    if finished {
                        prop_assert!(pidfd.is_none(), "finished target gave back a pidfd");
                    }
                    subject.removed = true;
                }
            }
            Step::PollOne => {
                if let Some(event) = self.watcher.next_event(Some(Duration::ZERO)).unwrap() {
                    self.observe(&event)?;
                }
            }
            Step::Poll => {
                while let Some(event) = self.watcher.next_event(Some(Duration::ZERO)).unwrap() {
                    self.observe(&event)?;
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, id: TargetId, task: Task) {
        self.by_id.insert(id, self.subjects.len());
        self.subjects.push(Subject {
            id,
            task,
            exit_requested: false,
            reaped: false,
            removed: false,
            exited_events: 0,
            reaped_events: 0,
        });
    }

    fn observe(&mut self, event: &Event) -> Result<(), TestCaseError> {
        let at = *self
            .by_id
            .get(&event.target)
            .ok_or_else(|| TestCaseError::fail(format!("unknown target: {event:?}")))?;
        let subject = &mut self.subjects[at];
        prop_assert!(!subject.removed, "event for a removed target: {:?}", event);
        match event.kind {
            EventKind::Exited => {
                prop_assert!(subject.exit_requested, "live target reported: {:?}", event);
                subject.exited_events += 1;
                prop_assert_eq!(subject.exited_events, 1, "second exit: {:?}", event);
            }
            EventKind::Reaped => {
                prop_assert_eq!(
                    subject.exited_events,
                    1,
                    "reaped before exited: {:?}",
                    event
                );
                prop_assert!(subject.reaped, "reaped before the reap: {:?}", event);
                subject.reaped_events += 1;
                prop_assert_eq!(subject.reaped_events, 1, "second reap: {:?}", event);
            }
            other => prop_assert!(false, "unexpected event kind {:?}", other),
        }
        Ok(())
    }

    /// Ends every task and collects the remaining events.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        for subject in &mut self.subjects {
            if !subject.exit_requested {
                subject.exit();
            }
            subject.reap();
        }
        let reaps_visible = self.reaps_visible;
        let complete = |subjects: &[Subject]| {
            subjects.iter().all(|s| {
                s.removed || (s.exited_events == 1 && (!reaps_visible || s.reaped_events == 1))
            })
        };
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !complete(&self.subjects) {
            prop_assert!(
                Instant::now() < deadline,
                "events missing after {:?}",
                DRAIN_TIMEOUT
            );
            if let Some(event) = self
                .watcher
                .next_event(Some(Duration::from_millis(100)))
                .unwrap()
            {
                self.observe(&event)?;
            }
        }
        let extra = self
            .watcher
            .next_event(Some(Duration::from_millis(20)))
            .unwrap();
        prop_assert!(extra.is_none(), "event after the last one: {:?}", extra);
        prop_assert!(self.watcher.is_empty());
        Ok(())
    }
}

fn cases() -> u32 {
    if std::env::var("PIDWATCH_FULL").is_ok_and(|value| value == "1") {
        256
    } else {
        16
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn watcher_bookkeeping(steps in prop::collection::vec(step(), 1..24)) {
        let threads_supported = Features::get().has(Feature::PidfdThread);
        let mut script = Script {
            watcher: Watcher::new().unwrap(),
            subjects: Vec::new(),
            by_id: HashMap::new(),
            reaps_visible: Features::get().has(Feature::PollHupAfterReap),
            threads_supported,
        };
        for step in &steps {
            script.run(step)?;
        }
        script.finish()?;
    }
}

#[test]
fn thread_targets_supported() {
    if !Features::get().has(Feature::PidfdThread) {
        eprintln!(
            "skipped: thread steps of watcher_bookkeeping: PIDFD_THREAD (Linux 6.9) is missing"
        );
    }
}

/// The shortest script the property found: after `next_event` returned the
/// exit of a thread, its reap was still queued, and `remove` let it through.
#[test]
fn remove_drops_queued_reap() {
    if !Features::get().has(Feature::PidfdThread) || !Features::get().has(Feature::PollHupAfterReap)
    {
        eprintln!("skipped: remove_drops_queued_reap: PIDFD_THREAD and POLLHUP after reap (Linux 6.9) are needed");
        return;
    }
    let (tid, stop, handle) = common::start_thread();
    let mut watcher = Watcher::new().unwrap();
    let id = watcher.add(Target::thread(tid)).unwrap();
    stop.send(()).unwrap();
    handle.join().unwrap();

    let exited = watcher
        .next_event(Some(DRAIN_TIMEOUT))
        .unwrap()
        .expect("the thread's exit");
    assert_eq!(exited.kind, EventKind::Exited);
    // Wait until the kernel has released the thread, so that its reap is
    // queued together with its exit or by the next check.
    let pidfd = watcher.pidfd(id).map(|fd| fd.try_clone_to_owned().unwrap());
    if let Some(pidfd) = pidfd {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while !pidwatch::sys::readiness(&pidfd).unwrap().hangup {
            assert!(Instant::now() < deadline, "thread {tid} never hung up");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    watcher.remove(id);
    let after = watcher.next_event(Some(Duration::from_millis(50))).unwrap();
    assert!(after.is_none(), "event after remove: {after:?}");
}
