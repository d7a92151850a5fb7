//! Fuzzes the JSON encoder of `pidwatch wait --json`: every event must
//! serialize, and the line must carry back the fields it was built from.
//!
//! The encoder (`EventJson`) lives in the binary's `src/cli/output.rs`.
//! The binary's modules are not part of the library, so this target
//! compiles that source file by path.

#![no_main]

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pidwatch::{Event, EventKind, Identity, Source, Target, TargetId, TargetKind, Watcher};

#[allow(dead_code)]
#[path = "../../crates/pidwatch/src/cli/output.rs"]
mod output;

#[derive(Arbitrary, Debug)]
struct Input {
    reaped: bool,
    thread: bool,
    pid: Option<u32>,
    tid: Option<u32>,
    inode: Option<u64>,
    raw_status: Option<i32>,
    source: u8,
    seconds: u64,
    nanos: u32,
    before_epoch: bool,
    already_exited: bool,
}

thread_local! {
    /// One watcher, kept for the life of the fuzzer, that watches this
    /// process. `Watcher` is not `Send`, so it lives in a thread-local,
    /// where LeakSanitizer still finds it at exit.
    static WATCHED: (Watcher, TargetId) = {
        let mut watcher = Watcher::new().expect("epoll");
        let id = watcher
            .add(Target::process(std::process::id()))
            .expect("watch this process");
        (watcher, id)
    };
}

/// Returns a real target handle, because `TargetId` has no public
/// constructor.
fn target_id() -> TargetId {
    WATCHED.with(|watched| watched.1)
}

fuzz_target!(|input: Input| {
    let identity = Identity {
        kind: if input.thread {
            TargetKind::Thread
        } else {
            TargetKind::Process
        },
        pid: input.pid,
        tid: input.tid,
        inode: input.inode,
    };
    let offset = Duration::new(input.seconds, input.nanos % 1_000_000_000);
    let time = if input.before_epoch {
        UNIX_EPOCH.checked_sub(offset)
    } else {
        UNIX_EPOCH.checked_add(offset)
    };
    let Some(time) = time else { return };
    let status = input.raw_status.map(ExitStatus::from_raw);

    let json = if input.already_exited {
        output::EventJson::already_exited(identity)
    } else {
        output::EventJson::from_event(&Event {
            target: target_id(),
            kind: if input.reaped {
                EventKind::Reaped
            } else {
                EventKind::Exited
            },
            identity,
            status,
            source: match input.source % 3 {
                0 => Source::Kernel,
                1 => Source::Verified,
                _ => Source::Polled,
            },
            time,
        })
    };
    let line = serde_json::to_string(&json).expect("every event serializes");
    assert!(!line.contains('\n'), "one event per line: {line}");
    let value: serde_json::Value = serde_json::from_str(&line).expect("the line is JSON");

    let kind = if input.reaped && !input.already_exited {
        "reaped"
    } else {
        "exited"
    };
    assert_eq!(value["kind"], kind);
    assert_eq!(
        value["target"],
        if input.thread { "thread" } else { "process" }
    );
    assert_eq!(value["pid"], serde_json::json!(input.pid));
    assert_eq!(value["inode"], serde_json::json!(input.inode));
    match input.tid {
        Some(tid) => assert_eq!(value["tid"], tid),
        None => assert!(value.get("tid").is_none(), "{line}"),
    }
    let timestamp = value["timestamp"].as_f64().expect("timestamp is a number");
    assert!(timestamp.is_finite(), "{line}");
    assert!(timestamp >= 0.0, "{line}");

    let source = value["source"].as_str().expect("source is a string");
    if input.already_exited {
        assert_eq!(source, "already_exited");
        assert!(value["status"].is_null());
    } else {
        assert!(["kernel", "verified", "polled"].contains(&source), "{line}");
        let expected = status.and_then(|status| {
            if let Some(code) = status.code() {
                Some(serde_json::json!({ "code": code }))
            } else {
                status.signal().map(|signal| {
                    serde_json::json!({
                        "signal": signal,
                        "signal_name": pidwatch::check::signal_name(signal),
                        "core_dumped": status.core_dumped(),
                    })
                })
            }
        });
        assert_eq!(
            value["status"],
            expected.unwrap_or(serde_json::Value::Null),
            "{line}"
        );
    }
    let _ = output::status_text(status);
});
