//! Text and JSON renderings of events.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use pidwatch::check::signal_name;
use pidwatch::{Event, EventKind, Identity, TargetKind};

/// The JSON form of an exit status.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum StatusJson {
    Code {
        code: i32,
    },
    Signal {
        signal: i32,
        signal_name: String,
        core_dumped: bool,
    },
}

impl StatusJson {
    pub fn from_status(status: ExitStatus) -> Option<Self> {
        if let Some(code) = status.code() {
            return Some(StatusJson::Code { code });
        }
        let signal = status.signal()?;
        Some(StatusJson::Signal {
            signal,
            signal_name: signal_name(signal),
            core_dumped: status.core_dumped(),
        })
    }
}

/// One line of `pidwatch wait --json`.
#[derive(Debug, Serialize)]
pub struct EventJson {
    /// `exited` or `reaped`.
    pub kind: EventKind,
    /// `process` or `thread`.
    pub target: TargetKind,
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    pub inode: Option<u64>,
    pub status: Option<StatusJson>,
    /// `kernel`, or `already_exited` for a target that was gone before it
    /// could be watched.
    pub source: String,
    /// Seconds since the Unix epoch, with microseconds.
    pub timestamp: f64,
}

impl EventJson {
    pub fn from_event(event: &Event) -> Self {
        EventJson {
            kind: event.kind,
            target: event.identity.kind,
            pid: event.identity.pid,
            tid: event.identity.tid,
            inode: event.identity.inode,
            status: event.status.and_then(StatusJson::from_status),
            source: event.source.name().to_owned(),
            timestamp: unix_seconds(event.time),
        }
    }

    /// Builds the `exited` line for a target that had exited before
    /// pidwatch could open it.
    pub fn already_exited(identity: Identity) -> Self {
        EventJson {
            kind: EventKind::Exited,
            target: identity.kind,
            pid: identity.pid,
            tid: identity.tid,
            inode: identity.inode,
            status: None,
            source: "already_exited".to_owned(),
            timestamp: unix_seconds(SystemTime::now()),
        }
    }
}

fn unix_seconds(time: SystemTime) -> f64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    (since.as_micros() as f64) / 1e6
}

/// Describes an exit status for people: "exit code 3", "killed by SIGKILL".
pub fn status_text(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "status unknown".to_owned();
    };
    if let Some(code) = status.code() {
        return format!("exit code {code}");
    }
    match status.signal() {
        Some(signal) if status.core_dumped() => {
            format!("killed by {} (core dumped)", signal_name(signal))
        }
        Some(signal) => format!("killed by {}", signal_name(signal)),
        None => format!("{status}"),
    }
}
