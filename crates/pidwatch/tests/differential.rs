//! Differential test of the running kernel against the model crate's
//! simulator under [`Rule::Fixed`].
//!
//! A script of thread-group steps (spawn a worker thread, a worker exits,
//! the leader exits, a thread execs, a pidfd is opened, SIGKILL, reap) runs
//! on two sides in lockstep. The real kernel carries it out through the
//! helper process of the `pidwatch` binary (`pidwatch __helper`), and
//! `pidwatch_model::Simulation` carries it out in the model. After every
//! step, every pidfd the script has opened is polled on both sides, and any
//! difference fails the test with the script, the step and both readiness
//! values. A `pidfd_open` that
//! fails on one side must fail on the other side too.
//!
//! proptest generates the scripts. `PIDWATCH_DIFF_CASES` sets the number of
//! generated scripts (default 24). A few hand-written scripts run as plain
//! tests, so the main thread-group stories run on every build.
//!
//! # Mapping between the helper and the model
//!
//! The helper always runs a controller thread, a non-leader that reads the
//! commands and never exits on its own. The model mirrors it: model thread 0
//! is the leader, and model thread 1, created right after
//! `Simulation::new`, is the controller. Every exec, by any thread, starts a
//! new image with a new controller, so the model creates one more thread
//! after each exec. The test keeps the real TID of every model `struct pid`:
//! pid `i` is the TID that thread `i` was created with, and pid 0 is the
//! TGID. A model thread's real TID is therefore the number of the pid it has
//! now, or had last before it was released.
//!
//! NOTE: because the controller never exits, the group empties only through
//! SIGKILL, so no script reaches an empty group through `SYS_exit` alone.
//! An open on a released thread's TID expects `ESRCH`, which assumes that no
//! other process has reused that TID in the meantime.
//!
//! # Synchronisation
//!
//! No step relies on a sleep. The helper replies once its step has taken
//! effect, and the test waits for the rest on pidfds of its own, which take
//! no part in the comparison. A joined worker thread may still be in
//! `do_exit`, so the test waits until a `PIDFD_THREAD` pidfd on it hangs up.
//! After an exec by a non-leader, it waits the same way for the exec'ing
//! thread's old TID. After SIGKILL, it waits until the process pidfd is
//! readable. A pidfd where the model expects nothing is compared with a
//! zero-timeout poll. A pidfd where the model expects an exit is polled
//! until the kernel returns the same readiness, for at most
//! [`EXIT_TIMEOUT`].

use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use pidwatch::helper::HelperProcess;
use pidwatch::sys::{self, PidfdFlags};
use pidwatch_model::{
    FdId, OpenError, PidIndex, PidfdKind, Readiness as ModelReadiness, Rule, Simulation, TaskState,
    ThreadIndex,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Default number of generated scripts, small enough for CI.
const DEFAULT_CASES: u32 = 24;

/// Maximum number of worker threads alive at once. With the controller, the group has
/// at most three threads besides the leader.
const MAX_WORKERS: usize = 2;

/// Maximum number of `pidfd_open` calls in one script.
const MAX_OPENS: usize = 6;

/// How long a pidfd may take to reach the readiness the model expects for an
/// exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the test waits for its own synchronisation pidfds.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// One step of a script. Threads are model thread indices: 0 is the first
/// leader, 1 the first controller, and each new thread gets the next index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// The controller starts a parked worker thread (`spawn`).
    SpawnWorker,
    /// A worker thread returns (`thread-exit TID`).
    WorkerExit(ThreadIndex),
    /// The leader calls `SYS_exit` (`leader-exit`).
    LeaderExit,
    /// A thread execs the helper again: the controller (`exec`), a worker
    /// (`exec-from TID`) or the leader (`leader-exec`).
    Exec(ThreadIndex),
    /// The test calls `pidfd_open` on the TID of a thread.
    Open(ThreadIndex, PidfdKind),
    /// The test sends SIGKILL to the thread group through its process pidfd.
    Kill,
    /// The test reaps the helper with `waitid(P_PIDFD)`.
    Reap,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SpawnWorker => f.write_str("spawn a worker thread"),
            Step::WorkerExit(thread) => write!(f, "worker {thread} exits"),
            Step::LeaderExit => f.write_str("the leader calls SYS_exit"),
            Step::Exec(thread) => write!(f, "{thread} calls execve"),
            Step::Open(thread, kind) => write!(f, "open a {kind} pidfd on {thread}"),
            Step::Kill => f.write_str("SIGKILL the thread group"),
            Step::Reap => f.write_str("reap the thread group"),
        }
    }
}

/// What a step did on the model side.
enum ModelOutcome {
    Done,
    Opened(FdId),
    OpenFailed(OpenError),
}

/// The simulator, plus the helper's thread roles that the simulator does
/// not know about.
struct Model {
    sim: Simulation,
    controller: ThreadIndex,
    workers: Vec<ThreadIndex>,
    /// The pid each thread holds now, or held last before its release.
    last_pid: Vec<PidIndex>,
    opens: usize,
    killed: bool,
}

impl Model {
    fn new() -> Model {
        let mut sim = Simulation::new(Rule::Fixed);
        let controller = sim
            .spawn_thread()
            .expect("the model can create the controller thread");
        Model {
            sim,
            controller,
            workers: Vec::new(),
            last_pid: vec![PidIndex(0), PidIndex(1)],
            opens: 0,
            killed: false,
        }
    }

    fn leader(&self) -> ThreadIndex {
        self.sim.state().leader()
    }

    fn leader_running(&self) -> bool {
        self.sim.state().thread_state(self.leader()) == Some(TaskState::Running)
    }

    fn thread_count(&self) -> usize {
        self.sim.state().thread_count()
    }

    /// Returns whether the helper can carry out `step` now and the model
    /// accepts it.
    fn allows(&self, step: Step) -> bool {
        let helper_can = match step {
            Step::SpawnWorker => !self.killed && self.workers.len() < MAX_WORKERS,
            Step::WorkerExit(thread) => self.workers.contains(&thread),
            Step::LeaderExit => !self.killed && self.leader_running(),
            Step::Exec(thread) => {
                !self.killed
                    && (thread == self.controller
                        || self.workers.contains(&thread)
                        || (thread == self.leader() && self.leader_running()))
            }
            Step::Open(thread, _) => thread.0 < self.thread_count() && self.opens < MAX_OPENS,
            Step::Kill => !self.killed,
            Step::Reap => self.killed && !self.sim.state().is_reaped(),
        };
        if !helper_can {
            return false;
        }
        // An open that the model rejects is still a valid step: the kernel
        // must reject it too.
        matches!(step, Step::Open(..)) || self.clone_sim_accepts(step)
    }

    fn clone_sim_accepts(&self, step: Step) -> bool {
        let mut sim = self.sim.clone();
        match step {
            Step::SpawnWorker => sim.spawn_thread().is_ok(),
            Step::WorkerExit(thread) => sim.thread_exit(thread).is_ok(),
            Step::LeaderExit => sim.leader_exit().is_ok(),
            Step::Exec(thread) => sim.exec(thread).is_ok() && sim.spawn_thread().is_ok(),
            Step::Kill => sim.kill_group().is_ok(),
            Step::Reap => sim.reap().is_ok(),
            Step::Open(..) => true,
        }
    }

    /// Applies `step` to the simulator and updates the thread roles. The
    /// caller checks [`Model::allows`] first.
    fn apply(&mut self, step: Step) -> ModelOutcome {
        let outcome = match step {
            Step::SpawnWorker => {
                let thread = self.sim.spawn_thread().expect("allowed step");
                self.workers.push(thread);
                ModelOutcome::Done
            }
            Step::WorkerExit(thread) => {
                self.sim.thread_exit(thread).expect("allowed step");
                self.workers.retain(|worker| *worker != thread);
                ModelOutcome::Done
            }
            Step::LeaderExit => {
                self.sim.leader_exit().expect("allowed step");
                ModelOutcome::Done
            }
            Step::Exec(thread) => {
                let old_leader = self.leader();
                let old_tid = self.last_pid[thread.0];
                self.sim.exec(thread).expect("allowed step");
                // The old leader held the exec'ing thread's old TID from the
                // pid swap until its release, which `Simulation::exec` runs
                // in the same call.
                if thread != old_leader {
                    self.last_pid[old_leader.0] = old_tid;
                }
                // The exec kills every other thread, and the new image starts
                // a new controller.
                self.workers.clear();
                self.controller = self.sim.spawn_thread().expect("allowed step");
                ModelOutcome::Done
            }
            Step::Open(thread, kind) => {
                self.opens += 1;
                match self.sim.open_pidfd(thread, kind) {
                    Ok(fd) => ModelOutcome::Opened(fd),
                    Err(err) => ModelOutcome::OpenFailed(err),
                }
            }
            Step::Kill => {
                self.sim.kill_group().expect("allowed step");
                self.workers.clear();
                self.killed = true;
                ModelOutcome::Done
            }
            Step::Reap => {
                self.sim.reap().expect("allowed step");
                ModelOutcome::Done
            }
        };

        let state = self.sim.state();
        self.last_pid.resize(state.thread_count(), PidIndex(0));
        for (index, last) in self.last_pid.iter_mut().enumerate() {
            if let Some(pid) = state.pid_of(ThreadIndex(index)) {
                *last = pid;
            }
        }
        outcome
    }
}

/// A pidfd that both sides opened, with where it came from for messages.
struct Watched {
    fd: OwnedFd,
    model_fd: FdId,
    kind: PidfdKind,
    thread: ThreadIndex,
    tid: u32,
    step: usize,
}

/// One difference between the kernel and the model.
#[derive(Debug)]
struct Difference {
    subject: String,
    model: String,
    kernel: String,
}

/// Runs a script on the helper and the model in lockstep. Returns a report
/// of the first step where they differ, or where the helper failed.
fn run_script(script: &[Step]) -> Result<(), String> {
    let mut run = Run::start().map_err(|err| format!("cannot start the helper: {err}"))?;
    for (index, step) in script.iter().enumerate() {
        let differences = match run.step(index, *step) {
            Ok(mut differences) => {
                differences.extend(run.compare_all());
                differences
            }
            Err(err) => vec![Difference {
                subject: "the helper".to_owned(),
                model: "the step succeeds".to_owned(),
                kernel: format!("failed: {err}"),
            }],
        };
        if !differences.is_empty() {
            return Err(run.report(script, index, &differences));
        }
    }
    Ok(())
}

/// The state of one script run on both sides.
struct Run {
    helper: HelperProcess,
    tgid: u32,
    model: Model,
    /// Real number of each model pid: the TID thread `i` was created with,
    /// and the TGID for pid 0.
    pid_numbers: Vec<u32>,
    watched: Vec<Watched>,
    log: Vec<String>,
}

impl Run {
    fn start() -> io::Result<Run> {
        let (helper, ready) = HelperProcess::spawn(Path::new(env!("CARGO_BIN_EXE_pidwatch")))?;
        Ok(Run {
            helper,
            tgid: ready.pid,
            model: Model::new(),
            pid_numbers: vec![ready.pid, ready.controller],
            watched: Vec::new(),
            log: vec![format!(
                "start: leader thread 0 is TID {}, controller thread 1 is TID {}",
                ready.pid, ready.controller
            )],
        })
    }

    /// Returns the real TID of a model thread: the number of the pid it
    /// holds now, or held last.
    fn tid_of(&self, thread: ThreadIndex) -> u32 {
        self.pid_numbers[self.model.last_pid[thread.0].0]
    }

    /// Carries out one step on both sides and returns the differences in
    /// `pidfd_open` results. The caller compares the polls.
    fn step(&mut self, index: usize, step: Step) -> io::Result<Vec<Difference>> {
        assert!(
            self.model.allows(step),
            "step {index} ({step}) is not valid here; fix the script"
        );
        match step {
            Step::SpawnWorker => {
                let tid = self.helper.spawn_thread()?;
                self.model.apply(step);
                self.pid_numbers.push(tid);
                let thread = self.model.thread_count() - 1;
                self.log
                    .push(format!("{index}: spawn: thread {thread} is TID {tid}"));
            }
            Step::WorkerExit(thread) => {
                let tid = self.tid_of(thread);
                let sync = sys::pidfd_open(tid, PidfdFlags::PIDFD_THREAD)?;
                expect_ok(self.helper.request(&format!("thread-exit {tid}"))?)?;
                self.model.apply(step);
                wait_for_hangup(&sync, &format!("exited worker TID {tid}"))?;
                self.log.push(format!("{index}: thread-exit {tid}"));
            }
            Step::LeaderExit => {
                expect_ok(self.helper.request("leader-exit")?)?;
                self.model.apply(step);
                self.log.push(format!("{index}: leader-exit"));
            }
            Step::Exec(thread) => self.exec(index, thread)?,
            Step::Open(thread, kind) => return self.open(index, thread, kind),
            Step::Kill => {
                self.helper.kill()?;
                if !self.helper.wait_exited(SYNC_TIMEOUT)? {
                    return Err(io::Error::other(format!(
                        "timed out: the process pidfd is not readable {SYNC_TIMEOUT:?} after SIGKILL"
                    )));
                }
                self.model.apply(step);
                self.log.push(format!("{index}: SIGKILL"));
            }
            Step::Reap => {
                let status = self.helper.reap()?;
                self.model.apply(step);
                self.log.push(format!("{index}: reaped with {status}"));
            }
        }
        Ok(Vec::new())
    }

    fn exec(&mut self, index: usize, thread: ThreadIndex) -> io::Result<()> {
        let tid = self.tid_of(thread);
        let is_leader = thread == self.model.leader();
        let command = if thread == self.model.controller {
            "exec".to_owned()
        } else if is_leader {
            "leader-exec".to_owned()
        } else {
            format!("exec-from {tid}")
        };

        // A non-leader's old TID goes to the old leader, which de_thread
        // releases, so a PIDFD_THREAD pidfd on it hangs up.
        let sync = if is_leader {
            None
        } else {
            Some(sys::pidfd_open(tid, PidfdFlags::PIDFD_THREAD)?)
        };
        let ready = self.helper.exec(&command)?;
        if ready.pid != self.tgid {
            return Err(io::Error::other(format!(
                "the exec'd helper reports PID {} instead of {}",
                ready.pid, self.tgid
            )));
        }
        self.model.apply(Step::Exec(thread));
        self.pid_numbers.push(ready.controller);
        if let Some(sync) = sync {
            wait_for_hangup(&sync, &format!("old TID {tid} of the exec'ing thread"))?;
        }
        self.log.push(format!(
            "{index}: {command}: new controller {} is TID {}",
            self.model.controller, ready.controller
        ));
        Ok(())
    }

    fn open(
        &mut self,
        index: usize,
        thread: ThreadIndex,
        kind: PidfdKind,
    ) -> io::Result<Vec<Difference>> {
        let tid = self.tid_of(thread);
        let flags = match kind {
            PidfdKind::Thread => PidfdFlags::PIDFD_THREAD,
            _ => PidfdFlags::empty(),
        };
        let real = sys::pidfd_open(tid, flags);
        let subject = format!("pidfd_open({tid}, {kind}) on {thread}");
        let model = self.model.apply(Step::Open(thread, kind));

        let difference = match (model, real) {
            (ModelOutcome::Opened(model_fd), Ok(fd)) => {
                self.log
                    .push(format!("{index}: opened {model_fd} ({kind}) on TID {tid}"));
                self.watched.push(Watched {
                    fd,
                    model_fd,
                    kind,
                    thread,
                    tid,
                    step: index,
                });
                None
            }
            (ModelOutcome::Opened(model_fd), Err(err)) => Some(Difference {
                subject,
                model: format!("opens {model_fd}"),
                kernel: format!("fails with {}", errno_text(&err)),
            }),
            (ModelOutcome::OpenFailed(expected), Ok(_)) => Some(Difference {
                subject,
                model: format!("fails: {expected}"),
                kernel: "opens a pidfd".to_owned(),
            }),
            (ModelOutcome::OpenFailed(expected), Err(err)) => {
                self.log.push(format!(
                    "{index}: pidfd_open({tid}, {kind}) failed with {}",
                    errno_text(&err)
                ));
                if errno_matches(&expected, &err) {
                    None
                } else {
                    Some(Difference {
                        subject,
                        model: format!("fails: {expected}"),
                        kernel: format!("fails with {}", errno_text(&err)),
                    })
                }
            }
            (ModelOutcome::Done, _) => unreachable!("an open step opens or fails"),
        };
        Ok(difference.into_iter().collect())
    }

    /// Polls every watched pidfd and returns where the kernel differs from
    /// the model.
    fn compare_all(&self) -> Vec<Difference> {
        let mut differences = Vec::new();
        for watched in &self.watched {
            let expected = self
                .model
                .sim
                .poll(watched.model_fd)
                .expect("the model opened this pidfd");
            let subject = format!(
                "{} ({}, opened at step {} on {}, TID {})",
                watched.model_fd, watched.kind, watched.step, watched.thread, watched.tid
            );
            match observe(&watched.fd, expected) {
                Ok(observed) if same(observed, expected) => {}
                Ok(observed) => differences.push(Difference {
                    subject,
                    model: expected.to_string(),
                    kernel: observed.to_string(),
                }),
                Err(err) => differences.push(Difference {
                    subject,
                    model: expected.to_string(),
                    kernel: format!("poll failed: {err}"),
                }),
            }
        }
        differences
    }

    fn report(&self, script: &[Step], index: usize, differences: &[Difference]) -> String {
        let mut text = format!(
            "kernel and model differ after step {index} ({}):\n",
            script[index]
        );
        for difference in differences {
            text.push_str(&format!(
                "  {}: model {}, kernel {}\n",
                difference.subject, difference.model, difference.kernel
            ));
        }
        text.push_str("script:\n");
        for (number, step) in script.iter().enumerate() {
            let marker = if number == index { " <-- here" } else { "" };
            text.push_str(&format!("  {number}: {step}{marker}\n"));
        }
        text.push_str("helper log:\n");
        for line in &self.log {
            text.push_str(&format!("  {line}\n"));
        }
        text.push_str("model threads:\n");
        for snapshot in self.model.sim.threads() {
            text.push_str(&format!("  {snapshot:?}\n"));
        }
        text
    }
}

fn expect_ok(reply: String) -> io::Result<()> {
    if reply == "ok" {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "expected \"ok\" from the helper, got {reply:?}"
        )))
    }
}

fn same(observed: sys::Readiness, expected: ModelReadiness) -> bool {
    observed.readable == expected.readable && observed.hangup == expected.hangup
}

/// Polls `fd` now when the model expects nothing. When the model expects an
/// exit, waits until the kernel reports the same readiness, for at most
/// [`EXIT_TIMEOUT`], and returns the last readiness seen.
fn observe(fd: impl AsFd, expected: ModelReadiness) -> io::Result<sys::Readiness> {
    if expected == ModelReadiness::NONE {
        return sys::readiness(fd);
    }
    wait_until(fd.as_fd(), EXIT_TIMEOUT, |readiness| {
        same(readiness, expected)
    })
}

/// Waits until `done` accepts the readiness of `fd`, or `timeout` passes.
///
/// `poll` returns at once while the pidfd is readable, so it cannot wait for
/// POLLHUP to join POLLIN. Between the two, the task has exited but is not
/// yet released. That window is short, so this loop yields until it closes.
fn wait_until(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: Duration,
    done: impl Fn(sys::Readiness) -> bool,
) -> io::Result<sys::Readiness> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let readiness = sys::wait_readable(fd, Some(left))?;
        if done(readiness) || left.is_zero() {
            return Ok(readiness);
        }
        if readiness.exited() {
            std::thread::yield_now();
        }
    }
}

/// Waits until a synchronisation pidfd hangs up, which means its task has
/// been released.
fn wait_for_hangup(fd: &OwnedFd, what: &str) -> io::Result<()> {
    let readiness = wait_until(fd.as_fd(), SYNC_TIMEOUT, |readiness| readiness.hangup)?;
    if readiness.hangup {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "timed out: the PIDFD_THREAD pidfd on the {what} reports {readiness}, not a hang-up, after {SYNC_TIMEOUT:?}"
        )))
    }
}

/// Checks the errno of a failed `pidfd_open` against the model's reason:
/// `ESRCH` for a TID without a task, and `EINVAL` (Linux 5.3 to 6.17) or
/// `ENOENT` (6.18) for a process pidfd on a non-leader. The model's
/// `OpenError::errno` gives `EINVAL` for both releases.
fn errno_matches(expected: &OpenError, err: &io::Error) -> bool {
    let errno = err.raw_os_error();
    if expected.errno() == pidwatch_model::ESRCH {
        errno == Some(libc::ESRCH)
    } else {
        errno == Some(libc::EINVAL) || errno == Some(libc::ENOENT)
    }
}

fn errno_text(err: &io::Error) -> String {
    match err.raw_os_error().and_then(sys::errno_name) {
        Some(name) => format!("{name} ({err})"),
        None => err.to_string(),
    }
}

/// One generated choice. Selectors pick among the threads that fit when the
/// script is resolved against the model, so every choice stays meaningful
/// while proptest shrinks the list.
#[derive(Clone, Copy, Debug)]
enum Choice {
    Spawn,
    WorkerExit(usize),
    LeaderExit,
    ExecController,
    ExecWorker(usize),
    ExecLeader,
    /// A thread selector, and whether the pidfd gets `PIDFD_THREAD`.
    Open(usize, bool),
}

fn choice() -> impl Strategy<Value = Choice> {
    prop_oneof![
        3 => Just(Choice::Spawn),
        1 => (0..4usize).prop_map(Choice::WorkerExit),
        1 => Just(Choice::LeaderExit),
        1 => Just(Choice::ExecController),
        1 => (0..4usize).prop_map(Choice::ExecWorker),
        1 => Just(Choice::ExecLeader),
        5 => (0..8usize, any::<bool>()).prop_map(|(thread, flag)| Choice::Open(thread, flag)),
    ]
}

/// Turns generated choices into a script of valid steps, dropping the
/// choices that do not fit the state they meet, and appends SIGKILL and
/// reap when `kill_and_reap` is set.
fn resolve(choices: &[Choice], kill_and_reap: bool) -> Vec<Step> {
    let mut model = Model::new();
    let mut script = Vec::new();
    for choice in choices {
        let pick_worker = |selector: usize| -> Option<ThreadIndex> {
            let workers = &model.workers;
            (!workers.is_empty()).then(|| workers[selector % workers.len()])
        };
        let step = match *choice {
            Choice::Spawn => Some(Step::SpawnWorker),
            Choice::WorkerExit(selector) => pick_worker(selector).map(Step::WorkerExit),
            Choice::LeaderExit => Some(Step::LeaderExit),
            Choice::ExecController => Some(Step::Exec(model.controller)),
            Choice::ExecWorker(selector) => pick_worker(selector).map(Step::Exec),
            Choice::ExecLeader => Some(Step::Exec(model.leader())),
            Choice::Open(selector, thread_pidfd) => {
                let thread = ThreadIndex(selector % model.thread_count());
                let kind = if thread_pidfd {
                    PidfdKind::Thread
                } else {
                    PidfdKind::Process
                };
                Some(Step::Open(thread, kind))
            }
        };
        if let Some(step) = step.filter(|step| model.allows(*step)) {
            model.apply(step);
            script.push(step);
        }
    }
    if kill_and_reap {
        script.extend([Step::Kill, Step::Reap]);
    }
    script
}

fn config() -> ProptestConfig {
    let cases = match std::env::var("PIDWATCH_DIFF_CASES") {
        Ok(text) => text.parse().unwrap_or_else(|_| {
            panic!("invalid PIDWATCH_DIFF_CASES={text:?}: expected a number of cases, such as 24")
        }),
        Err(_) => DEFAULT_CASES,
    };
    ProptestConfig {
        // A regression file would land in the source tree; the failure
        // message prints the whole script instead.
        failure_persistence: None,
        // A difference on a pidfd where the model expects an exit costs
        // EXIT_TIMEOUT per run, so shrinking is bounded in time.
        max_shrink_time: 120_000,
        ..ProptestConfig::with_cases(cases)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn generated_scripts_match_model(
        choices in prop::collection::vec(choice(), 2..=12),
        kill_and_reap in any::<bool>(),
    ) {
        let script = resolve(&choices, kill_and_reap);
        if let Err(report) = run_script(&script) {
            return Err(TestCaseError::fail(report));
        }
    }
}

/// Runs a hand-written script and fails with the report of the first
/// difference.
fn assert_script_matches(script: &[Step]) {
    if let Err(report) = run_script(script) {
        panic!("{report}");
    }
}

const LEADER: ThreadIndex = ThreadIndex(0);
const CONTROLLER: ThreadIndex = ThreadIndex(1);

#[test]
fn premature_leader_exit_then_exec() {
    // Thread 2 is the controller of the image after the exec.
    assert_script_matches(&[
        Step::Open(LEADER, PidfdKind::Process),
        Step::Open(LEADER, PidfdKind::Thread),
        Step::Open(CONTROLLER, PidfdKind::Thread),
        Step::LeaderExit,
        Step::Exec(CONTROLLER),
        Step::Open(LEADER, PidfdKind::Thread),
        Step::Open(CONTROLLER, PidfdKind::Process),
        Step::Open(ThreadIndex(2), PidfdKind::Thread),
        Step::Kill,
        Step::Reap,
    ]);
}

#[test]
fn exec_while_leader_alive() {
    // Thread 2 is a worker, and thread 3 is the controller after the exec.
    let worker = ThreadIndex(2);
    assert_script_matches(&[
        Step::SpawnWorker,
        Step::Open(LEADER, PidfdKind::Process),
        Step::Open(LEADER, PidfdKind::Thread),
        Step::Open(CONTROLLER, PidfdKind::Thread),
        Step::Open(worker, PidfdKind::Thread),
        Step::Exec(worker),
        Step::Open(worker, PidfdKind::Process),
        Step::Open(CONTROLLER, PidfdKind::Thread),
        Step::Kill,
        Step::Reap,
    ]);
}

#[test]
fn subthread_exit() {
    let worker = ThreadIndex(2);
    assert_script_matches(&[
        Step::SpawnWorker,
        Step::Open(worker, PidfdKind::Thread),
        Step::Open(LEADER, PidfdKind::Process),
        Step::Open(LEADER, PidfdKind::Thread),
        Step::Open(CONTROLLER, PidfdKind::Process),
        Step::WorkerExit(worker),
        Step::Open(worker, PidfdKind::Thread),
        Step::Kill,
        Step::Reap,
    ]);
}

#[test]
fn leader_exec() {
    // Thread 3 is the controller after the exec.
    let worker = ThreadIndex(2);
    assert_script_matches(&[
        Step::SpawnWorker,
        Step::Open(LEADER, PidfdKind::Process),
        Step::Open(LEADER, PidfdKind::Thread),
        Step::Open(CONTROLLER, PidfdKind::Thread),
        Step::Open(worker, PidfdKind::Thread),
        Step::Exec(LEADER),
        Step::Open(ThreadIndex(3), PidfdKind::Thread),
        Step::Kill,
        Step::Reap,
    ]);
}

#[test]
fn exec_twice_after_leader_exit() {
    // The controller execs after a premature leader exit, and the new
    // image's leader exits and its controller (thread 2) execs again.
    assert_script_matches(&[
        Step::Open(LEADER, PidfdKind::Thread),
        Step::LeaderExit,
        Step::Exec(CONTROLLER),
        Step::Open(CONTROLLER, PidfdKind::Thread),
        Step::Open(ThreadIndex(2), PidfdKind::Thread),
        Step::LeaderExit,
        Step::Exec(ThreadIndex(2)),
        Step::Open(CONTROLLER, PidfdKind::Process),
        Step::Kill,
        Step::Reap,
    ]);
}
