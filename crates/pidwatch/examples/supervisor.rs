//! Runs a command, restarts it each time it exits, and reports each exit
//! status, up to a restart limit.
//!
//!     cargo run --example supervisor -- --max-restarts 2 -- sh -c 'sleep 1; exit 3'
//!     cargo run --example supervisor -- --max-restarts 5 --delay 200ms -- false
//!
//! Options (before `--`): `--max-restarts N` (default 3) and `--delay`
//! between an exit and the restart (default 1s, with `ms` or `s`). It
//! exits with the last run's exit code, or 1 when that run was killed by a
//! signal.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, ExitStatus};
use std::time::Duration;

use pidwatch::{EventKind, Target, Watcher};

struct Options {
    max_restarts: u32,
    delay: Duration,
    command: Vec<String>,
}

fn main() -> ExitCode {
    match parse_options().and_then(|options| supervise(&options)) {
        Ok(last) => ExitCode::from(last.code().map_or(1, |code| code as u8)),
        Err(message) => {
            eprintln!("supervisor: {message}");
            ExitCode::from(1)
        }
    }
}

/// Runs the command `1 + max_restarts` times at most, and returns the last
/// run's status.
fn supervise(options: &Options) -> Result<ExitStatus, String> {
    let mut watcher = Watcher::new().map_err(|err| err.to_string())?;
    let mut run = 0;
    loop {
        run += 1;
        let mut child = Command::new(&options.command[0])
            .args(&options.command[1..])
            .spawn()
            .map_err(|err| format!("cannot start {:?}: {err}", options.command[0]))?;
        let id = watcher
            .add(Target::child(&child).map_err(|err| err.to_string())?)
            .map_err(|err| err.to_string())?;
        println!("run {run}: started process {}", child.id());

        // Wait for this child's exit. The watcher reads a child's status
        // without reaping it (waitid with WNOWAIT), so the event has it and
        // `child.wait()` can still reap the child.
        let exited = loop {
            match watcher.next_event(None).map_err(|err| err.to_string())? {
                Some(event) if event.target == id && event.kind == EventKind::Exited => {
                    break event
                }
                Some(_) => continue,
                None => return Err("the watcher lost the child".to_owned()),
            }
        };
        let reaped = child
            .wait()
            .map_err(|err| format!("cannot reap process {}: {err}", child.id()))?;
        let status = exited.status.unwrap_or(reaped);
        // Drop the reaped event that follows, if the kernel reports it.
        watcher.remove(id);
        println!("run {run}: {} {}", exited.identity, describe(status));

        if run > options.max_restarts {
            println!("giving up after {} restarts", options.max_restarts);
            return Ok(status);
        }
        std::thread::sleep(options.delay);
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) if status.core_dumped() => {
            format!("was killed by signal {signal} (core dumped)")
        }
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

fn parse_options() -> Result<Options, String> {
    let usage = "usage: supervisor [--max-restarts N] [--delay 1s] -- COMMAND [ARGS...]";
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        max_restarts: 3,
        delay: Duration::from_secs(1),
        command: Vec::new(),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--max-restarts" => {
                let value = args.next().ok_or(usage)?;
                options.max_restarts = value.parse().map_err(|_| {
                    format!("invalid --max-restarts {value:?}: give a whole number")
                })?;
            }
            "--delay" => {
                let value = args.next().ok_or(usage)?;
                options.delay = parse_delay(&value)?;
            }
            "--" => {
                options.command = args.by_ref().collect();
                break;
            }
            other => return Err(format!("unknown option {other:?}; {usage}")),
        }
    }
    if options.command.is_empty() {
        return Err(usage.to_owned());
    }
    Ok(options)
}

/// Parses `200ms` or `2s`.
fn parse_delay(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("invalid --delay {text:?}: use a whole number with ms or s, such as 500ms");
    if let Some(ms) = text.strip_suffix("ms") {
        return ms.parse().map(Duration::from_millis).map_err(|_| invalid());
    }
    let seconds = text.strip_suffix('s').ok_or_else(invalid)?;
    seconds
        .parse()
        .map(Duration::from_secs)
        .map_err(|_| invalid())
}
