//! `pidwatch wait`: block until processes and threads exit.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use pidwatch::sys::{self, Feature, Features, SignalScope};
use pidwatch::{Event, EventKind, Source, TargetId, TargetKind, Watcher};

use super::args::WaitArgs;
use super::output::{Mode, Printer, Watched};
use super::signals::{Step, Waiter};
use super::targets::{add_all_threads, add_requested, add_selected, Targets};
use super::{Code, Failure};

/// How long `wait` stays after the last exit for the reaps that carry the
/// exit status, when the output shows it. A zombie whose parent does not
/// reap it in this time is reported without a status.
const REAP_GRACE: Duration = Duration::from_secs(1);

/// The exit code of `--exit-status` when the kernel gave no status.
const STATUS_UNKNOWN: u8 = 255;

/// The timeout and the signals sent when it passes.
struct Plan {
    deadline: Option<Instant>,
    /// The signal sent on timeout, if any.
    signal: Option<i32>,
    kill_after: Option<Duration>,
}

/// The stage of the wait with respect to `--timeout`.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
enum Phase {
    /// Before the timeout.
    Waiting,
    /// The timeout signal was sent, and SIGKILL follows at `kill_at` if set.
    Signalled { kill_at: Option<Instant> },
    /// SIGKILL was sent, or the timeout signal without --kill-after.
    Draining,
}

pub fn run(args: WaitArgs) -> Result<Code, Failure> {
    let existed = super::validate::targets(&args)?;
    let started = Instant::now();
    let mode = if args.quiet {
        Mode::Quiet
    } else if args.json {
        Mode::Json
    } else {
        Mode::Text {
            verbose: args.verbose,
        }
    };
    let plan = Plan {
        deadline: args.timeout.map(|timeout| started + timeout),
        signal: match (args.signal, args.kill_after) {
            (None, Some(_)) => Some(libc::SIGTERM),
            (signal, _) => signal,
        },
        kill_after: args.kill_after,
    };

    let mut targets = Targets::new(Watcher::new().map_err(Failure::from_error)?);
    targets.existed_at_start = existed;
    // SIGINT and SIGTERM are caught before any target is added, so a
    // signal that arrives once pidwatch watches a target always ends it
    // with 130 or 143.
    let mut waiter = Waiter::new(&targets.watcher, mode != Mode::Quiet)?;
    // Messages about targets that had already exited wait until the total
    // is known, so the progress line can count them.
    let mut exited_before: Vec<(Watched, String)> = Vec::new();
    // The selection comes first, so a process that is both selected and
    // named is watched as selected, and a failed selection is reported
    // before the named targets are opened.
    add_selected(&args, &mut targets)?;
    add_all_threads(&args, &mut targets)?;
    add_requested(&args, &mut targets, &mut exited_before)?;

    let total = targets.total();
    if total == 0 {
        return Err(Failure::new(
            Code::Failure,
            "no PID or TID given: name at least one, as in `pidwatch wait 1234` or `pidwatch wait --thread 4321`, or select processes with --pattern, --uid, --euid or --parent",
        ));
    }
    let count = match args.count {
        None => total,
        Some(count) if (1..=total).contains(&count) => count,
        Some(count) => {
            return Err(Failure::new(
                Code::Failure,
                format!(
                    "invalid --count {count}: {total} target(s) given, so give a number from 1 to {total}"
                ),
            ))
        }
    };
    if args.exit_status && total != 1 {
        return Err(Failure::new(
            Code::Failure,
            format!(
                "--exit-status needs exactly one target, but {total} were given or selected; name one PID, or add --newest or --oldest to a selection"
            ),
        ));
    }

    let mut printer = Printer::new(mode, total);
    for (watched, reason) in &exited_before {
        printer.already_exited(watched, reason)?;
    }
    let mut run = Run {
        targets,
        printer,
        plan,
        count,
        exited: exited_before.len(),
        wants_status: mode != Mode::Quiet || args.exit_status,
        awaiting_reap: HashMap::new(),
        alive_after_timeout: HashSet::new(),
        last_status: None,
    };
    run.printer.progress(run.exited);
    let code = run.wait(&mut waiter)?;
    run.printer.finish();

    if code == Code::Success && args.exit_status {
        return Ok(exit_status_code(&mut run));
    }
    Ok(code)
}

/// The state of the wait loop.
struct Run {
    targets: Targets,
    printer: Printer,
    plan: Plan,
    count: usize,
    exited: usize,
    wants_status: bool,
    /// Targets whose exit line waits for the reap that carries the status,
    /// with how and when the exit was seen.
    awaiting_reap: HashMap<TargetId, (Source, SystemTime)>,
    /// Targets signalled on timeout that have not exited yet.
    alive_after_timeout: HashSet<TargetId>,
    /// The last exit status seen, for `--exit-status`.
    last_status: Option<ExitStatus>,
}

impl Run {
    fn wait(&mut self, waiter: &mut Waiter) -> Result<Code, Failure> {
        let reaps_visible = Features::get().has(Feature::PollHupAfterReap);
        let mut phase = Phase::Waiting;
        let mut linger_until: Option<Instant> = None;

        loop {
            let done = match phase {
                Phase::Waiting => self.exited >= self.count,
                _ => self.alive_after_timeout.is_empty(),
            };
            let code = if phase == Phase::Waiting {
                Code::Success
            } else {
                Code::Timeout
            };
            if done && linger_until.is_none() {
                if self.awaiting_reap.is_empty() {
                    return self.finish(code);
                }
                linger_until = Some(Instant::now() + REAP_GRACE);
            }

            let phase_end = match phase {
                Phase::Waiting => self.plan.deadline,
                Phase::Signalled { kill_at } => kill_at,
                Phase::Draining => None,
            };
            let until = match (phase_end, linger_until) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };

            match waiter.next(&mut self.targets.watcher, until)? {
                Step::Interrupted(code) => {
                    self.printer.finish();
                    return Ok(code);
                }
                Step::OutputClosed => return Err(Failure::quiet(Code::Failure)),
                Step::Event(event) => {
                    let mut batch = vec![event];
                    self.drain_ready(&mut batch)?;
                    for event in batch {
                        self.handle(event, reaps_visible)?;
                    }
                    if linger_until.is_some() && self.awaiting_reap.is_empty() {
                        return self.finish(code);
                    }
                }
                Step::Idle => {
                    let now = Instant::now();
                    if linger_until.is_some() || self.targets.watcher.is_empty() {
                        // Every target needed has exited, and the reaps did
                        // not come in time: report what is known.
                        self.report_unreaped()?;
                        return self.finish(code);
                    }
                    match phase {
                        Phase::Waiting => {
                            let timed_out = self.plan.deadline.is_some_and(|d| d <= now);
                            if !timed_out {
                                continue;
                            }
                            tracing::info!(exited = self.exited, count = self.count, "timed out");
                            self.printer.note(&format!(
                                "timed out: {} of {} target(s) exited",
                                self.exited, self.count
                            ));
                            let Some(signal) = self.plan.signal else {
                                return self.finish(Code::Timeout);
                            };
                            self.alive_after_timeout = self.send_signal(signal, None)?;
                            phase = match self.plan.kill_after {
                                Some(after) if signal != libc::SIGKILL => Phase::Signalled {
                                    kill_at: Some(now + after),
                                },
                                _ => Phase::Draining,
                            };
                        }
                        Phase::Signalled { kill_at } => {
                            if kill_at.is_some_and(|k| k <= now) {
                                let alive = std::mem::take(&mut self.alive_after_timeout);
                                self.alive_after_timeout =
                                    self.send_signal(libc::SIGKILL, Some(&alive))?;
                                phase = Phase::Draining;
                            }
                        }
                        Phase::Draining => {}
                    }
                }
            }
        }
    }

    /// Collects the events that are ready now, ordered so that thread exits
    /// come before process exits and exits before reaps. The kernel reports
    /// a process's exit and its last threads' exits together, so this shows
    /// each thread's exit before its thread group's.
    fn drain_ready(&mut self, batch: &mut Vec<Event>) -> Result<(), Failure> {
        while let Some(event) = self
            .targets
            .watcher
            .next_event(Some(Duration::ZERO))
            .map_err(Failure::from_error)?
        {
            batch.push(event);
        }
        batch.sort_by_key(|event| {
            let reaped = event.kind == EventKind::Reaped;
            let process = event.identity.kind == TargetKind::Process;
            (reaped, process)
        });
        Ok(())
    }

    fn handle(&mut self, event: Event, reaps_visible: bool) -> Result<(), Failure> {
        let Some(entry) = self.targets.entries.get(&event.target) else {
            return Ok(());
        };
        let watched = entry.watched.clone();
        self.printer
            .event_json(&watched, event.kind, event.status, event.source, event.time)?;
        match event.kind {
            EventKind::Exited => {
                self.exited += 1;
                self.alive_after_timeout.remove(&event.target);
                self.printer.progress(self.exited);
                if event.status.is_some() {
                    self.last_status = event.status;
                }
                if event.status.is_some() || !self.wants_status || !reaps_visible {
                    self.printer
                        .exit_text(&watched, event.status, event.source, event.time)?;
                } else {
                    self.awaiting_reap
                        .insert(event.target, (event.source, event.time));
                }
            }
            EventKind::Reaped => {
                if event.status.is_some() {
                    self.last_status = event.status;
                }
                if let Some((source, time)) = self.awaiting_reap.remove(&event.target) {
                    self.printer
                        .exit_text(&watched, event.status, source, time)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Prints the exit lines still waiting for a reap, without a status.
    fn report_unreaped(&mut self) -> Result<(), Failure> {
        let mut exits: Vec<(TargetId, (Source, SystemTime))> = self.awaiting_reap.drain().collect();
        exits.sort_by_key(|(id, _)| *id);
        for (id, (source, time)) in exits {
            if let Some(entry) = self.targets.entries.get(&id) {
                let watched = entry.watched.clone();
                self.printer.exit_text(&watched, None, source, time)?;
            }
        }
        Ok(())
    }

    /// Sends `signal` through the pidfd of each target that has not exited
    /// (only those in `only`, when given), and returns the ones it reached.
    fn send_signal(
        &mut self,
        signal: i32,
        only: Option<&HashSet<TargetId>>,
    ) -> Result<HashSet<TargetId>, Failure> {
        let mut reached = HashSet::new();
        let mut ids: Vec<TargetId> = self.targets.entries.keys().copied().collect();
        ids.sort();
        for id in ids {
            if only.is_some_and(|only| !only.contains(&id)) {
                continue;
            }
            let entry = &self.targets.entries[&id];
            if !entry.signalled_on_timeout {
                continue;
            }
            // A target whose events are all reported is no longer in the
            // watcher.
            if self.targets.watcher.identity(id).is_none() {
                continue;
            }
            let Some(pidfd) = self.targets.watcher.pidfd(id) else {
                let text = format!(
                    "cannot send {} to {}: it is watched through /proc without a pidfd, and a signal by PID could reach a process that reused the PID",
                    super::parse::signal_name(signal),
                    entry.watched.describe(false)
                );
                self.printer.note(&text);
                continue;
            };
            if sys::readiness(pidfd).is_ok_and(|r| r.exited()) {
                continue;
            }
            let watched = entry.watched.clone();
            match sys::pidfd_send_signal(pidfd, signal, SignalScope::Default) {
                Ok(()) => {
                    tracing::info!(target = %watched.identity, signal, "sent signal on timeout");
                    reached.insert(id);
                    self.printer.signal_sent(&watched, signal)?;
                }
                // The target exited between the check and the signal.
                Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {}
                Err(err) => {
                    tracing::warn!(target = %watched.identity, signal, error = %err, "pidfd_send_signal failed");
                    self.printer.note(&format!(
                        "cannot send {} to {}: {err}",
                        super::parse::signal_name(signal),
                        watched.describe(false)
                    ));
                }
            }
        }
        Ok(reached)
    }

    /// Prints the events already queued (such as the reap that the kernel
    /// reported together with the exit) and returns `code`.
    fn finish(&mut self, code: Code) -> Result<Code, Failure> {
        let mut batch = Vec::new();
        self.drain_ready(&mut batch)?;
        for event in batch {
            let Some(entry) = self.targets.entries.get(&event.target) else {
                continue;
            };
            if event.status.is_some() {
                self.last_status = event.status;
            }
            let watched = entry.watched.clone();
            self.printer.event_json(
                &watched,
                event.kind,
                event.status,
                event.source,
                event.time,
            )?;
        }
        Ok(code)
    }
}

/// Maps the one target's exit status to the exit code of `--exit-status`.
fn exit_status_code(run: &mut Run) -> Code {
    match run.last_status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Code::Target((code & 0xff) as u8),
            (None, Some(signal)) => Code::Target((128 + signal).min(255) as u8),
            _ => Code::Target(STATUS_UNKNOWN),
        },
        None => {
            run.printer.note(&format!(
                "the exit status is unknown (the kernel reports a non-child's status only after its parent reaps it, on Linux 6.15 or later, and pidwatch waits 1 s for that reap), so the exit code is {STATUS_UNKNOWN}"
            ));
            Code::Target(STATUS_UNKNOWN)
        }
    }
}
