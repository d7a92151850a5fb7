//! Waits for any process to exit, with a timeout, and prints how it ended.
//!
//!     sleep 3 & cargo run --example wait_pid -- $! 5s
//!     cargo run --example wait_pid -- 1234:56789 500ms
//!
//! The target is `PID` or `PID:INODE` (as `pidwatch id` prints it); the
//! timeout is a number with `ms`, `s` or `m`, and defaults to waiting
//! forever. It exits with 0 when the process exited, 3 on timeout, and 1
//! on an error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use pidwatch::{Event, EventKind, Target, Watcher};

/// How long to wait for the reap that carries a non-child's exit status.
const REAP_GRACE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("wait_pid: {message}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let mut args = std::env::args().skip(1);
    let (Some(target), timeout, None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: wait_pid PID[:INODE] [TIMEOUT, such as 5s or 500ms]".to_owned());
    };
    let target: Target = target.parse().map_err(|err| format!("{err}"))?;
    let timeout = timeout.as_deref().map(parse_duration).transpose()?;
    let deadline = timeout.map(|timeout| Instant::now() + timeout);

    let mut watcher = Watcher::new().map_err(|err| err.to_string())?;
    let id = watcher.add(target).map_err(|err| err.to_string())?;
    let identity = watcher.identity(id);

    let Some(exited) = next_event_before(&mut watcher, deadline)? else {
        let name = identity.map_or_else(|| "the process".to_owned(), |i| i.to_string());
        println!(
            "{name} is still running after {:?}",
            timeout.unwrap_or_default()
        );
        return Ok(ExitCode::from(3));
    };

    // A non-child's status comes with its reap (Linux 6.15), which its
    // parent usually does at once.
    let mut status = exited.status;
    if status.is_none() {
        let grace = Instant::now() + REAP_GRACE;
        if let Some(reaped) = next_event_before(&mut watcher, Some(grace))? {
            if reaped.kind == EventKind::Reaped {
                status = reaped.status;
            }
        }
    }
    match status {
        Some(status) => println!("{} exited: {status} ({})", exited.identity, exited.source),
        None => println!(
            "{} exited, status unknown ({})",
            exited.identity, exited.source
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns the next event, or `None` once `deadline` passes.
fn next_event_before(
    watcher: &mut Watcher,
    deadline: Option<Instant>,
) -> Result<Option<Event>, String> {
    let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    watcher.next_event(left).map_err(|err| err.to_string())
}

/// Parses `500ms`, `5s`, `2m`, or a bare number of seconds such as `2.5`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text {
        _ if text.ends_with("ms") => (&text[..text.len() - 2], 1e-3),
        _ if text.ends_with('s') => (&text[..text.len() - 1], 1.0),
        _ if text.ends_with('m') => (&text[..text.len() - 1], 60.0),
        _ => (text, 1.0),
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("invalid timeout {text:?}: use a number with ms, s or m, such as 5s")
    })?;
    Duration::try_from_secs_f64(value * unit)
        .map_err(|_| format!("invalid timeout {text:?}: it must be 0 or more"))
}
