//! Churn: thousands of targets watched at once, processes and threads
//! mixed, with random lifetimes, some already exited when they are added.
//! Every exit must be reported exactly once, with the identity the target
//! had when it was added, and never while the target still runs.
//!
//! The mix, as fractions of the target count:
//! - 55% child processes, watched by PID;
//! - 10% child processes, watched as their thread-group leader (`--thread`);
//! - 22% threads of this test process, watched by TID;
//! - 3% helper processes (`pidwatch __helper`) with two worker threads
//!   each: the workers are watched by TID, one by one, and the helper by
//!   PID, so threads of other processes take part too;
//! - 5% child processes that have exited (zombies) before they are added;
//! - 5% threads of this process that have exited before they are added,
//!   through a `PIDFD_THREAD` pidfd they opened on themselves. Once the
//!   kernel has released them, their `TID:INODE` is also added and must be
//!   rejected as gone.
//!
//! All live targets are watched at once before any is let go. Then they
//! exit after random lifetimes, and each exited child is reaped as soon as
//! its exit is reported, so its reap is reported too.
//!
//! The same churn runs in two forced regimes, where threads (or all
//! targets named by number) are polled in `/proc`.
//!
//! `PIDWATCH_FULL=1` watches 10,000 targets (3,000 in each forced regime);
//! the default is 1,000 (300).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pidwatch::helper::HelperProcess;
use pidwatch::sys::{self, procfs, Feature, Features, PidInode, PidfdFlags};
use pidwatch::watch::Regime;
use pidwatch::{Error, Event, EventKind, Source, Target, TargetId, TargetKind, Watcher};

/// How long the test waits for all events after the targets are let go.
const EVENT_TIMEOUT: Duration = Duration::from_secs(120);

fn full_run() -> bool {
    std::env::var("PIDWATCH_FULL").is_ok_and(|value| value == "1")
}

/// A small xorshift generator. The seed is printed, and `PIDWATCH_SEED`
/// repeats a run.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("PIDWATCH_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("churn: seed {seed} (set PIDWATCH_SEED to repeat)");
        Rng(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Forks a child that waits until `gate` (the read end of a pipe) reaches
/// end of file, then sleeps `lifetime` and exits with `code`. With no gate
/// it exits at once.
fn fork_child(gate: Option<(&OwnedFd, &OwnedFd)>, lifetime: Duration, code: i32) -> u32 {
    let sleep = libc::timespec {
        tv_sec: lifetime.as_secs() as libc::time_t,
        tv_nsec: lifetime.subsec_nanos() as libc::c_long,
    };
    let fds = gate.map(|(read, write)| (read.as_raw_fd(), write.as_raw_fd()));
    // SAFETY: the child makes only async-signal-safe calls (close, read,
    // nanosleep, _exit) on values prepared before the fork, so forking this
    // multi-threaded process is sound.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above; the buffer and timespec live on this stack.
        unsafe {
            if let Some((read, write)) = fds {
                libc::close(write);
                let mut byte = 0u8;
                while libc::read(read, (&raw mut byte).cast(), 1) != 0 {}
            }
            libc::nanosleep(&sleep, std::ptr::null_mut());
            libc::_exit(code);
        }
    }
    pid as u32
}

/// Creates a pipe whose ends close on exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are new and owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// What the test expects of one target.
#[derive(Debug)]
struct Expected {
    kind: TargetKind,
    /// The number the target was added by (PID or TID), if any.
    number: Option<u32>,
    inode: Option<u64>,
    task: TargetTask,
    exited_events: u32,
    reaped_events: u32,
}

#[derive(Debug)]
enum TargetTask {
    /// A child process with its start time and exit code.
    Child {
        pid: u32,
        start_time: u64,
        code: i32,
        reaped: bool,
    },
    /// A thread of this process, with the flag it sets just before it
    /// returns.
    Thread { done: Arc<AtomicBool> },
    /// A thread that exited before it was added through its own pidfd.
    ExitedThread,
    /// A worker thread of a helper process, or the helper itself, with the
    /// flag its driver sets before it requests the exit. A helper process
    /// also has its exit code and the flag set before its reap.
    Helper {
        exit_requested: Arc<AtomicBool>,
        code: Option<i32>,
        reaped: Option<Arc<AtomicBool>>,
    },
}

fn inode_of(number: u32, flags: PidfdFlags) -> Option<u64> {
    let pidfd = sys::pidfd_open(number, flags).unwrap();
    sys::pidfd_inode(&pidfd).unwrap()
}

/// Raises the soft descriptor limit to the hard one when needed and
/// returns whether `needed` descriptors fit.
fn descriptors_for(needed: u64) -> bool {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|current| current < needed) {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    let current = getrlimit(Resource::Nofile).current;
    let fits = current.is_none_or(|current| current >= needed);
    if !fits {
        eprintln!(
            "skipped: churn: RLIMIT_NOFILE is {current:?}, below the {needed} descriptors the targets need"
        );
    }
    fits
}

/// A gate the thread targets wait at until the test lets them go.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

#[test]
fn churn_exits_reported_once() {
    churn("churn_exits_reported_once", None, 1_000, 10_000);
}

/// Non-leader threads are polled in `/proc` in this regime, and leaders
/// watched as threads go through process pidfds.
#[test]
fn churn_no_thread_pidfd_regime() {
    churn(
        "churn_no_thread_pidfd_regime",
        Some(Regime::NoThreadPidfd),
        300,
        3_000,
    );
}

/// Every target the test names by number is polled in `/proc`.
#[test]
fn churn_polled() {
    churn("churn_polled", Some(Regime::NoPidfd), 300, 3_000);
}

/// Runs the churn as test `test` with `reduced` targets (`full` with
/// `PIDWATCH_FULL=1`), with the watcher forced into `regime` if given.
fn churn(test: &str, regime: Option<Regime>, reduced: usize, full: usize) {
    // One churn at a time: children forked by one would inherit the write
    // end of another's gate pipe (fork without exec keeps every
    // descriptor), and that gate would then never open.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());

    if !Features::get().has(Feature::PidfdThread) {
        eprintln!(
            "skipped: {test}: PIDFD_THREAD (Linux 6.9) is missing, so the test cannot open pidfds on its own threads"
        );
        return;
    }
    let mut builder = Watcher::builder();
    if let Some(regime) = regime {
        builder = builder.regime(regime);
    }
    let mut watcher = match builder.build() {
        Ok(watcher) => watcher,
        Err(err) => {
            eprintln!("skipped: {test}: {err}");
            return;
        }
    };
    let total: usize = if full_run() { full } else { reduced };
    let max_lifetime_ms = if full_run() { 2000 } else { 300 };
    if !descriptors_for(total as u64 + 64) {
        return;
    }
    let reaps_visible = Features::get().has(Feature::PollHupAfterReap);
    let mut rng = Rng::from_env();
    let me = std::process::id();
    let started = Instant::now();

    let process_count = total * 55 / 100;
    let leader_count = total * 10 / 100;
    let zombie_count = total * 5 / 100;
    let early_thread_count = total * 5 / 100;
    let helper_count = total / 100;
    let thread_count =
        total - process_count - leader_count - zombie_count - early_thread_count - 3 * helper_count;

    // Fork every child before the watcher opens any pidfd, so that no
    // child inherits thousands of descriptors.
    let (gate_read, gate_write) = pipe();
    let mut children: Vec<(TargetKind, u32, i32)> = Vec::new();
    for index in 0..process_count + leader_count {
        let lifetime = Duration::from_millis(rng.below(max_lifetime_ms));
        let code = (index % 200) as i32 + 1;
        let pid = fork_child(Some((&gate_read, &gate_write)), lifetime, code);
        let kind = if index < process_count {
            TargetKind::Process
        } else {
            TargetKind::Thread
        };
        children.push((kind, pid, code));
    }
    let mut zombies: Vec<(u32, i32)> = Vec::new();
    for index in 0..zombie_count {
        let code = (index % 200) as i32 + 1;
        zombies.push((fork_child(None, Duration::ZERO, code), code));
    }
    drop(gate_read);

    let mut helpers = Vec::new();
    for index in 0..helper_count {
        helpers.push(HelperRun::start(index, &mut rng, max_lifetime_ms));
    }

    let mut expected: HashMap<TargetId, Expected> = HashMap::new();

    // Zombies: exited before they are added, reported at once.
    for (pid, code) in zombies {
        let pidfd = sys::pidfd_open(pid, PidfdFlags::empty()).unwrap();
        assert!(
            sys::wait_readable(&pidfd, Some(EVENT_TIMEOUT))
                .unwrap()
                .readable
        );
        let start_time = procfs::task_stat(pid).unwrap().unwrap().start_time;
        let inode = sys::pidfd_inode(&pidfd).unwrap();
        drop(pidfd);
        let id = watcher.add(Target::process(pid)).unwrap();
        expected.insert(
            id,
            Expected {
                kind: TargetKind::Process,
                number: Some(pid),
                inode,
                task: TargetTask::Child {
                    pid,
                    start_time,
                    code,
                    reaped: false,
                },
                exited_events: 0,
                reaped_events: 0,
            },
        );
    }

    // Threads that exit before they are added: each opens a PIDFD_THREAD
    // pidfd on itself and hands it over on its way out.
    let mut rejected_pinned = 0;
    for _ in 0..early_thread_count {
        let (sender, receiver) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
                let pidfd = sys::pidfd_open(tid, PidfdFlags::PIDFD_THREAD).unwrap();
                sender.send((tid, pidfd)).unwrap();
            })
            .unwrap();
        let (tid, pidfd) = receiver.recv().unwrap();
        handle.join().unwrap();
        let inode = sys::pidfd_inode(&pidfd).unwrap();
        assert!(sys::wait_readable(&pidfd, Some(EVENT_TIMEOUT))
            .unwrap()
            .exited());

        // Once the kernel has released the thread (POLLHUP), its TID:INODE
        // names a thread that is gone. Before that, an exiting thread can
        // still be opened, and is rightly reported as exited at once.
        // A watcher without pidfds cannot check a TID:INODE at all.
        if inode.is_some() && reaps_visible && regime != Some(Regime::NoPidfd) {
            let deadline = Instant::now() + EVENT_TIMEOUT;
            while !sys::readiness(&pidfd).unwrap().hangup {
                assert!(Instant::now() < deadline, "thread {tid} never released");
                std::thread::sleep(Duration::from_micros(100));
            }
            match watcher.add(Target::Thread(PidInode { pid: tid, inode })) {
                Err(err @ (Error::NotFound { .. } | Error::Reused { .. })) => {
                    assert!(err.is_gone());
                    rejected_pinned += 1;
                }
                Err(other) => panic!("released thread {tid}: unexpected error {other}"),
                Ok(_) => panic!("released thread {tid}:{inode:?} was watched"),
            }
        }

        let id = watcher.add(Target::ThreadPidfd(pidfd)).unwrap();
        expected.insert(
            id,
            Expected {
                kind: TargetKind::Thread,
                number: None,
                inode,
                task: TargetTask::ExitedThread,
                exited_events: 0,
                reaped_events: 0,
            },
        );
    }

    // Threads of this process that run until the gate opens.
    let gate = Arc::new(Gate::default());
    let mut handles = Vec::new();
    let mut threads: Vec<(u32, Arc<AtomicBool>)> = Vec::new();
    for _ in 0..thread_count {
        let lifetime = Duration::from_millis(rng.below(max_lifetime_ms));
        let done = Arc::new(AtomicBool::new(false));
        let (sender, receiver) = mpsc::channel();
        let thread_gate = Arc::clone(&gate);
        let thread_done = Arc::clone(&done);
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                sender
                    .send(rustix::thread::gettid().as_raw_nonzero().get() as u32)
                    .unwrap();
                thread_gate.wait();
                std::thread::sleep(lifetime);
                thread_done.store(true, Ordering::SeqCst);
            })
            .unwrap();
        threads.push((receiver.recv().unwrap(), done));
        handles.push(handle);
    }

    // Add every live target, in random order, with what the test expects
    // of it.
    let mut live: Vec<(TargetKind, u32, TargetTask)> = Vec::new();
    for (kind, pid, code) in &children {
        let task = TargetTask::Child {
            pid: *pid,
            start_time: procfs::task_stat(*pid).unwrap().unwrap().start_time,
            code: *code,
            reaped: false,
        };
        live.push((*kind, *pid, task));
    }
    for helper in &helpers {
        live.extend(helper.targets());
    }
    for (tid, done) in &threads {
        let task = TargetTask::Thread {
            done: Arc::clone(done),
        };
        live.push((TargetKind::Thread, *tid, task));
    }
    for index in (1..live.len()).rev() {
        let other = rng.below(index as u64 + 1) as usize;
        live.swap(index, other);
    }
    for (kind, number, task) in live {
        let (target, flags) = match kind {
            TargetKind::Process => (Target::process(number), PidfdFlags::empty()),
            TargetKind::Thread => (Target::thread(number), PidfdFlags::PIDFD_THREAD),
        };
        let inode = inode_of(number, flags);
        let id = watcher.add(target).unwrap();
        expected.insert(
            id,
            Expected {
                kind,
                number: Some(number),
                inode,
                task,
                exited_events: 0,
                reaped_events: 0,
            },
        );
    }
    let peak = watcher.len();
    let registered = started.elapsed();

    // Let every target go at once.
    drop(gate_write);
    gate.open();
    let drivers: Vec<_> = helpers
        .into_iter()
        .map(|helper| std::thread::spawn(move || helper.drive()))
        .collect();

    let deadline = Instant::now() + EVENT_TIMEOUT;
    let complete = |expected: &HashMap<TargetId, Expected>| {
        expected.values().all(|target| {
            target.exited_events == 1 && (!reaps_visible || target.reaped_events == 1)
        })
    };
    while !complete(&expected) {
        assert!(
            Instant::now() < deadline,
            "events missing after {EVENT_TIMEOUT:?}: {:?}",
            expected
                .values()
                .filter(|t| t.exited_events != 1 || (reaps_visible && t.reaped_events != 1))
                .take(5)
                .collect::<Vec<_>>()
        );
        let Some(event) = watcher.next_event(Some(Duration::from_secs(1))).unwrap() else {
            continue;
        };
        verify(&mut expected, &event, me);
    }
    for driver in drivers {
        driver.join().unwrap();
    }
    for handle in handles {
        handle.join().unwrap();
    }
    let extra = watcher
        .next_event(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(extra.is_none(), "event after the last one: {extra:?}");
    assert!(watcher.is_empty());
    // A target that had exited before it was added may be done by the time
    // add returns (a polled thread is read at once) or stay until the next
    // call reports it (a pidfd that epoll finds readable at registration).
    let at_most_finished = early_thread_count + zombie_count;
    assert!(peak <= total, "{peak} watched at once, of {total}");
    assert!(
        peak >= total - at_most_finished,
        "{peak} watched at once, of {total} with {at_most_finished} exited early"
    );
    if Features::get().has(Feature::PidfsInode) && reaps_visible && regime != Some(Regime::NoPidfd)
    {
        assert_eq!(rejected_pinned, early_thread_count);
    }
    eprintln!(
        "{test}: {} targets ({peak} watched at once, {helper_count} helper processes, {zombie_count} zombies and {early_thread_count} threads exited before they were added), registered in {registered:.1?}, all events in {:.1?}",
        expected.len(),
        started.elapsed()
    );
}

/// Checks one event against its target and reaps a child once its exit is
/// reported.
fn verify(expected: &mut HashMap<TargetId, Expected>, event: &Event, me: u32) {
    let target = expected
        .get_mut(&event.target)
        .unwrap_or_else(|| panic!("event for an unknown target: {event:?}"));
    assert_eq!(event.identity.kind, target.kind, "{event:?}");
    // A polled target has no pidfd, so no inode: its identity is the start
    // time the watcher read when it was added.
    match event.identity.inode {
        Some(inode) => assert_eq!(Some(inode), target.inode, "{event:?}"),
        None => assert_eq!(event.source, Source::Polled, "{event:?}"),
    }
    if let Some(number) = target.number {
        match target.kind {
            TargetKind::Process => assert_eq!(event.identity.pid, Some(number), "{event:?}"),
            TargetKind::Thread => assert_eq!(event.identity.tid, Some(number), "{event:?}"),
        }
    }

    match event.kind {
        EventKind::Exited => {
            target.exited_events += 1;
            assert_eq!(target.exited_events, 1, "second exit: {event:?}");
            match &mut target.task {
                TargetTask::Child {
                    pid,
                    start_time,
                    code,
                    reaped,
                } => {
                    // Still unreaped, so /proc shows this very child.
                    let stat = procfs::task_stat(*pid).unwrap().expect("unreaped child");
                    assert_eq!(stat.start_time, *start_time);
                    assert!(
                        stat.is_dead(),
                        "live child {pid} reported as exited: {stat:?}"
                    );
                    if let Some(status) = event.status {
                        assert_eq!(status.code(), Some(*code), "{event:?}");
                    }
                    let pidfd = sys::pidfd_open(*pid, PidfdFlags::empty()).unwrap();
                    let status = sys::waitid_reap(&pidfd).unwrap().expect("exited child");
                    assert_eq!(status.code(), Some(*code));
                    *reaped = true;
                }
                TargetTask::Thread { done } => {
                    assert!(
                        done.load(Ordering::SeqCst),
                        "live thread reported as exited: {event:?}"
                    );
                    let tid = target.number.unwrap();
                    if let Some(stat) = procfs::thread_stat(me, tid).unwrap() {
                        assert!(stat.is_dead(), "thread {tid} is {stat:?}");
                    }
                }
                TargetTask::ExitedThread => {}
                TargetTask::Helper {
                    exit_requested,
                    code,
                    ..
                } => {
                    assert!(
                        exit_requested.load(Ordering::SeqCst),
                        "live helper task reported as exited: {event:?}"
                    );
                    if let (Some(code), Some(status)) = (code, event.status) {
                        assert_eq!(status.code(), Some(*code), "{event:?}");
                    }
                }
            }
        }
        EventKind::Reaped => {
            assert_eq!(target.exited_events, 1, "reaped before exited: {event:?}");
            target.reaped_events += 1;
            assert_eq!(target.reaped_events, 1, "second reap: {event:?}");
            match &target.task {
                TargetTask::Child { reaped, .. } => {
                    assert!(*reaped, "reaped event before the reap: {event:?}");
                }
                TargetTask::Helper {
                    reaped: Some(reaped),
                    ..
                } => {
                    assert!(
                        reaped.load(Ordering::SeqCst),
                        "reaped event before the reap: {event:?}"
                    );
                }
                _ => {}
            }
        }
        other => panic!("unexpected event kind {other:?}"),
    }
}

/// One helper process with two worker threads, and the script its driver
/// thread runs once the gate opens: each worker exits, then the helper
/// exits and is reaped, with a random pause before each step.
struct HelperRun {
    helper: HelperProcess,
    workers: [(u32, Arc<AtomicBool>); 2],
    exit_requested: Arc<AtomicBool>,
    reaped: Arc<AtomicBool>,
    code: i32,
    pauses: [Duration; 3],
}

impl HelperRun {
    fn start(index: usize, rng: &mut Rng, max_lifetime_ms: u64) -> HelperRun {
        let program = Path::new(env!("CARGO_BIN_EXE_pidwatch"));
        let (mut helper, _ready) = HelperProcess::spawn(program).unwrap();
        let mut worker = || (helper.spawn_thread().unwrap(), Arc::default());
        let workers = [worker(), worker()];
        let mut pause = || Duration::from_millis(rng.below(max_lifetime_ms / 3 + 1));
        HelperRun {
            helper,
            workers,
            exit_requested: Arc::default(),
            reaped: Arc::default(),
            code: (index % 100) as i32 + 10,
            pauses: [pause(), pause(), pause()],
        }
    }

    /// Returns the three targets: both workers and the helper process.
    fn targets(&self) -> Vec<(TargetKind, u32, TargetTask)> {
        let mut targets: Vec<_> = self
            .workers
            .iter()
            .map(|(tid, exit_requested)| {
                let task = TargetTask::Helper {
                    exit_requested: Arc::clone(exit_requested),
                    code: None,
                    reaped: None,
                };
                (TargetKind::Thread, *tid, task)
            })
            .collect();
        let task = TargetTask::Helper {
            exit_requested: Arc::clone(&self.exit_requested),
            code: Some(self.code),
            reaped: Some(Arc::clone(&self.reaped)),
        };
        targets.push((TargetKind::Process, self.helper.pid(), task));
        targets
    }

    fn drive(mut self) {
        for ((tid, exit_requested), pause) in self.workers.iter().zip(self.pauses) {
            std::thread::sleep(pause);
            exit_requested.store(true, Ordering::SeqCst);
            let reply = self.helper.request(&format!("thread-exit {tid}")).unwrap();
            assert_eq!(reply, "ok");
        }
        std::thread::sleep(self.pauses[2]);
        self.exit_requested.store(true, Ordering::SeqCst);
        self.helper.send(&format!("exit {}", self.code)).unwrap();
        self.reaped.store(true, Ordering::SeqCst);
        let status = self.helper.reap().unwrap();
        assert_eq!(status.code(), Some(self.code));
    }
}
