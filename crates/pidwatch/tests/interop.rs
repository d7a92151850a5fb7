//! Targets from pidfds, strings and TIDs of a known process, and the serde
//! form of events, on real processes and threads.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pidwatch::helper::HelperProcess;
use pidwatch::sys::{self, Feature, Features, PidfdFlags};
use pidwatch::{Error, EventKind, Target, TargetKind, Watcher};

const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

fn has_pidfd_thread() -> bool {
    let has = Features::get().has(Feature::PidfdThread);
    if !has {
        eprintln!("skipped: PIDFD_THREAD (Linux 6.9) is missing");
    }
    has
}

#[test]
fn from_pidfd_detects_thread_pidfds() {
    if !has_pidfd_thread() {
        return;
    }
    let (tid, stop, handle) = common::start_thread();
    let thread_pidfd = sys::pidfd_open(tid, PidfdFlags::PIDFD_THREAD).unwrap();
    let process_pidfd = sys::pidfd_open(std::process::id(), PidfdFlags::empty()).unwrap();

    let mut watcher = Watcher::new().unwrap();
    let thread = watcher
        .add(Target::from_pidfd(thread_pidfd).unwrap())
        .unwrap();
    let process = watcher
        .add(Target::try_from(process_pidfd).unwrap())
        .unwrap();
    assert_eq!(watcher.identity(thread).unwrap().kind, TargetKind::Thread);
    assert_eq!(watcher.identity(process).unwrap().kind, TargetKind::Process);

    stop.send(()).unwrap();
    handle.join().unwrap();
    let event = watcher.next_event(Some(EVENT_TIMEOUT)).unwrap().unwrap();
    assert_eq!((event.target, event.kind), (thread, EventKind::Exited));
}

#[test]
fn from_pidfd_rejects_other_files() {
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let err = Target::from_pidfd(file.into()).unwrap_err();
    assert!(matches!(err, Error::NotAPidfd { .. }), "got {err}");
    assert!(err.to_string().contains("is not a pidfd"), "{err}");
}

#[test]
fn parsed_target_with_inode_is_checked() {
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let pidfd = sys::pidfd_open(child.id(), PidfdFlags::empty()).unwrap();
    let Some(inode) = sys::pidfd_inode(&pidfd).unwrap() else {
        eprintln!("skipped: pidfs inode identity (Linux 6.9) is missing");
        child.kill().unwrap();
        child.wait().unwrap();
        return;
    };

    let mut watcher = Watcher::new().unwrap();
    let right: Target = format!("{}:{inode}", child.id()).parse().unwrap();
    let id = watcher.add(right).unwrap();
    assert_eq!(watcher.identity(id).unwrap().inode, Some(inode));

    let wrong: Target = format!("{}:{}", child.id(), inode + 1).parse().unwrap();
    let err = watcher.add(wrong).unwrap_err();
    assert!(matches!(err, Error::Reused { .. }), "got {err}");

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn thread_of_accepts_own_threads() {
    let (tid, stop, handle) = common::start_thread();
    let target = Target::thread_of(std::process::id(), tid).unwrap();
    let mut watcher = Watcher::new().unwrap();
    let id = match watcher.add(target) {
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
    assert_eq!(watcher.identity(id).unwrap().tid, Some(tid));

    stop.send(()).unwrap();
    handle.join().unwrap();
    let event = watcher.next_event(Some(EVENT_TIMEOUT)).unwrap().unwrap();
    assert_eq!((event.target, event.kind), (id, EventKind::Exited));
}

#[test]
fn thread_of_rejects_other_process_threads() {
    let program = Path::new(env!("CARGO_BIN_EXE_pidwatch"));
    let (_helper, ready) = HelperProcess::spawn(program).expect("start the helper");
    let me = std::process::id();

    let err = Target::thread_of(me, ready.controller).unwrap_err();
    match &err {
        Error::NotAThread { tid, pid, tgid } => {
            assert_eq!(*tid, ready.controller);
            assert_eq!(*pid, me);
            assert_eq!(*tgid, Some(ready.pid));
        }
        other => panic!("expected NotAThread, got {other}"),
    }
    assert!(
        err.to_string()
            .contains(&format!("it belongs to process {}", ready.pid)),
        "{err}"
    );
}

#[test]
fn thread_of_gone_thread_is_not_found() {
    let (tid, stop, handle) = common::start_thread();
    stop.send(()).unwrap();
    handle.join().unwrap();
    match Target::thread_of(std::process::id(), tid) {
        Err(err) if err.is_gone() => {}
        // Another thread or process took the TID in the meantime.
        Err(Error::NotAThread { .. }) => {
            eprintln!("note: TID {tid} was reused before the test could check it")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn event_serializes_status_forms() {
    let mut watcher = Watcher::new().unwrap();
    let mut exits = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let mut killed = Command::new("sleep").arg("60").spawn().unwrap();
    let exits_id = watcher.add(Target::child(&exits).unwrap()).unwrap();
    let killed_id = watcher.add(Target::child(&killed).unwrap()).unwrap();
    killed.kill().unwrap();

    let mut texts = Vec::new();
    while texts.len() < 2 {
        let event = watcher.next_event(Some(EVENT_TIMEOUT)).unwrap().unwrap();
        if event.kind != EventKind::Exited {
            continue;
        }
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["kind"], "exited");
        assert_eq!(value["source"], "kernel");
        assert_eq!(value["identity"]["kind"], "process");
        assert!(value["time"].as_f64().unwrap() > 1e9, "{value}");
        if event.target == exits_id {
            assert_eq!(value["status"], serde_json::json!({"code": 3}));
            assert_eq!(value["identity"]["pid"], exits.id());
        } else {
            assert_eq!(event.target, killed_id);
            assert_eq!(
                value["status"],
                serde_json::json!({"signal": libc::SIGKILL, "core_dumped": false})
            );
        }
        texts.push(value.to_string());
    }
    assert_eq!(exits.wait().unwrap().code(), Some(3));
    assert_eq!(killed.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn errors_convert_to_io_errors() {
    let err = Watcher::new()
        .unwrap()
        .add(Target::process(sys::PID_MAX_LIMIT))
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "got {err}");
    let message = err.to_string();
    let io = std::io::Error::from(err);
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(io.to_string(), message);
}
