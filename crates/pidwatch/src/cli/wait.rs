//! `pidwatch wait`: block until processes and threads exit.

use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

use pidwatch::sys::{Feature, Features, PidInode};
use pidwatch::{Error, Event, EventKind, Identity, Target, TargetId, TargetKind, Watcher};

use super::args::WaitArgs;
use super::output::{status_text, EventJson};
use super::{Code, Failure};

/// How long `wait` stays after the last exit for the reaps that carry the
/// exit status, when the output shows it. A zombie whose parent does not
/// reap it in this time is reported without a status.
const REAP_GRACE: Duration = Duration::from_secs(1);

/// One target as the user named it.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash)]
struct Requested {
    kind: TargetKind,
    id: PidInode,
}

impl Requested {
    fn target(self) -> Target {
        match self.kind {
            TargetKind::Process => Target::Process(self.id),
            TargetKind::Thread => Target::Thread(self.id),
        }
    }

    fn identity(self) -> Identity {
        let (pid, tid) = match self.kind {
            TargetKind::Process => (Some(self.id.pid), None),
            TargetKind::Thread => (None, Some(self.id.pid)),
        };
        Identity {
            kind: self.kind,
            pid,
            tid,
            inode: self.id.inode,
        }
    }

    fn describe(self) -> String {
        match self.kind {
            TargetKind::Process => format!("PID {}", self.id),
            TargetKind::Thread => format!("TID {}", self.id),
        }
    }
}

/// Writes event lines to stdout and the verbose lines people read.
struct Printer {
    json: bool,
    verbose: bool,
}

impl Printer {
    fn line(&self, text: &str) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        // Each line is written whole and flushed at once, so a reader sees
        // complete lines as they happen, even through a pipe.
        writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .map_err(|err| {
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

    fn event(&self, event: &Event) -> Result<(), Failure> {
        if self.json {
            let json =
                serde_json::to_string(&EventJson::from_event(event)).expect("event serializes");
            self.line(&json)?;
        }
        Ok(())
    }

    fn exit_line(
        &self,
        identity: &Identity,
        status: Option<std::process::ExitStatus>,
    ) -> Result<(), Failure> {
        if self.verbose && !self.json {
            self.line(&format!("{identity} has exited ({})", status_text(status)))?;
        }
        Ok(())
    }

    fn already_exited(&self, requested: Requested, error: &Error) -> Result<(), Failure> {
        if self.json {
            let json = serde_json::to_string(&EventJson::already_exited(requested.identity()))
                .expect("event serializes");
            self.line(&json)?;
        } else if self.verbose {
            self.line(&format!(
                "{} had already exited: {error}",
                requested.describe()
            ))?;
        }
        Ok(())
    }
}

pub fn run(args: WaitArgs) -> Result<Code, Failure> {
    let requested = collect_targets(&args)?;
    super::validate::targets(&args)?;
    let count = match args.count {
        None => requested.len(),
        Some(count) if (1..=requested.len()).contains(&count) => count,
        Some(count) => {
            return Err(Failure::new(
                Code::Failure,
                format!(
                    "invalid --count {count}: {} target(s) given, so give a number from 1 to {}",
                    requested.len(),
                    requested.len()
                ),
            ))
        }
    };
    let printer = Printer {
        json: args.json,
        verbose: args.verbose,
    };
    let deadline = args.timeout.map(|timeout| Instant::now() + timeout);

    let mut watcher = Watcher::new().map_err(Failure::from_error)?;
    let mut exited = 0;
    for target in &requested {
        match watcher.add(target.target()) {
            Ok(_) => {}
            Err(err) if err.is_gone() && args.exited => {
                exited += 1;
                printer.already_exited(*target, &err)?;
            }
            Err(err) if err.is_gone() => {
                return Err(Failure::new(
                    Code::Failure,
                    format!("{err}; pass --exited to count it as exited"),
                ));
            }
            Err(err) => return Err(Failure::from_error(err)),
        }
    }

    // Targets whose exit line waits for the reap that carries the status.
    let wants_status = args.json || args.verbose;
    let reaps_visible = Features::get().has(Feature::PollHupAfterReap);
    let mut awaiting_reap: HashSet<TargetId> = HashSet::new();
    let mut linger_until: Option<Instant> = None;

    loop {
        if exited >= count && linger_until.is_none() {
            if awaiting_reap.is_empty() {
                return finish(&mut watcher, &printer);
            }
            let grace = Instant::now() + REAP_GRACE;
            linger_until = Some(deadline.map_or(grace, |d| d.min(grace)));
        }

        let until = match (deadline, linger_until) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        };
        let left = until.map(|u| u.saturating_duration_since(Instant::now()));
        let event = watcher.next_event(left).map_err(Failure::from_error)?;

        let Some(event) = event else {
            if linger_until.is_some() {
                // The reaps did not come in time: report what is known.
                for id in awaiting_reap.drain() {
                    if let Some(identity) = watcher.identity(id) {
                        printer.exit_line(&identity, None)?;
                    }
                }
                return Ok(Code::Success);
            }
            if watcher.is_empty() {
                // Every target reports its exit before the watcher drops
                // it, so an empty watcher means the count was reached.
                return Ok(Code::Success);
            }
            tracing::info!(exited, count, "timed out");
            if args.verbose {
                eprintln!("pidwatch: timed out: {exited} of {count} target(s) exited");
            }
            return Ok(Code::Timeout);
        };

        printer.event(&event)?;
        match event.kind {
            EventKind::Exited => {
                exited += 1;
                if event.status.is_some() || !wants_status || !reaps_visible {
                    printer.exit_line(&event.identity, event.status)?;
                } else {
                    awaiting_reap.insert(event.target);
                }
            }
            EventKind::Reaped if awaiting_reap.remove(&event.target) => {
                printer.exit_line(&event.identity, event.status)?;
            }
            _ => {}
        }
        if linger_until.is_some() && awaiting_reap.is_empty() {
            return finish(&mut watcher, &printer);
        }
    }
}

/// Prints the events already queued (such as the reap that the kernel
/// reported together with the exit) and returns success.
fn finish(watcher: &mut Watcher, printer: &Printer) -> Result<Code, Failure> {
    while let Some(event) = watcher
        .next_event(Some(Duration::ZERO))
        .map_err(Failure::from_error)?
    {
        printer.event(&event)?;
    }
    Ok(Code::Success)
}

/// Returns the requested targets in order, without duplicates.
fn collect_targets(args: &WaitArgs) -> Result<Vec<Requested>, Failure> {
    let processes = args.pids.iter().map(|id| Requested {
        kind: TargetKind::Process,
        id: *id,
    });
    let threads = args.threads.iter().map(|id| Requested {
        kind: TargetKind::Thread,
        id: *id,
    });

    let mut seen = HashSet::new();
    let requested: Vec<Requested> = processes
        .chain(threads)
        .filter(|r| seen.insert(*r))
        .collect();
    if requested.is_empty() {
        return Err(Failure::new(
            Code::Failure,
            "no PID or TID given: name at least one, as in `pidwatch wait 1234` or `pidwatch wait --thread 4321`",
        ));
    }
    Ok(requested)
}
