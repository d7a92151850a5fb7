//! PID reuse torture: the watcher and the `pidwatch` binary in a private
//! PID namespace whose PID space is cycled quickly by forking and reaping
//! many short-lived processes.
//!
//! Each test re-runs this test binary as PID 1 of a new PID namespace
//! (`unshare --pid --fork --mount-proc`, with `--user --map-root-user` when
//! not root). There it sets the namespace's `pid_max` to 512, which is per
//! PID namespace since Linux 6.14. After the first wrap the kernel hands out
//! only PIDs 300 to 511, so a PID returns after about 200 forks.
//!
//! A quarter of the workers are watched as their thread-group leader
//! (`PIDFD_THREAD`), the rest as processes.
//!
//! The checks: every exit is attributed to the process that had the PID
//! when it was added (its pidfs inode, its start time in `/proc`, and its
//! exit code), exactly once; no live process is reported as exited; a
//! `PID:INODE` whose PID now names another task is rejected as exited, and
//! is never watched.
//!
//! `PIDWATCH_FULL=1` runs 100,000 exits; the default is 4,000.

use std::collections::{HashMap, HashSet};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pidwatch::sys::{self, procfs, Feature, Features, PidInode, PidfdFlags};
use pidwatch::{Error, Event, EventKind, Target, TargetId, TargetKind, Watcher};

/// Set in the environment of the copy of this binary that runs as PID 1 of
/// the new namespace.
const INNER_VAR: &str = "PIDWATCH_REUSE_INNER";

/// The `pid_max` set in the namespace.
const NAMESPACE_PID_MAX: u32 = 512;

/// Unreaped workers at any time, well below the 212 PIDs of a cycle.
const MAX_LIVE: usize = 48;

/// How long the final drain may take before the test fails.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

fn full_run() -> bool {
    std::env::var("PIDWATCH_FULL").is_ok_and(|value| value == "1")
}

/// Runs `test` of this binary as PID 1 of a new PID namespace and checks
/// that it passed there, or prints a skip line when no PID namespace can be
/// created.
fn run_in_pid_namespace(test: &str) {
    if std::env::var_os(INNER_VAR).is_some() {
        panic!("{test} must run as PID 1 of its namespace, but it was not dispatched there");
    }
    let exe = std::env::current_exe().expect("path of this test binary");
    let mut command = Command::new("unshare");
    if !rustix::process::geteuid().is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    command
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER_VAR, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = match command.output() {
        Ok(output) => output,
        Err(err) => {
            eprintln!("skipped: {test}: cannot run unshare(1) for a PID namespace: {err}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stderr.starts_with("unshare:") {
        eprintln!(
            "skipped: {test}: cannot create a PID namespace: {}",
            stderr.trim()
        );
        return;
    }
    eprintln!("--- {test} as PID 1 of a new PID namespace ---\n{stdout}{stderr}---");
    assert!(output.status.success(), "{test} failed in its namespace");
    assert!(
        stdout.contains("1 passed"),
        "{test} did not run in its namespace"
    );
}

/// Prepares the namespace: checks that this process is its PID 1 and makes
/// its PID space small. Returns false (after a skip line) when `pid_max`
/// cannot be set here.
fn enter_namespace(test: &str) -> bool {
    assert_eq!(std::process::id(), 1, "{test}: not PID 1 of a namespace");
    let path = "/proc/sys/kernel/pid_max";
    if let Err(err) = std::fs::write(path, NAMESPACE_PID_MAX.to_string()) {
        eprintln!(
            "skipped: {test}: per-namespace pid_max (Linux 6.14) cannot be set ({err}), so PIDs would not wrap within the run"
        );
        return false;
    }
    let read = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(read.trim(), NAMESPACE_PID_MAX.to_string());
    true
}

/// A small xorshift generator: the seed is printed, so a failing run can be
/// repeated with `PIDWATCH_SEED`.
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
        println!("seed {seed} (set PIDWATCH_SEED to repeat)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Forks a child that sleeps `lifetime` and then exits with `code`.
fn fork_worker(lifetime: Duration, code: i32) -> u32 {
    let sleep = libc::timespec {
        tv_sec: lifetime.as_secs() as libc::time_t,
        tv_nsec: lifetime.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the child calls only nanosleep and _exit, which are
    // async-signal-safe, so forking this multi-threaded process is sound.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: see above; `sleep` is a valid timespec on this stack.
        unsafe {
            libc::nanosleep(&sleep, std::ptr::null_mut());
            libc::_exit(code);
        }
    }
    pid as u32
}

/// Reaps any exited child without blocking.
fn reap_any() -> Option<u32> {
    // SAFETY: waitpid with a NULL status pointer writes nothing.
    let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
    (pid > 0).then_some(pid as u32)
}

/// Reaps child `pid`, blocking until it exits.
fn reap(pid: u32) {
    // SAFETY: waitpid with a NULL status pointer writes nothing.
    let ret = unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
    assert_eq!(ret, pid as libc::pid_t, "waitpid({pid})");
}

fn kill(pid: u32) {
    // SAFETY: kill takes no pointers; `pid` is a child not yet reaped.
    let ret = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    assert_eq!(ret, 0, "kill({pid})");
}

fn inode_of(pidfd: &OwnedFd) -> Option<u64> {
    sys::pidfd_inode(pidfd).unwrap()
}

/// Returns the inode of the task that has `number` now, if any.
fn current_inode(number: u32) -> Option<u64> {
    let pidfd = sys::pidfd_open(number, PidfdFlags::PIDFD_THREAD).ok()?;
    sys::pidfd_inode(&pidfd).ok().flatten()
}

/// One forked worker and what the test recorded about it.
struct Worker {
    pid: u32,
    inode: Option<u64>,
    start_time: u64,
    /// The exit code, or `None` for a sentinel that is killed.
    code: Option<i32>,
    /// This test's own pidfd on the worker, kept until its events are in.
    pidfd: Option<OwnedFd>,
    reaped: bool,
    exited_events: u32,
    reaped_events: u32,
}

impl Worker {
    fn done(&self, reaps_visible: bool) -> bool {
        self.reaped && self.exited_events == 1 && (!reaps_visible || self.reaped_events == 1)
    }
}

/// Counters printed at the end of a run.
#[derive(Debug, Default)]
struct Tally {
    forks: u64,
    pid_reuses: u64,
    exit_events: u64,
    reap_events: u64,
    exit_statuses_checked: u64,
    added_as_zombie: u64,
    stale_rejected: u64,
    start_time_collisions: u64,
}

struct Torture {
    watcher: Watcher,
    workers: HashMap<TargetId, Worker>,
    unreaped: HashMap<u32, TargetId>,
    /// The latest worker that had each PID, and the one before it.
    holder: HashMap<u32, TargetId>,
    previous_holder: HashMap<u32, TargetId>,
    pids_seen: HashSet<u32>,
    inodes_seen: HashSet<u64>,
    reaps_visible: bool,
    pidfs: bool,
    threads: bool,
    tally: Tally,
}

impl Torture {
    fn new() -> Torture {
        Torture {
            watcher: Watcher::new().unwrap(),
            workers: HashMap::new(),
            unreaped: HashMap::new(),
            holder: HashMap::new(),
            previous_holder: HashMap::new(),
            pids_seen: HashSet::new(),
            inodes_seen: HashSet::new(),
            reaps_visible: Features::get().has(Feature::PollHupAfterReap),
            pidfs: Features::get().has(Feature::PidfsInode),
            threads: Features::get().has(Feature::PidfdThread),
            tally: Tally::default(),
        }
    }

    /// Forks a worker and adds it to the watcher by plain PID, the form
    /// that PID reuse could fool: as a process, or with `as_thread` as its
    /// thread-group leader (a `PIDFD_THREAD` pidfd).
    fn spawn(&mut self, lifetime: Duration, code: Option<i32>, as_thread: bool) {
        let pid = match code {
            Some(code) => fork_worker(lifetime, code),
            None => fork_worker(Duration::from_secs(3600), 0),
        };
        self.tally.forks += 1;
        if !self.pids_seen.insert(pid) {
            self.tally.pid_reuses += 1;
        }

        // The worker cannot be reaped before this test reaps it, so the PID
        // names it until then.
        let pidfd = sys::pidfd_open(pid, PidfdFlags::empty()).unwrap();
        let inode = inode_of(&pidfd);
        if let Some(inode) = inode {
            assert!(self.inodes_seen.insert(inode), "inode {inode} seen twice");
        }
        let start_time = procfs::task_stat(pid)
            .unwrap()
            .expect("an unreaped child is in /proc")
            .start_time;
        if sys::readiness(&pidfd).unwrap().exited() {
            self.tally.added_as_zombie += 1;
        }

        let target = if as_thread {
            Target::thread(pid)
        } else {
            Target::process(pid)
        };
        let id = self.watcher.add(target).unwrap();
        let identity = self.watcher.identity(id).unwrap();
        assert_eq!(identity.pid, Some(pid));
        if as_thread {
            assert_eq!(identity.tid, Some(pid));
        }
        assert_eq!(
            identity.inode, inode,
            "watcher opened another task for PID {pid}"
        );

        let previous = self.unreaped.insert(pid, id);
        assert!(previous.is_none(), "PID {pid} reused before its reap");
        if let Some(previous) = self.holder.insert(pid, id) {
            self.previous_holder.insert(pid, previous);
        }
        self.workers.insert(
            id,
            Worker {
                pid,
                inode,
                start_time,
                code,
                pidfd: Some(pidfd),
                reaped: false,
                exited_events: 0,
                reaped_events: 0,
            },
        );
    }

    /// Checks one event against what the test recorded about its worker.
    fn verify(&mut self, event: Event) {
        let worker = self
            .workers
            .get_mut(&event.target)
            .unwrap_or_else(|| panic!("event for an unknown target: {event:?}"));
        assert_eq!(event.identity.pid, Some(worker.pid), "{event:?}");
        if event.identity.kind == TargetKind::Thread {
            assert_eq!(event.identity.tid, Some(worker.pid), "{event:?}");
        }
        assert_eq!(event.identity.inode, worker.inode, "{event:?}");

        let own = worker.pidfd.as_ref().expect("events after the last one");
        assert!(
            sys::readiness(own).unwrap().exited(),
            "live process {} reported as {:?}",
            worker.pid,
            event.kind
        );

        match event.kind {
            EventKind::Exited => {
                worker.exited_events += 1;
                assert_eq!(worker.exited_events, 1, "second exit for {}", worker.pid);
                self.tally.exit_events += 1;
                if let Some(status) = event.status {
                    match worker.code {
                        Some(code) => assert_eq!(status.code(), Some(code), "{event:?}"),
                        None => assert_eq!(
                            std::os::unix::process::ExitStatusExt::signal(&status),
                            Some(libc::SIGKILL)
                        ),
                    }
                    self.tally.exit_statuses_checked += 1;
                }

                // Start-time identity: while unreaped, /proc shows the
                // worker itself as a zombie. After the reap the PID may name
                // another process, which must differ by start time or, when
                // the clock tick is the same, by inode.
                let stat = procfs::task_stat(worker.pid).unwrap();
                if !worker.reaped {
                    let stat = stat.expect("an unreaped child is in /proc");
                    assert_eq!(stat.start_time, worker.start_time);
                    assert!(stat.is_dead(), "{} is {stat:?}", worker.pid);
                } else if let Some(stat) = stat {
                    if stat.start_time == worker.start_time && !stat.is_dead() {
                        let now = current_inode(worker.pid);
                        assert!(
                            worker.inode.is_some() && now != worker.inode,
                            "PID {} still runs with the start time of the exited worker",
                            worker.pid
                        );
                        self.tally.start_time_collisions += 1;
                    }
                }
            }
            EventKind::Reaped => {
                assert_eq!(worker.exited_events, 1, "reaped before exited: {event:?}");
                assert!(worker.reaped, "reaped event before the reap: {event:?}");
                worker.reaped_events += 1;
                assert_eq!(worker.reaped_events, 1, "second reap for {}", worker.pid);
                self.tally.reap_events += 1;
            }
            other => panic!("unexpected event kind {other:?}"),
        }
        if worker.done(self.reaps_visible) {
            worker.pidfd = None;
        }
    }

    fn drain(&mut self, timeout: Duration) -> bool {
        let mut any = false;
        while let Some(event) = self.watcher.next_event(Some(timeout)).unwrap() {
            self.verify(event);
            any = true;
            if timeout > Duration::ZERO {
                break;
            }
        }
        any
    }

    fn reap_ready(&mut self) -> bool {
        let mut any = false;
        while let Some(pid) = reap_any() {
            let id = self
                .unreaped
                .remove(&pid)
                .unwrap_or_else(|| panic!("reaped unknown child {pid}"));
            let worker = self.workers.get_mut(&id).unwrap();
            worker.reaped = true;
            if worker.done(self.reaps_visible) {
                worker.pidfd = None;
            }
            any = true;
        }
        any
    }

    /// Adds an exited worker again by `PID:INODE` while its PID names a
    /// newer worker: the watcher must reject it as exited.
    fn check_stale(&mut self, rng: &mut Rng) {
        if !self.pidfs || self.unreaped.is_empty() {
            return;
        }
        let live: Vec<u32> = self.unreaped.keys().copied().collect();
        let pid = live[rng.below(live.len() as u64) as usize];
        let Some(&id) = self.previous_holder.get(&pid) else {
            return;
        };
        let worker = &self.workers[&id];
        let Some(now) = current_inode(worker.pid) else {
            return;
        };
        if Some(now) == worker.inode {
            panic!("exited worker {} still has its inode", worker.pid);
        }
        let pinned = PidInode {
            pid: worker.pid,
            inode: worker.inode,
        };
        let target = if rng.below(2) == 0 {
            Target::Process(pinned)
        } else {
            Target::Thread(pinned)
        };
        match self.watcher.add(target) {
            Err(Error::Reused { current_inode, .. }) => {
                assert_ne!(Some(current_inode), worker.inode);
                self.tally.stale_rejected += 1;
            }
            // The new holder exited in the meantime.
            Err(Error::NotFound { .. }) => {}
            Err(other) => panic!("stale {pinned}: unexpected error {other}"),
            Ok(_) => panic!("stale {pinned} was watched although its PID was reused"),
        }
    }
}

#[test]
fn pid_reuse_torture() {
    if std::env::var_os(INNER_VAR).is_none() {
        run_in_pid_namespace("pid_reuse_torture");
        return;
    }
    if !enter_namespace("pid_reuse_torture") {
        return;
    }
    let exits: u64 = if full_run() { 100_000 } else { 4_000 };
    let mut rng = Rng::from_env();
    let mut torture = Torture::new();
    let started = Instant::now();

    // Sentinels live through the whole run; none may be reported early.
    for _ in 0..4 {
        torture.spawn(Duration::ZERO, None, false);
    }
    let sentinels: Vec<TargetId> = torture.workers.keys().copied().collect();

    while torture.tally.forks < exits + 4 {
        while torture.unreaped.len() < MAX_LIVE && torture.tally.forks < exits + 4 {
            // A quarter exit at once, often before they are added.
            let lifetime = match rng.below(4) {
                0 => Duration::ZERO,
                _ => Duration::from_micros(rng.below(2000)),
            };
            let code = (torture.tally.forks % 250) as i32 + 1;
            let as_thread = torture.threads && rng.below(4) == 0;
            torture.spawn(lifetime, Some(code), as_thread);
        }
        let reaped = torture.reap_ready();
        let events = torture.drain(Duration::ZERO);
        torture.check_stale(&mut rng);
        if !reaped && !events {
            torture.drain(Duration::from_millis(1));
        }
        for id in &sentinels {
            assert_eq!(torture.workers[id].exited_events, 0, "sentinel reported");
        }
    }

    for id in &sentinels {
        kill(torture.workers[id].pid);
    }
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while !torture
        .workers
        .values()
        .all(|worker| worker.done(torture.reaps_visible))
    {
        assert!(
            Instant::now() < deadline,
            "events missing after {DRAIN_TIMEOUT:?}: {:?}",
            torture.tally
        );
        torture.reap_ready();
        torture.drain(Duration::from_millis(5));
    }
    torture.drain(Duration::ZERO);

    let tally = &torture.tally;
    let workers = torture.workers.len() as u64;
    assert_eq!(tally.exit_events, workers, "{tally:?}");
    if torture.reaps_visible {
        assert_eq!(tally.reap_events, workers, "{tally:?}");
    }
    assert!(torture.watcher.is_empty());
    assert!(
        tally.pid_reuses > exits / 2,
        "PIDs were not reused often enough to test anything: {tally:?}"
    );
    if torture.pidfs {
        assert!(
            tally.stale_rejected > 0,
            "no stale PID:INODE checked: {tally:?}"
        );
    }
    println!(
        "{workers} exits in {:.1?}, pid_max {NAMESPACE_PID_MAX}: {tally:?}",
        started.elapsed()
    );
}

/// Forks and reaps children until the PIDs have wrapped once, so that every
/// later PID comes around again after about 200 forks.
fn wrap_pid_space() {
    loop {
        let pid = fork_worker(Duration::ZERO, 0);
        reap(pid);
        if pid >= NAMESPACE_PID_MAX - 1 {
            return;
        }
    }
}

/// Forks and reaps short-lived children until one gets `pid`, and returns
/// with that child (which sleeps for an hour) unreaped.
fn fork_until(pid: u32) -> u32 {
    for _ in 0..10 * NAMESPACE_PID_MAX {
        let child = fork_worker(Duration::from_secs(3600), 0);
        if child == pid {
            return child;
        }
        kill(child);
        reap(child);
    }
    panic!("PID {pid} did not come around again");
}

#[test]
fn reused_pid_inode_through_cli() {
    if std::env::var_os(INNER_VAR).is_none() {
        run_in_pid_namespace("reused_pid_inode_through_cli");
        return;
    }
    if !enter_namespace("reused_pid_inode_through_cli") {
        return;
    }
    if !Features::get().has(Feature::PidfsInode) {
        eprintln!(
            "skipped: reused_pid_inode_through_cli: pidfs inode identity (Linux 6.9) is missing"
        );
        return;
    }

    wrap_pid_space();

    let old = fork_worker(Duration::from_secs(3600), 0);
    let old_inode = current_inode(old).unwrap();
    kill(old);
    reap(old);
    let new = fork_until(old);
    let new_pidfd = sys::pidfd_open(new, PidfdFlags::empty()).unwrap();
    let new_inode = inode_of(&new_pidfd).unwrap();
    assert_ne!(new_inode, old_inode);
    let stale = format!("{old}:{old_inode}");

    let pidwatch = env!("CARGO_BIN_EXE_pidwatch");
    let run = |args: &[&str]| Command::new(pidwatch).args(args).output().unwrap();
    let expected = format!(
        "pidwatch: {stale} has exited: {old} now names another process or thread (inode {new_inode}); pass --exited to count it as exited"
    );

    for args in [
        vec!["wait", "-t", "10", &stale],
        vec!["wait", "-t", "10", "--thread", &stale],
    ] {
        let output = run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end(), expected, "{args:?}");
    }

    for args in [
        vec!["wait", "-e", "--json", "-t", "10", &stale],
        vec!["wait", "-e", "--json", "-t", "10", "--thread", &stale],
    ] {
        let output = run(&args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(line["source"], "already_exited", "{args:?}");
        assert_eq!(line["inode"], old_inode, "{args:?}");
    }

    // The process that has the PID now was never waited on: it still runs.
    assert!(!sys::readiness(&new_pidfd).unwrap().exited());
    kill(new);
    reap(new);
    println!("{stale} rejected while PID {old} named inode {new_inode}");
}

#[test]
fn reused_pid_now_a_thread() {
    if std::env::var_os(INNER_VAR).is_none() {
        run_in_pid_namespace("reused_pid_now_a_thread");
        return;
    }
    if !enter_namespace("reused_pid_now_a_thread") {
        return;
    }
    if !Features::get().has(Feature::PidfsInode) {
        eprintln!("skipped: reused_pid_now_a_thread: pidfs inode identity (Linux 6.9) is missing");
        return;
    }

    wrap_pid_space();

    let old = fork_worker(Duration::from_secs(3600), 0);
    let old_inode = current_inode(old).unwrap();
    kill(old);
    reap(old);

    // Start threads of this process until one gets the old PID as its TID.
    let mut thread = None;
    for _ in 0..10 * NAMESPACE_PID_MAX {
        let (tid, stop, handle) = start_parked_thread();
        if tid == old {
            thread = Some((stop, handle));
            break;
        }
        stop.send(()).unwrap();
        handle.join().unwrap();
    }
    let (stop, handle) = thread.expect("the old PID came around as a TID");

    let mut watcher = Watcher::new().unwrap();
    let pinned = PidInode {
        pid: old,
        inode: Some(old_inode),
    };
    match watcher.add(Target::Process(pinned)) {
        Err(Error::Reused { current_inode, .. }) => assert_ne!(current_inode, old_inode),
        Err(other) => panic!("{pinned} now names a thread: expected Reused, got {other}"),
        Ok(_) => panic!("{pinned} was watched although its PID names a thread now"),
    }
    stop.send(()).unwrap();
    handle.join().unwrap();
}

fn start_parked_thread() -> (
    u32,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let (tid_sender, tid_receiver) = std::sync::mpsc::channel();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        tid_sender.send(tid).unwrap();
        let _ = stopped.recv();
    });
    (tid_receiver.recv().unwrap(), stop, handle)
}
