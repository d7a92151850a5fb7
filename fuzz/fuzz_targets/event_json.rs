//! Fuzzes the `--json` line of `pidwatch wait` and the texts around it:
//! `StatusJson::from_status`, `EventJson` serialization, `Watched::describe`,
//! `status_text` and `format_duration`. No input may panic, and every line
//! must parse back with the fields it was built from.
//!
//! These live in the binary's `src/cli/output.rs` and `src/cli/parse.rs`.
//! The binary's modules are not part of the library, so this target
//! compiles both files by path, with stand-ins for the error types they
//! name (`shim/cli.rs`).

#![no_main]

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, UNIX_EPOCH};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pidwatch::{Identity, TargetKind};

#[allow(dead_code)]
#[path = "../shim/cli.rs"]
mod shim;

use shim::{Code, Failure};

#[allow(dead_code)]
#[path = "../../crates/pidwatch/src/cli/parse.rs"]
mod parse;

#[allow(dead_code)]
#[path = "../../crates/pidwatch/src/cli/output.rs"]
mod output;

use output::{EventJson, LineKind, StatusJson, Watched};

#[derive(Arbitrary, Debug)]
struct Input {
    kind: u8,
    thread: bool,
    pid: Option<u32>,
    tid: Option<u32>,
    inode: Option<u64>,
    comm: Option<String>,
    raw_status: Option<i32>,
    source: u8,
    signal: Option<i32>,
    watched_micros: u64,
    seconds: u64,
    nanos: u32,
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
    let Some(added) =
        UNIX_EPOCH.checked_add(Duration::new(input.seconds, input.nanos % 1_000_000_000))
    else {
        return;
    };
    let watched = Watched {
        identity,
        comm: input.comm.clone(),
        added,
    };
    for inode in [false, true] {
        let text = watched.describe(inode);
        if let Some(comm) = &input.comm {
            assert!(text.ends_with(&format!(" ({comm})")), "{text:?}");
        }
    }

    let status = input.raw_status.map(ExitStatus::from_raw);
    let _ = output::status_text(status);
    let watched_for = Duration::from_micros(input.watched_micros);
    assert!(!output::format_duration(watched_for).is_empty());

    let kind = match input.kind % 3 {
        0 => LineKind::Exited,
        1 => LineKind::Reaped,
        _ => LineKind::SignalSent,
    };
    let source = match input.source % 4 {
        0 => "kernel",
        1 => "verified",
        2 => "polled",
        _ => "already_exited",
    };
    let line = EventJson {
        schema_version: output::SCHEMA_VERSION,
        kind,
        target: identity.kind,
        pid: identity.pid,
        tid: identity.tid,
        inode: identity.inode,
        comm: input.comm.clone(),
        status: status.and_then(StatusJson::from_status),
        source,
        signal: input.signal,
        signal_name: input.signal.map(parse::signal_name),
        watched_seconds: watched_for.as_secs_f64(),
        timestamp: input.seconds as f64,
    };
    let text = serde_json::to_string(&line).expect("every line serializes");
    assert!(!text.contains('\n'), "one event per line: {text}");
    let value: serde_json::Value = serde_json::from_str(&text).expect("the line is JSON");

    assert_eq!(value["pid"], serde_json::json!(input.pid));
    assert_eq!(value["inode"], serde_json::json!(input.inode));
    assert_eq!(value["comm"], serde_json::json!(input.comm));
    match input.tid {
        Some(tid) => assert_eq!(value["tid"], tid),
        None => assert!(value.get("tid").is_none(), "{text}"),
    }
    match input.signal {
        Some(signal) => assert_eq!(value["signal"], signal),
        None => assert!(value.get("signal").is_none(), "{text}"),
    }
    let expected = status.and_then(|status| {
        if let Some(code) = status.code() {
            Some(serde_json::json!({ "code": code }))
        } else {
            status.signal().map(|signal| {
                serde_json::json!({
                    "signal": signal,
                    "signal_name": parse::signal_name(signal),
                    "core_dumped": status.core_dumped(),
                })
            })
        }
    });
    assert_eq!(
        value["status"],
        expected.unwrap_or(serde_json::Value::Null),
        "{text}"
    );

    // The stand-ins are named so that output.rs finds them at the root.
    let _ = (Code::Failure, Failure::quiet(Code::Failure));
});
