//! What `pidwatch wait` prints: a line per exit for people, JSON lines for
//! programs (the schema is in docs/json.md), and the progress line.

use std::io::{IsTerminal, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use pidwatch::{EventKind, Identity, TargetKind};

use super::parse::signal_name;
use super::{Code, Failure};

/// The version of the `--json` line schema. It changes only when a field is
/// removed or changes meaning; new fields keep it.
pub const SCHEMA_VERSION: u32 = 1;

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

/// The kind of a `--json` line: the watcher's events plus the signals
/// pidwatch sends on timeout.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Exited,
    Reaped,
    SignalSent,
}

impl From<EventKind> for LineKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Reaped => LineKind::Reaped,
            _ => LineKind::Exited,
        }
    }
}

/// One line of `pidwatch wait --json`; docs/json.md describes each field.
#[derive(Debug, Serialize)]
pub struct EventJson {
    pub schema_version: u32,
    pub kind: LineKind,
    pub target: TargetKind,
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    pub inode: Option<u64>,
    pub comm: Option<String>,
    pub status: Option<StatusJson>,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal_name: Option<String>,
    pub watched_seconds: f64,
    pub timestamp: f64,
}

/// A watched target as the output names it.
#[derive(Clone, Debug)]
pub struct Watched {
    /// The numbers and inode read when the target was added.
    pub identity: Identity,
    /// The command name read when the target was added, when known.
    pub comm: Option<String>,
    /// When the target was added.
    pub added: SystemTime,
}

impl Watched {
    /// Names the target for people: `process 1234 (sleep)`, or
    /// `thread 4321 of process 1234 (worker)`; with `inode`, the pidfs
    /// inode follows the number.
    pub fn describe(&self, inode: bool) -> String {
        let number = |n: u32| match (inode, self.identity.inode) {
            (true, Some(inode)) => format!("{n}:{inode}"),
            _ => n.to_string(),
        };
        let mut text = match (self.identity.kind, self.identity.tid, self.identity.pid) {
            (TargetKind::Thread, Some(tid), Some(pid)) => {
                format!("thread {} of process {pid}", number(tid))
            }
            (TargetKind::Thread, Some(tid), None) => format!("thread {}", number(tid)),
            (_, _, Some(pid)) => format!("process {}", number(pid)),
            _ => "a pidfd target".to_owned(),
        };
        if let Some(comm) = &self.comm {
            text.push_str(&format!(" ({comm})"));
        }
        text
    }

    fn watched_for(&self, time: SystemTime) -> Duration {
        time.duration_since(self.added).unwrap_or_default()
    }

    fn json(&self, kind: LineKind, source: &'static str, time: SystemTime) -> EventJson {
        EventJson {
            schema_version: SCHEMA_VERSION,
            kind,
            target: self.identity.kind,
            pid: self.identity.pid,
            tid: self.identity.tid,
            inode: self.identity.inode,
            comm: self.comm.clone(),
            status: None,
            source,
            signal: None,
            signal_name: None,
            watched_seconds: self.watched_for(time).as_secs_f64(),
            timestamp: unix_seconds(time),
        }
    }
}

/// How much `wait` prints.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum Mode {
    /// Nothing, not even the timeout message.
    Quiet,
    /// A line per exit; `verbose` adds the inode and the event's source.
    Text { verbose: bool },
    /// A JSON object per event line.
    Json,
}

/// Writes the output lines, keeping the progress line out of their way.
pub struct Printer {
    mode: Mode,
    progress: Progress,
}

impl Printer {
    pub fn new(mode: Mode, total: usize) -> Self {
        Printer {
            mode,
            progress: Progress::new(mode != Mode::Quiet, total),
        }
    }

    /// Writes one line to stdout in a single write and flushes it, so a
    /// reader sees whole lines as they happen, even through a pipe.
    fn line(&mut self, text: &str) -> Result<(), Failure> {
        self.progress.hide();
        let mut stdout = std::io::stdout().lock();
        let result = stdout
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|()| stdout.flush());
        drop(stdout);
        self.progress.show();
        result.map_err(|err| {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                Failure::quiet(Code::Failure)
            } else {
                Failure::new(
                    Code::Failure,
                    format!("cannot write to standard output: {err}"),
                )
            }
        })
    }

    fn json_line(&mut self, line: &EventJson) -> Result<(), Failure> {
        let text = serde_json::to_string(line).map_err(|err| {
            Failure::new(Code::Failure, format!("cannot encode a JSON line: {err}"))
        })?;
        self.line(&text)
    }

    /// Prints a message on stderr, unless quiet.
    pub fn note(&mut self, text: &str) {
        if self.mode == Mode::Quiet {
            return;
        }
        self.progress.hide();
        // A closed stderr must not end the wait, so a failed write is
        // ignored (eprintln! would panic).
        let _ = writeln!(std::io::stderr(), "pidwatch: {text}");
        self.progress.show();
    }

    /// Prints the JSON line of a watcher event.
    pub fn event_json(
        &mut self,
        watched: &Watched,
        kind: EventKind,
        status: Option<ExitStatus>,
        source: pidwatch::Source,
        time: SystemTime,
    ) -> Result<(), Failure> {
        if self.mode != Mode::Json {
            return Ok(());
        }
        let mut line = watched.json(kind.into(), source.name(), time);
        line.status = status.and_then(StatusJson::from_status);
        self.json_line(&line)
    }

    /// Prints the line for people about an exit.
    pub fn exit_text(
        &mut self,
        watched: &Watched,
        status: Option<ExitStatus>,
        source: pidwatch::Source,
        time: SystemTime,
    ) -> Result<(), Failure> {
        let Mode::Text { verbose } = self.mode else {
            return Ok(());
        };
        let mut text = format!(
            "{} has exited: {}, watched {}",
            watched.describe(verbose),
            status_text(status),
            format_duration(watched.watched_for(time)),
        );
        if verbose {
            text.push_str(&format!(", source {source}"));
        }
        self.line(&text)
    }

    /// Reports a target that had exited before it could be watched.
    pub fn already_exited(&mut self, watched: &Watched, reason: &str) -> Result<(), Failure> {
        match self.mode {
            Mode::Quiet => Ok(()),
            Mode::Json => {
                let line = watched.json(LineKind::Exited, "already_exited", SystemTime::now());
                self.json_line(&line)
            }
            Mode::Text { .. } => {
                let text = format!("{} had already exited: {reason}", watched.describe(false));
                self.line(&text)
            }
        }
    }

    /// Reports a signal that pidwatch sent to a target on timeout.
    pub fn signal_sent(&mut self, watched: &Watched, signal: i32) -> Result<(), Failure> {
        match self.mode {
            Mode::Quiet => Ok(()),
            Mode::Json => {
                let mut line = watched.json(LineKind::SignalSent, "pidwatch", SystemTime::now());
                line.signal = Some(signal);
                line.signal_name = Some(signal_name(signal));
                self.json_line(&line)
            }
            Mode::Text { .. } => {
                let text = format!(
                    "sent {} to {}",
                    signal_name(signal),
                    watched.describe(false)
                );
                self.note(&text);
                Ok(())
            }
        }
    }

    /// Updates the progress line with the number of targets that exited.
    pub fn progress(&mut self, exited: usize) {
        self.progress.set(exited);
    }

    /// Removes the progress line for good.
    pub fn finish(&mut self) {
        self.progress.hide();
        self.progress.enabled = false;
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The `exited / total` line on stderr, drawn only while stderr is a
/// terminal and more than one target is watched.
struct Progress {
    enabled: bool,
    total: usize,
    exited: usize,
    visible: bool,
}

/// `\r` and the ANSI "erase to end of line" sequence (`CSI K`).
const CLEAR_LINE: &str = "\r\x1b[K";

impl Progress {
    fn new(requested: bool, total: usize) -> Self {
        Progress {
            enabled: requested && total > 1 && std::io::stderr().is_terminal(),
            total,
            exited: 0,
            visible: false,
        }
    }

    fn set(&mut self, exited: usize) {
        self.exited = exited;
        self.show();
    }

    fn show(&mut self) {
        if !self.enabled {
            return;
        }
        let text = format!(
            "{CLEAR_LINE}pidwatch: {}/{} exited",
            self.exited, self.total
        );
        let mut stderr = std::io::stderr().lock();
        // A failed write to a terminal leaves nothing to clean up.
        let _ = stderr
            .write_all(text.as_bytes())
            .and_then(|()| stderr.flush());
        self.visible = true;
    }

    fn hide(&mut self) {
        if !self.visible {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = stderr
            .write_all(CLEAR_LINE.as_bytes())
            .and_then(|()| stderr.flush());
        self.visible = false;
    }
}

fn unix_seconds(time: SystemTime) -> f64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    (since.as_micros() as f64) / 1e6
}

/// Formats a duration for people: `0.25s`, `12.50s`, `3m07s`, `2h05m`.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{:.2}s", duration.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_for_people() {
        assert_eq!(format_duration(Duration::from_millis(250)), "0.25s");
        assert_eq!(format_duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(format_duration(Duration::from_secs(7500)), "2h05m");
    }

    #[test]
    fn status_for_people() {
        assert_eq!(status_text(None), "status unknown");
        assert_eq!(
            status_text(Some(ExitStatus::from_raw(3 << 8))),
            "exit code 3"
        );
        assert_eq!(
            status_text(Some(ExitStatus::from_raw(libc::SIGKILL))),
            "killed by SIGKILL"
        );
    }
}
