//! The watcher on real processes and threads of the host kernel.

mod common;

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pidwatch::sys::{self, Feature, Features, PidInode, PidfdFlags};
use pidwatch::{Error, Event, EventKind, Target, TargetId, TargetKind, Watcher};

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn spawn_sleep() -> Child {
    Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep")
}

/// Collects events until `count` have arrived, failing after a timeout.
fn collect(watcher: &mut Watcher, count: usize) -> Vec<Event> {
    let mut events = Vec::new();
    while events.len() < count {
        match watcher.next_event(Some(EVENT_TIMEOUT)).expect("next_event") {
            Some(event) => events.push(event),
            None => panic!(
                "only {} of {count} events within {EVENT_TIMEOUT:?}: {events:?}",
                events.len()
            ),
        }
    }
    events
}

/// Asserts that no further event arrives within a short window.
fn assert_no_more_events(watcher: &mut Watcher) {
    let extra = watcher
        .next_event(Some(Duration::from_millis(100)))
        .expect("next_event");
    assert!(extra.is_none(), "unexpected extra event {extra:?}");
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

#[test]
fn child_exit_reports_status() {
    let mut watcher = Watcher::new().unwrap();
    let mut child = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    let id = watcher.add(Target::child(&child).unwrap()).unwrap();

    let exited = collect(&mut watcher, 1).remove(0);
    assert_eq!(exited.target, id);
    assert_eq!(exited.kind, EventKind::Exited);
    assert_eq!(exited.identity.pid, Some(child.id()));
    // The watcher peeks at its own child's status without reaping it.
    assert_eq!(exited.status.and_then(|s| s.code()), Some(7));

    assert_eq!(child.wait().unwrap().code(), Some(7));
    if reaps_visible() {
        let reaped = collect(&mut watcher, 1).remove(0);
        assert_eq!(reaped.kind, EventKind::Reaped);
        assert_eq!(reaped.target, id);
    }
    assert_no_more_events(&mut watcher);
    assert!(watcher.is_empty());
}

#[test]
fn killed_non_child_reports_signal() {
    // `sh` starts `sleep` in the background and exits, so `sleep` is
    // re-parented and is not our child.
    let output = Command::new("sh")
        .args(["-c", "sleep 60 >/dev/null 2>&1 & echo $!"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let mut watcher = Watcher::new().unwrap();
    let id = watcher.add(Target::process(pid)).unwrap();
    assert_no_more_events(&mut watcher);

    let pidfd = watcher.pidfd(id).unwrap();
    sys::pidfd_send_signal(pidfd, libc::SIGKILL, sys::SignalScope::Default).unwrap();

    let events = collect(&mut watcher, if reaps_visible() { 2 } else { 1 });
    assert_eq!(events[0].kind, EventKind::Exited);
    assert_eq!(events[0].identity.pid, Some(pid));
    if events.len() == 2 {
        assert_eq!(events[1].kind, EventKind::Reaped);
        if Features::get().has(Feature::PidfdInfoExit) {
            assert_eq!(
                events[1].status.and_then(|s| s.signal()),
                Some(libc::SIGKILL)
            );
        }
    }
    assert_no_more_events(&mut watcher);
}

#[test]
fn zombie_counts_as_exited_at_once() {
    let mut child = Command::new("true").spawn().unwrap();
    let pidfd = sys::pidfd_open(child.id(), PidfdFlags::empty()).unwrap();
    // Wait for the exit without reaping, so the child stays a zombie.
    assert!(
        sys::wait_readable(&pidfd, Some(EVENT_TIMEOUT))
            .unwrap()
            .readable
    );

    let mut watcher = Watcher::new().unwrap();
    let id = watcher.add(Target::process(child.id())).unwrap();
    let event = watcher
        .next_event(Some(Duration::ZERO))
        .unwrap()
        .expect("queued at add");
    assert_eq!(event.target, id);
    assert_eq!(event.kind, EventKind::Exited);
    assert_no_more_events(&mut watcher);

    child.wait().unwrap();
    if reaps_visible() {
        assert_eq!(collect(&mut watcher, 1)[0].kind, EventKind::Reaped);
    }
}

#[test]
fn reaped_pid_is_not_found() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();

    let mut watcher = Watcher::new().unwrap();
    match watcher.add(Target::process(pid)) {
        Err(err @ Error::NotFound { .. }) => assert!(err.is_gone()),
        // The PID was reused by another process in the meantime.
        Ok(_) => eprintln!("note: PID {pid} was reused before the test could check it"),
        Err(other) => panic!("expected NotFound, got {other}"),
    }
}

#[test]
fn pid_inode_mismatch_is_reused() {
    if !Features::get().has(Feature::PidfsInode) {
        eprintln!("skipped: pidfs inode identity (Linux 6.9) is missing");
        return;
    }
    let mut child = spawn_sleep();
    let pidfd = sys::pidfd_open(child.id(), PidfdFlags::empty()).unwrap();
    let inode = sys::pidfd_inode(&pidfd).unwrap().unwrap();

    let mut watcher = Watcher::new().unwrap();
    let wrong = PidInode {
        pid: child.id(),
        inode: Some(inode + 1),
    };
    let err = watcher.add(Target::Process(wrong)).unwrap_err();
    assert!(matches!(err, Error::Reused { .. }), "got {err}");
    assert!(err.to_string().contains("has exited"), "{err}");

    let right = PidInode {
        pid: child.id(),
        inode: Some(inode),
    };
    let id = watcher.add(Target::Process(right)).unwrap();
    assert_eq!(watcher.identity(id).unwrap().inode, Some(inode));

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn thread_exit_reported_once() {
    if !Features::get().has(Feature::PidfdThread) {
        eprintln!("skipped: PIDFD_THREAD (Linux 6.9) is missing");
        return;
    }
    let (tid, stop, handle) = common::start_thread();
    let mut watcher = Watcher::new().unwrap();
    let id = watcher.add(Target::thread(tid)).unwrap();

    let identity = watcher.identity(id).unwrap();
    assert_eq!(identity.kind, TargetKind::Thread);
    assert_eq!(identity.tid, Some(tid));
    assert_eq!(identity.pid, Some(std::process::id()));
    assert_no_more_events(&mut watcher);

    stop.send(()).unwrap();
    handle.join().unwrap();
    let events = collect(&mut watcher, if reaps_visible() { 2 } else { 1 });
    assert_eq!(events[0].kind, EventKind::Exited);
    assert_eq!(events[0].identity.tid, Some(tid));
    assert_no_more_events(&mut watcher);
}

#[test]
fn thread_as_process_is_rejected() {
    let (tid, stop, handle) = common::start_thread();
    let mut watcher = Watcher::new().unwrap();

    let err = watcher.add(Target::process(tid)).unwrap_err();
    match &err {
        Error::NotAProcess { tid: got, tgid } => {
            assert_eq!(*got, tid);
            assert_eq!(*tgid, Some(std::process::id()));
        }
        other => panic!("expected NotAProcess, got {other}"),
    }
    assert!(err.to_string().contains("is a thread"), "{err}");

    stop.send(()).unwrap();
    handle.join().unwrap();
}

#[test]
fn many_children_each_reported_once() {
    const CHILDREN: usize = 100;
    let mut watcher = Watcher::new().unwrap();
    let mut children: HashMap<TargetId, Child> = HashMap::new();
    for _ in 0..CHILDREN {
        let child = spawn_sleep();
        let id = watcher.add(Target::child(&child).unwrap()).unwrap();
        children.insert(id, child);
    }
    assert_no_more_events(&mut watcher);

    for child in children.values_mut() {
        child.kill().unwrap();
    }
    for child in children.values_mut() {
        child.wait().unwrap();
    }

    let per_target = if reaps_visible() { 2 } else { 1 };
    let events = collect(&mut watcher, CHILDREN * per_target);
    let mut seen: HashMap<TargetId, Vec<EventKind>> = HashMap::new();
    for event in &events {
        assert_eq!(
            event.identity.pid,
            Some(children[&event.target].id()),
            "wrong identity in {event:?}"
        );
        seen.entry(event.target).or_default().push(event.kind);
    }
    assert_eq!(seen.len(), CHILDREN);
    for (id, kinds) in &seen {
        assert_eq!(kinds[0], EventKind::Exited, "{id:?}: {kinds:?}");
        assert_eq!(kinds.len(), per_target, "{id:?}: {kinds:?}");
    }
    assert_no_more_events(&mut watcher);
    assert!(watcher.is_empty());
}

#[test]
fn idle_wait_does_not_spin() {
    let mut child = spawn_sleep();
    let mut watcher = Watcher::new().unwrap();
    watcher.add(Target::child(&child).unwrap()).unwrap();

    let cpu = || {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    };
    let before = cpu();
    assert!(watcher
        .next_event(Some(Duration::from_millis(300)))
        .unwrap()
        .is_none());

    // A busy loop would burn about 300 ms of CPU; a blocked epoll_wait
    // burns next to none.
    let used = cpu() - before;
    assert!(
        used < Duration::from_millis(50),
        "waiting used {used:?} of CPU"
    );

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn remove_returns_the_pidfd() {
    let mut child = spawn_sleep();
    let mut watcher = Watcher::new().unwrap();
    let id = watcher.add(Target::child(&child).unwrap()).unwrap();

    let pidfd = watcher.remove(id).expect("target was watched");
    assert!(watcher.is_empty());
    assert!(watcher.remove(id).is_none());

    child.kill().unwrap();
    child.wait().unwrap();
    // The removed target reports nothing, but its pidfd still works.
    assert!(watcher
        .next_event(Some(Duration::from_millis(50)))
        .unwrap()
        .is_none());
    assert!(sys::readiness(&pidfd).unwrap().readable);
}
