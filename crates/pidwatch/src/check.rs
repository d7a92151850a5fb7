//! Conformance scenarios: the thread-group cases of the kernel's pidfd
//! selftests, run on the running kernel through raw system calls and again
//! through the [`Watcher`], each compared with the fixed semantics.
//!
//! The fixed semantics are those of Linux 6.15 (backported to 6.12.31): a
//! `PIDFD_THREAD` pidfd on a thread-group leader reports no exit while any
//! thread of its group lives, and none when a subthread's exec takes over
//! the leader's PID. A scenario passes when the kernel and pidwatch both
//! match them.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use serde::Serialize;

use crate::helper::HelperProcess;
use crate::sys::{self, Feature, Features, PidfdFlags, PidfdInfoMask, Readiness};
use crate::watch::{EventKind, Regime, Source, Target, TargetId, Watcher};

/// Settings for a conformance run.
///
/// ```no_run
/// use std::time::Duration;
/// use pidwatch::check::{run_all, Options, Verdict};
///
/// let options = Options {
///     helper: "target/debug/pidwatch".into(),
///     quiet_window: Duration::from_millis(200),
///     regime: None,
/// };
/// for report in run_all(&options, Some("premature-leader-exit")) {
///     assert_ne!(report.pidwatch, Verdict::Fail, "{}", report.name);
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// The `pidwatch` binary that provides the helper mode.
    pub helper: PathBuf,
    /// How long a pidfd must stay quiet where the semantics promise no
    /// exit notification.
    pub quiet_window: Duration,
    /// The regime the watcher is forced into, or `None` for the kernel's.
    pub regime: Option<Regime>,
}

/// The outcome of one scenario in one layer.
///
/// ```
/// let skip = pidwatch::check::Verdict::Skip("PIDFD_THREAD is missing".to_owned());
/// assert_eq!(serde_json::to_string(&skip)?, r#"{"verdict":"skip","reason":"PIDFD_THREAD is missing"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict", content = "reason")]
pub enum Verdict {
    /// The layer matched the fixed semantics at every check.
    Pass,
    /// At least one check differed; the checks show which.
    Fail,
    /// The scenario cannot run on this kernel; the reason names the missing
    /// feature.
    Skip(String),
}

/// The layer a check observes.
///
/// ```
/// assert_eq!(serde_json::to_string(&pidwatch::check::Layer::Pidwatch)?, r#""pidwatch""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Raw system calls on pidfds.
    Kernel,
    /// Events from the [`Watcher`].
    Pidwatch,
}

/// One comparison of an observation with the fixed semantics.
///
/// ```no_run
/// # let options = pidwatch::check::Options { helper: "target/debug/pidwatch".into(), quiet_window: std::time::Duration::from_millis(200), regime: None };
/// for report in pidwatch::check::run_all(&options, None) {
///     for check in report.checks.iter().filter(|check| !check.ok) {
///         println!("{}: {} observed {}, expected {}", report.name, check.subject, check.observed, check.expected);
///     }
/// }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct Check {
    /// Raw kernel or pidwatch.
    pub layer: Layer,
    /// The scenario step after which the check ran.
    pub step: String,
    /// The pidfd, call or watcher target that was checked.
    pub subject: String,
    /// The observed value.
    pub observed: String,
    /// The value the fixed semantics expect.
    pub expected: String,
    /// Whether the two agree.
    pub ok: bool,
    /// True for the checks on the leader's `PIDFD_THREAD` pidfd, which the
    /// summary table shows.
    #[serde(skip)]
    pub headline: bool,
}

/// The report of one scenario.
///
/// ```no_run
/// use pidwatch::check::Layer;
/// # let options = pidwatch::check::Options { helper: "target/debug/pidwatch".into(), quiet_window: std::time::Duration::from_millis(200), regime: None };
/// for report in pidwatch::check::run_all(&options, None) {
///     println!("{}: kernel {}, expected {}", report.name, report.headline(Layer::Kernel), report.expected_headline());
/// }
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// Short name, usable as a test filter.
    pub name: &'static str,
    /// A one-line description of the scenario.
    pub description: &'static str,
    /// Whether the raw kernel interface matched the fixed semantics, or why
    /// it could not be checked.
    pub kernel: Verdict,
    /// Whether pidwatch's watcher matched the fixed semantics.
    pub pidwatch: Verdict,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// Errors that stopped the scenario early.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl ScenarioReport {
    /// Returns the headline observations of one layer, joined by arrows.
    ///
    /// ```no_run
    /// # let options = pidwatch::check::Options { helper: "target/debug/pidwatch".into(), quiet_window: std::time::Duration::from_millis(200), regime: None };
    /// for report in pidwatch::check::run_all(&options, None) {
    ///     println!("{}", report.headline(pidwatch::check::Layer::Pidwatch));
    /// }
    /// ```
    pub fn headline(&self, layer: Layer) -> String {
        let parts: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.headline && c.layer == layer)
            .map(|c| c.observed.as_str())
            .collect();
        join_or_dash(&parts)
    }

    /// Returns the expected headline, joined by arrows.
    ///
    /// ```no_run
    /// # let options = pidwatch::check::Options { helper: "target/debug/pidwatch".into(), quiet_window: std::time::Duration::from_millis(200), regime: None };
    /// for report in pidwatch::check::run_all(&options, None) {
    ///     println!("{}: expected {}", report.name, report.expected_headline());
    /// }
    /// ```
    pub fn expected_headline(&self) -> String {
        let parts: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| c.headline && c.layer == Layer::Kernel)
            .map(|c| c.expected.as_str())
            .collect();
        join_or_dash(&parts)
    }
}

fn join_or_dash(parts: &[&str]) -> String {
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" → ")
    }
}

/// A scenario: its name, description and body.
struct Scenario {
    name: &'static str,
    description: &'static str,
    needs: &'static [Feature],
    body: fn(&mut Run) -> std::io::Result<()>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "premature-leader-exit",
        description: "the leader calls SYS_exit while a subthread lives; then the group is killed and reaped",
        needs: &[Feature::PidfdThread],
        body: premature_leader_exit,
    },
    Scenario {
        name: "exec-after-leader-exit",
        description: "the leader calls SYS_exit, then the subthread execs and takes over the leader's PID",
        needs: &[Feature::PidfdThread],
        body: exec_after_leader_exit,
    },
    Scenario {
        name: "exec-while-leader-alive",
        description: "a subthread execs while the leader waits; the exec kills the leader and takes over its PID",
        needs: &[Feature::PidfdThread],
        body: exec_while_leader_alive,
    },
    Scenario {
        name: "subthread-exit",
        description: "a subthread exits while the process lives on",
        needs: &[Feature::PidfdThread],
        body: subthread_exit,
    },
    Scenario {
        name: "plain-exit",
        description: "a single-threaded process exits with status 3 and is reaped",
        needs: &[],
        body: plain_exit,
    },
    Scenario {
        name: "plain-signal",
        description: "a process is killed by SIGTERM and reaped",
        needs: &[],
        body: plain_signal,
    },
];

/// Returns the names of all scenarios.
///
/// ```
/// assert!(pidwatch::check::scenario_names().contains(&"premature-leader-exit"));
/// ```
pub fn scenario_names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// Runs every scenario whose name contains `filter` (all when `None`).
///
/// ```no_run
/// # let options = pidwatch::check::Options { helper: "target/debug/pidwatch".into(), quiet_window: std::time::Duration::from_millis(200), regime: None };
/// let reports = pidwatch::check::run_all(&options, Some("plain-exit"));
/// assert!(reports.iter().all(|report| report.name == "plain-exit"));
/// ```
pub fn run_all(options: &Options, filter: Option<&str>) -> Vec<ScenarioReport> {
    SCENARIOS
        .iter()
        .filter(|s| filter.is_none_or(|f| s.name.contains(f)))
        .map(|scenario| run_one(scenario, options))
        .collect()
}

fn run_one(scenario: &Scenario, options: &Options) -> ScenarioReport {
    let features = Features::get();
    let mut report = ScenarioReport {
        name: scenario.name,
        description: scenario.description,
        kernel: Verdict::Pass,
        pidwatch: Verdict::Pass,
        checks: Vec::new(),
        errors: Vec::new(),
    };

    let missing: Vec<String> = std::iter::once(Feature::PidfdOpen)
        .chain(scenario.needs.iter().copied())
        .filter(|f| !features.has(*f))
        .map(|f| format!("{} (Linux {})", f.name(), f.since()))
        .collect();
    if !missing.is_empty() {
        report.kernel = Verdict::Skip(format!(
            "not available here (missing from the kernel, or blocked by a sandbox): {}",
            missing.join(", ")
        ));
    }

    tracing::info!(scenario = scenario.name, "running scenario");
    let mut run = Run {
        options,
        features,
        kernel: missing.is_empty(),
        step: "start".to_owned(),
        checks: Vec::new(),
    };
    let result = (scenario.body)(&mut run);
    report.checks = run.checks;
    if let Err(err) = result {
        report.errors.push(format!("step {:?}: {err}", run.step));
    }
    for (layer, verdict) in [
        (Layer::Kernel, &mut report.kernel),
        (Layer::Pidwatch, &mut report.pidwatch),
    ] {
        let failed = report.checks.iter().any(|c| c.layer == layer && !c.ok);
        if failed || (!report.errors.is_empty() && *verdict == Verdict::Pass) {
            *verdict = Verdict::Fail;
        }
    }
    report
}

/// The state of a running scenario: settings and the checks so far.
struct Run<'a> {
    options: &'a Options,
    features: &'a Features,
    /// Whether the kernel layer runs: the kernel has what the scenario's
    /// raw checks need.
    kernel: bool,
    step: String,
    checks: Vec<Check>,
}

/// The events expected for one watcher target: the target, its label, the
/// event kinds in order, the exit status of the reap, and whether the summary
/// table shows it.
type Expectation<'a> = (TargetId, &'a str, &'a [EventKind], Option<ExitStatus>, bool);

/// The pidfds and watcher targets a thread-group scenario observes.
struct Subjects {
    /// Process pidfd of the helper, for the kernel layer.
    process: Option<OwnedFd>,
    /// `PIDFD_THREAD` pidfd of the thread-group leader, for the kernel
    /// layer (a process pidfd on kernels without `PIDFD_THREAD`).
    leader: Option<OwnedFd>,
    watcher: Watcher,
    process_target: TargetId,
    leader_target: TargetId,
}

impl Subjects {
    /// Returns the watcher events expected of the process target and of the
    /// leader's thread target.
    fn group_events<'a>(
        &self,
        kinds: &'a [EventKind],
        status: Option<ExitStatus>,
    ) -> Vec<Expectation<'a>> {
        vec![
            (
                self.process_target,
                "watcher: process",
                kinds,
                status,
                false,
            ),
            (
                self.leader_target,
                "watcher: leader thread",
                kinds,
                status,
                true,
            ),
        ]
    }
}

impl Run<'_> {
    fn step(&mut self, name: &str) {
        tracing::debug!(step = name, "scenario step");
        self.step = name.to_owned();
    }

    fn record(
        &mut self,
        layer: Layer,
        subject: &str,
        observed: String,
        expected: String,
        headline: bool,
    ) {
        let ok = observed == expected;
        if !ok {
            tracing::warn!(step = %self.step, subject, %observed, %expected, "check failed");
        }
        self.checks.push(Check {
            layer,
            step: self.step.clone(),
            subject: subject.to_owned(),
            observed,
            expected,
            ok,
            headline,
        });
    }

    /// Checks the readiness of a pidfd now.
    fn expect_poll(
        &mut self,
        subject: &str,
        fd: Option<&OwnedFd>,
        expected: Readiness,
        headline: bool,
    ) -> std::io::Result<()> {
        let Some(fd) = fd else {
            return Ok(());
        };
        let observed = sys::readiness(fd)?;
        self.record(
            Layer::Kernel,
            subject,
            observed.to_string(),
            expected.to_string(),
            headline,
        );
        Ok(())
    }

    /// Checks that a pidfd stays quiet for the whole quiet window.
    fn expect_quiet(
        &mut self,
        subject: &str,
        fd: Option<&OwnedFd>,
        headline: bool,
    ) -> std::io::Result<()> {
        let Some(fd) = fd else {
            return Ok(());
        };
        let observed = sys::wait_readable(fd, Some(self.options.quiet_window))?;
        let window = self.options.quiet_window.as_millis();
        let observed = if observed.exited() {
            format!("{observed} within {window} ms")
        } else {
            "0".to_owned()
        };
        self.record(Layer::Kernel, subject, observed, "0".to_owned(), headline);
        Ok(())
    }

    /// Checks `PIDFD_GET_INFO`: credentials present, and the exit status.
    fn expect_info(
        &mut self,
        subject: &str,
        fd: Option<&OwnedFd>,
        exit: Option<ExitStatus>,
    ) -> std::io::Result<()> {
        let Some(fd) = fd else {
            return Ok(());
        };
        if !self.features.has(Feature::PidfdGetInfo) {
            return Ok(());
        }
        let request = PidfdInfoMask::PIDFD_INFO_EXIT;
        let describe = |creds: bool, status: Option<ExitStatus>| {
            format!(
                "creds {}, exit {}",
                if creds { "yes" } else { "no" },
                status_text(status)
            )
        };
        let observed = match sys::pidfd_get_info(fd, request) {
            Ok(info) => describe(info.credentials.is_some(), info.exit_status),
            Err(err) => format!("error {err}"),
        };
        let has_exit_info = self.features.has(Feature::PidfdInfoExit);
        // Credentials are reported while the task lives; after the reap, the
        // kernel keeps only the exit information.
        let expected = match exit {
            None => describe(true, None),
            Some(status) if has_exit_info => describe(false, Some(status)),
            Some(_) => return Ok(()),
        };
        let subject = format!("PIDFD_GET_INFO on {subject}");
        self.record(Layer::Kernel, &subject, observed, expected, false);
        Ok(())
    }

    /// Opens a pidfd for the kernel layer, or returns `None` when the kernel
    /// layer does not run in this scenario.
    fn kernel_pidfd(&self, id: u32, flags: PidfdFlags) -> std::io::Result<Option<OwnedFd>> {
        if !self.kernel {
            return Ok(None);
        }
        sys::pidfd_open(id, flags).map(Some)
    }

    /// Checks that `pidfd_open` without `PIDFD_THREAD` refuses a subthread.
    fn expect_open_fails(&mut self, tid: u32) {
        let observed = match sys::pidfd_open(tid, PidfdFlags::empty()) {
            Ok(_) => "opened".to_owned(),
            Err(err) => format!(
                "failed ({})",
                err.raw_os_error().and_then(sys::errno_name).unwrap_or("?")
            ),
        };
        let failed = observed.starts_with("failed") && !observed.contains("ESRCH");
        let expected = if failed {
            observed.clone()
        } else {
            "failed (EINVAL or ENOENT)".to_owned()
        };
        self.record(
            Layer::Kernel,
            "pidfd_open(subthread, 0)",
            observed,
            expected,
            false,
        );
    }

    /// Waits for a pidfd of the kernel layer to become readable, and checks
    /// what it then reports.
    fn expect_readable(
        &mut self,
        subject: &str,
        fd: Option<&OwnedFd>,
        expected: Readiness,
    ) -> std::io::Result<()> {
        let Some(fd) = fd else {
            return Ok(());
        };
        let observed = sys::wait_readable(fd, Some(Duration::from_secs(10)))?;
        self.record(
            Layer::Kernel,
            subject,
            observed.to_string(),
            expected.to_string(),
            false,
        );
        Ok(())
    }

    /// Readiness of a pidfd whose task has been reaped: POLLHUP joins
    /// POLLIN from Linux 6.9.
    fn reaped(&self) -> Readiness {
        Readiness {
            readable: true,
            hangup: self.features.has(Feature::PollHupAfterReap),
        }
    }

    /// Checks that the watcher reports nothing within the quiet window.
    fn expect_no_events(
        &mut self,
        watcher: &mut Watcher,
        headline_target: Option<TargetId>,
    ) -> std::io::Result<()> {
        let window = self.options.quiet_window;
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match watcher
                .next_event(Some(left))
                .map_err(std::io::Error::other)?
            {
                Some(event) => seen.push(format!("{:?} {}", event.kind, event.identity)),
                None => break,
            }
        }
        let observed = if seen.is_empty() {
            "no event".to_owned()
        } else {
            seen.join(", ")
        };
        self.record(
            Layer::Pidwatch,
            "watcher",
            observed,
            "no event".to_owned(),
            headline_target.is_some(),
        );
        Ok(())
    }

    /// Collects watcher events until every target in `expected` has seen
    /// the listed kinds, then compares them, in order and with status.
    fn expect_events(
        &mut self,
        watcher: &mut Watcher,
        expected: &[Expectation<'_>],
    ) -> std::io::Result<()> {
        let mut seen: std::collections::HashMap<TargetId, Vec<(EventKind, Option<ExitStatus>)>> =
            Default::default();
        let mut polled = std::collections::HashSet::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let complete = expected
                .iter()
                .all(|(id, _, kinds, _, _)| seen.get(id).map_or(0, Vec::len) >= kinds.len());
            if complete {
                // Catch duplicates: anything more within a short grace is a bug.
                let grace = Duration::from_millis(20);
                while let Some(event) = watcher
                    .next_event(Some(grace))
                    .map_err(std::io::Error::other)?
                {
                    seen.entry(event.target)
                        .or_default()
                        .push((event.kind, event.status));
                }
                break;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match watcher
                .next_event(Some(left))
                .map_err(std::io::Error::other)?
            {
                Some(event) => {
                    if event.source == Source::Polled {
                        polled.insert(event.target);
                    }
                    seen.entry(event.target)
                        .or_default()
                        .push((event.kind, event.status))
                }
                None => break,
            }
        }

        let has_exit_info = self.features.has(Feature::PidfdInfoExit);
        for (id, subject, kinds, status, headline) in expected {
            let events = seen.remove(id).unwrap_or_default();
            // /proc shows no exit status: a polled target's events have none.
            let status = if polled.contains(id) { &None } else { status };
            let observed = describe_events(&events, has_exit_info);
            let wanted: Vec<(EventKind, Option<ExitStatus>)> = kinds
                .iter()
                .map(|kind| {
                    (
                        *kind,
                        if *kind == EventKind::Reaped {
                            *status
                        } else {
                            None
                        },
                    )
                })
                .collect();
            let expected = describe_events(&wanted, has_exit_info);
            self.record(Layer::Pidwatch, subject, observed, expected, *headline);
        }
        for (id, events) in seen {
            self.record(
                Layer::Pidwatch,
                &format!("target {id:?}"),
                describe_events(&events, has_exit_info),
                "no event".to_owned(),
                false,
            );
        }
        Ok(())
    }

    /// Starts the helper and opens the pidfds and watcher targets every
    /// thread-group scenario observes.
    fn start(&mut self) -> std::io::Result<(HelperProcess, crate::helper::Ready, Subjects)> {
        self.step("start helper");
        let (helper, ready) = HelperProcess::spawn(&self.options.helper)?;
        let mut builder = Watcher::builder();
        if let Some(regime) = self.options.regime {
            builder = builder.regime(regime);
        }
        let mut watcher = builder.build().map_err(std::io::Error::other)?;
        let process_target = watcher
            .add(Target::process(ready.pid))
            .map_err(std::io::Error::other)?;
        let leader_target = watcher
            .add(Target::thread(ready.pid))
            .map_err(std::io::Error::other)?;

        let process = self.kernel_pidfd(ready.pid, PidfdFlags::empty())?;
        let leader = if self.features.has(Feature::PidfdThread) {
            self.kernel_pidfd(ready.pid, PidfdFlags::PIDFD_THREAD)?
        } else {
            self.kernel_pidfd(ready.pid, PidfdFlags::empty())?
        };

        Ok((
            helper,
            ready,
            Subjects {
                process,
                leader,
                watcher,
                process_target,
                leader_target,
            },
        ))
    }
}

fn status_text(status: Option<ExitStatus>) -> String {
    match status {
        None => "status unknown".to_owned(),
        Some(status) => match (
            status.code(),
            std::os::unix::process::ExitStatusExt::signal(&status),
        ) {
            (Some(code), _) => format!("code {code}"),
            (None, Some(signal)) => format!("signal {}", signal_name(signal)),
            _ => format!("{status}"),
        },
    }
}

/// Returns the name of the signals the scenarios use.
///
/// ```
/// assert_eq!(pidwatch::check::signal_name(libc::SIGKILL), "SIGKILL");
/// ```
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGKILL => "SIGKILL".to_owned(),
        libc::SIGTERM => "SIGTERM".to_owned(),
        libc::SIGINT => "SIGINT".to_owned(),
        libc::SIGHUP => "SIGHUP".to_owned(),
        libc::SIGSEGV => "SIGSEGV".to_owned(),
        libc::SIGABRT => "SIGABRT".to_owned(),
        other => format!("signal {other}"),
    }
}

fn describe_events(events: &[(EventKind, Option<ExitStatus>)], with_status: bool) -> String {
    if events.is_empty() {
        return "no event".to_owned();
    }
    let parts: Vec<String> = events
        .iter()
        .map(|(kind, status)| match (kind, with_status) {
            (EventKind::Reaped, true) => format!("reaped ({})", status_text(*status)),
            (EventKind::Reaped, false) => "reaped".to_owned(),
            _ => "exited".to_owned(),
        })
        .collect();
    parts.join(", ")
}

const QUIET: Readiness = Readiness {
    readable: false,
    hangup: false,
};

const EXITED: Readiness = Readiness {
    readable: true,
    hangup: false,
};

fn killed() -> Option<ExitStatus> {
    Some(std::os::unix::process::ExitStatusExt::from_raw(
        libc::SIGKILL,
    ))
}

fn exited_with(code: i32) -> Option<ExitStatus> {
    Some(std::os::unix::process::ExitStatusExt::from_raw(code << 8))
}

/// Sends SIGKILL to the group and waits until it has exited, without
/// reaping it.
fn kill_and_wait(run: &mut Run, helper: &HelperProcess) -> std::io::Result<()> {
    run.step("SIGKILL, not reaped");
    helper.kill()?;
    if !helper.wait_exited(Duration::from_secs(10))? {
        return Err(std::io::Error::other(
            "the helper did not exit within 10 s of SIGKILL",
        ));
    }
    Ok(())
}

fn premature_leader_exit(run: &mut Run) -> std::io::Result<()> {
    let (mut helper, ready, mut subjects) = run.start()?;
    let controller = ready.controller;
    let controller_fd = run.kernel_pidfd(controller, PidfdFlags::PIDFD_THREAD)?;
    let controller_target = subjects
        .watcher
        .add(Target::thread(controller))
        .map_err(std::io::Error::other)?;

    run.step("leader exited, subthread alive");
    helper.request("leader-exit")?;
    run.expect_quiet("leader PIDFD_THREAD pidfd", subjects.leader.as_ref(), true)?;
    run.expect_poll("process pidfd", subjects.process.as_ref(), QUIET, false)?;
    run.expect_no_events(&mut subjects.watcher, Some(subjects.leader_target))?;

    if run.kernel {
        run.expect_open_fails(controller);
    }
    run.expect_poll(
        "subthread PIDFD_THREAD pidfd",
        controller_fd.as_ref(),
        QUIET,
        false,
    )?;
    run.expect_info("leader PIDFD_THREAD pidfd", subjects.leader.as_ref(), None)?;
    run.expect_info("process pidfd", subjects.process.as_ref(), None)?;

    kill_and_wait(run, &helper)?;
    run.expect_poll(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        EXITED,
        true,
    )?;

    run.step("reaped");
    helper.reap()?;
    let reaped = run.reaped();
    run.expect_poll("process pidfd", subjects.process.as_ref(), reaped, false)?;
    run.expect_poll(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        reaped,
        true,
    )?;
    run.expect_poll(
        "subthread PIDFD_THREAD pidfd",
        controller_fd.as_ref(),
        reaped,
        false,
    )?;
    run.expect_info("process pidfd", subjects.process.as_ref(), killed())?;
    run.expect_info(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        killed(),
    )?;
    run.expect_info(
        "subthread PIDFD_THREAD pidfd",
        controller_fd.as_ref(),
        killed(),
    )?;

    let both = [EventKind::Exited, EventKind::Reaped];
    let mut expected = subjects.group_events(&both, killed());
    expected.push((
        controller_target,
        "watcher: subthread",
        &both,
        killed(),
        false,
    ));
    run.expect_events(&mut subjects.watcher, &expected)
}

fn exec_scenario(run: &mut Run, leader_exits_first: bool) -> std::io::Result<()> {
    let (mut helper, ready, mut subjects) = run.start()?;
    let old_tid = ready.controller;
    let old_fd = run.kernel_pidfd(old_tid, PidfdFlags::PIDFD_THREAD)?;
    let old_target = subjects
        .watcher
        .add(Target::thread(old_tid))
        .map_err(std::io::Error::other)?;

    if leader_exits_first {
        run.step("leader exited, subthread alive");
        helper.request("leader-exit")?;
        run.expect_quiet("leader PIDFD_THREAD pidfd", subjects.leader.as_ref(), true)?;
        run.expect_no_events(&mut subjects.watcher, Some(subjects.leader_target))?;
    }

    run.step("subthread has exec'd");
    let after = helper.exec("exec")?;
    if after.pid != ready.pid {
        return Err(std::io::Error::other(format!(
            "the exec'd helper reports PID {} instead of {}",
            after.pid, ready.pid
        )));
    }
    let reaped = run.reaped();
    run.expect_readable("old TID PIDFD_THREAD pidfd", old_fd.as_ref(), reaped)?;
    run.expect_quiet("leader PIDFD_THREAD pidfd", subjects.leader.as_ref(), true)?;
    run.expect_poll("process pidfd", subjects.process.as_ref(), QUIET, false)?;
    run.expect_info(
        "old TID PIDFD_THREAD pidfd",
        old_fd.as_ref(),
        exited_with(0),
    )?;
    run.expect_info("process pidfd", subjects.process.as_ref(), None)?;
    let both = [EventKind::Exited, EventKind::Reaped];
    run.expect_events(
        &mut subjects.watcher,
        &[(old_target, "watcher: old TID", &both, exited_with(0), false)],
    )?;
    run.expect_no_events(&mut subjects.watcher, Some(subjects.leader_target))?;

    kill_and_wait(run, &helper)?;
    run.expect_poll(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        EXITED,
        true,
    )?;
    run.expect_info("leader PIDFD_THREAD pidfd", subjects.leader.as_ref(), None)?;
    let expected = subjects.group_events(&[EventKind::Exited], None);
    run.expect_events(&mut subjects.watcher, &expected)?;

    run.step("reaped");
    helper.reap()?;
    run.expect_poll(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        reaped,
        true,
    )?;
    run.expect_poll("process pidfd", subjects.process.as_ref(), reaped, false)?;
    run.expect_info(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        killed(),
    )?;
    run.expect_info("process pidfd", subjects.process.as_ref(), killed())?;
    let expected = subjects.group_events(&[EventKind::Reaped], killed());
    run.expect_events(&mut subjects.watcher, &expected)
}

fn exec_after_leader_exit(run: &mut Run) -> std::io::Result<()> {
    exec_scenario(run, true)
}

fn exec_while_leader_alive(run: &mut Run) -> std::io::Result<()> {
    exec_scenario(run, false)
}

fn subthread_exit(run: &mut Run) -> std::io::Result<()> {
    let (mut helper, _ready, mut subjects) = run.start()?;
    let tid = helper.spawn_thread()?;
    let fd = run.kernel_pidfd(tid, PidfdFlags::PIDFD_THREAD)?;
    let target = subjects
        .watcher
        .add(Target::thread(tid))
        .map_err(std::io::Error::other)?;

    run.step("subthread exited");
    helper.request(&format!("thread-exit {tid}"))?;
    let reaped = run.reaped();
    run.expect_readable("subthread PIDFD_THREAD pidfd", fd.as_ref(), reaped)?;
    run.expect_quiet("leader PIDFD_THREAD pidfd", subjects.leader.as_ref(), true)?;
    run.expect_poll("process pidfd", subjects.process.as_ref(), QUIET, false)?;
    run.expect_info("subthread PIDFD_THREAD pidfd", fd.as_ref(), exited_with(0))?;
    let both = [EventKind::Exited, EventKind::Reaped];
    run.expect_events(
        &mut subjects.watcher,
        &[(target, "watcher: subthread", &both, exited_with(0), false)],
    )?;
    run.expect_no_events(&mut subjects.watcher, Some(subjects.leader_target))?;

    kill_and_wait(run, &helper)?;
    run.step("reaped");
    helper.reap()?;
    run.expect_poll(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        reaped,
        true,
    )?;
    let expected = subjects.group_events(&both, killed());
    run.expect_events(&mut subjects.watcher, &expected)
}

fn plain_scenario(run: &mut Run, end: &str, status: Option<ExitStatus>) -> std::io::Result<()> {
    let (mut helper, _ready, mut subjects) = run.start()?;
    let both = [EventKind::Exited, EventKind::Reaped];

    run.step("exited, not reaped");
    match end {
        "exit" => helper.send("exit 3")?,
        _ => helper.signal(libc::SIGTERM)?,
    }
    run.expect_readable("process pidfd", subjects.process.as_ref(), EXITED)?;
    if !helper.wait_exited(Duration::from_secs(10))? {
        return Err(std::io::Error::other("the helper did not exit within 10 s"));
    }
    run.expect_poll(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        EXITED,
        true,
    )?;
    run.expect_info("process pidfd", subjects.process.as_ref(), None)?;

    run.step("reaped");
    let reaped_status = helper.reap()?;
    let reaped = run.reaped();
    run.record(
        Layer::Kernel,
        "waitid(P_PIDFD)",
        status_text(Some(reaped_status)),
        status_text(status),
        false,
    );
    run.expect_poll("process pidfd", subjects.process.as_ref(), reaped, false)?;
    run.expect_poll(
        "leader PIDFD_THREAD pidfd",
        subjects.leader.as_ref(),
        reaped,
        true,
    )?;
    run.expect_info("process pidfd", subjects.process.as_ref(), status)?;

    let expected = subjects.group_events(&both, status);
    run.expect_events(&mut subjects.watcher, &expected)
}

fn plain_exit(run: &mut Run) -> std::io::Result<()> {
    plain_scenario(run, "exit", exited_with(3))
}

fn plain_signal(run: &mut Run) -> std::io::Result<()> {
    plain_scenario(
        run,
        "signal",
        Some(std::os::unix::process::ExitStatusExt::from_raw(
            libc::SIGTERM,
        )),
    )
}
