//! `pidwatch check`: the conformance scenarios and the feature table.

use std::time::Duration;

use serde::Serialize;

use pidwatch::check::{self, Layer, Options, ScenarioReport, Verdict};
use pidwatch::sys::seccomp::Sandbox;
use pidwatch::sys::{Features, Probe};
use pidwatch::watch::Regime;

use super::args::CheckArgs;
use super::{Code, Failure};

#[derive(Serialize)]
struct FeatureJson<'a> {
    name: &'static str,
    since: &'static str,
    available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Copy, Clone, Default, Serialize)]
struct Counts {
    pass: usize,
    fail: usize,
    skip: usize,
}

impl Counts {
    fn of<'a>(verdicts: impl Iterator<Item = &'a Verdict>) -> Counts {
        let mut counts = Counts::default();
        for verdict in verdicts {
            match verdict {
                Verdict::Pass => counts.pass += 1,
                Verdict::Fail => counts.fail += 1,
                Verdict::Skip(_) => counts.skip += 1,
            }
        }
        counts
    }
}

#[derive(Copy, Clone, Serialize)]
struct Summary {
    kernel: Counts,
    pidwatch: Counts,
}

#[derive(Serialize)]
struct RegimeJson {
    /// The regime of the running kernel.
    detected: Regime,
    /// The regime pidwatch's side ran in.
    watcher: Regime,
    /// The seccomp sandbox the check ran under, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<String>,
    /// Whether the thread-group fix is present; `null` when unknown.
    thread_group_fix: Option<bool>,
    /// The reason the presence of the fix is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_group_fix_unknown: Option<String>,
}

#[derive(Serialize)]
struct Document<'a> {
    /// The running kernel's release string, for the reader only: nothing
    /// is decided from it.
    kernel: String,
    regime: RegimeJson,
    features: Vec<FeatureJson<'a>>,
    scenarios: &'a [ScenarioReport],
    summary: Summary,
}

/// Set in the environment of a check re-run under a sandbox, to name it.
const SANDBOX_ENV: &str = "PIDWATCH_CHECK_SANDBOX";

pub fn run(args: CheckArgs) -> Result<Code, Failure> {
    if let Some(sandbox) = args.sandbox {
        return run_sandboxed(sandbox);
    }
    let helper = match args.helper {
        Some(path) => path,
        None => std::env::current_exe().map_err(|err| {
            Failure::new(
                Code::Failure,
                format!("cannot find the pidwatch binary for the helper process: {err}"),
            )
        })?,
    };
    if let Some(filter) = &args.scenario {
        if !check::scenario_names()
            .iter()
            .any(|name| name.contains(filter.as_str()))
        {
            return Err(Failure::new(
                Code::Failure,
                format!(
                    "no scenario matches {filter:?}; the scenarios are: {}",
                    check::scenario_names().join(", ")
                ),
            ));
        }
    }
    let detected = Regime::current();
    if let Some(regime) = args.regime {
        if regime > detected {
            return Err(Failure::new(
                Code::Unsupported,
                format!(
                    "cannot run pidwatch in the {regime} regime: the kernel offers only {detected} ({})",
                    detected.kernels()
                ),
            ));
        }
    }
    let options = Options {
        helper,
        quiet_window: Duration::from_millis(args.quiet_window),
        regime: args.regime,
    };

    let features = Features::get();
    let reports = check::run_all(&options, args.scenario.as_deref());
    let summary = Summary {
        kernel: Counts::of(reports.iter().map(|r| &r.kernel)),
        pidwatch: Counts::of(reports.iter().map(|r| &r.pidwatch)),
    };
    let regime = RegimeJson {
        detected,
        watcher: args.regime.unwrap_or(detected),
        sandbox: std::env::var(SANDBOX_ENV).ok(),
        thread_group_fix: features.thread_group_fix().ok(),
        thread_group_fix_unknown: features.thread_group_fix().err(),
    };

    if args.json {
        let document = Document {
            kernel: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
            regime,
            features: features.probes().iter().map(feature_json).collect(),
            scenarios: &reports,
            summary,
        };
        let text = serde_json::to_string_pretty(&document).expect("report serializes");
        println!("{text}");
    } else {
        print_features(features.probes(), &features.thread_group_fix());
        println!();
        print!("Regime: {} ({})", detected, detected.kernels());
        if let Some(sandbox) = &regime.sandbox {
            print!(", under the seccomp sandbox {sandbox}");
        }
        if regime.watcher != detected {
            print!("; pidwatch forced into {}", regime.watcher);
        }
        println!();
        println!();
        print_scenarios(&reports, args.verbose);
        println!();
        for (layer, counts) in [("kernel", summary.kernel), ("pidwatch", summary.pidwatch)] {
            println!(
                "{layer}: {} passed, {} failed, {} skipped",
                counts.pass, counts.fail, counts.skip
            );
        }
    }

    // The kernel's verdicts describe the kernel; pidwatch's are the promise.
    Ok(if summary.pidwatch.fail == 0 {
        Code::Success
    } else {
        Code::Failure
    })
}

/// Runs this same command again under the seccomp sandbox, without the
/// `--sandbox` option, and passes its exit code on.
fn run_sandboxed(sandbox: Sandbox) -> Result<Code, Failure> {
    use std::os::unix::process::CommandExt;

    let exe = std::env::current_exe().map_err(|err| {
        Failure::new(
            Code::Failure,
            format!("cannot find the pidwatch binary to run under the sandbox: {err}"),
        )
    })?;
    let mut args = std::env::args_os().skip(1);
    let mut forwarded_args = Vec::new();
    let mut name = None;
    while let Some(arg) = args.next() {
        if arg == "--sandbox" {
            name = args.next();
        } else if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--sandbox=")) {
            name = Some(value.into());
        } else {
            forwarded_args.push(arg);
        }
    }

    let filter = sandbox.filter();
    let mut command = std::process::Command::new(exe);
    command.args(forwarded_args);
    if let Some(name) = name {
        command.env(SANDBOX_ENV, name);
    }
    // SAFETY: the closure runs between fork and exec and makes only the two
    // system calls of Filter::install, which neither allocate nor lock.
    unsafe {
        command.pre_exec(move || filter.install());
    }
    let status = command.status().map_err(|err| {
        Failure::new(
            Code::Failure,
            format!("cannot run the check under the sandbox {sandbox}: {err}"),
        )
    })?;
    Ok(match status.code() {
        Some(0) => Code::Success,
        Some(2) => Code::Unsupported,
        _ => Code::Failure,
    })
}

fn feature_json(probe: &Probe) -> FeatureJson<'_> {
    FeatureJson {
        name: probe.feature.name(),
        since: probe.feature.since(),
        available: probe.available,
        reason: probe.reason.as_deref(),
    }
}

fn print_features(probes: &[Probe], fix: &Result<bool, String>) {
    let mut rows: Vec<[String; 4]> = probes
        .iter()
        .map(|probe| {
            [
                probe.feature.name().to_owned(),
                format!("Linux {}", probe.feature.since()),
                if probe.available { "yes" } else { "no" }.to_owned(),
                probe.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    rows.push([
        "thread-group fix of PIDFD_THREAD".to_owned(),
        "Linux 6.15 (6.12.31)".to_owned(),
        if fix == &Ok(true) { "yes" } else { "no" }.to_owned(),
        match fix {
            Ok(true) => String::new(),
            Ok(false) => {
                "a leader's PIDFD_THREAD pidfd reports its exit while threads run".to_owned()
            }
            Err(reason) => reason.clone(),
        },
    ]);
    print_table(&["feature", "since", "available", "reason"], &rows);
}

fn print_scenarios(reports: &[ScenarioReport], verbose: bool) {
    let verdict = |verdict: &Verdict| match verdict {
        Verdict::Pass => "pass".to_owned(),
        Verdict::Fail => "FAIL".to_owned(),
        Verdict::Skip(reason) => format!("skip: {reason}"),
    };
    let rows: Vec<[String; 6]> = reports
        .iter()
        .map(|report| {
            [
                report.name.to_owned(),
                report.headline(Layer::Kernel),
                report.headline(Layer::Pidwatch),
                report.expected_headline(),
                verdict(&report.pidwatch),
                verdict(&report.kernel),
            ]
        })
        .collect();
    println!("Leader's PIDFD_THREAD pidfd at each step (kernel: poll revents; pidwatch: watcher events):");
    print_table(
        &[
            "scenario",
            "kernel",
            "pidwatch",
            "expected",
            "pidwatch verdict",
            "kernel verdict",
        ],
        &rows,
    );

    for report in reports {
        let failed: Vec<_> = report.checks.iter().filter(|c| verbose || !c.ok).collect();
        if failed.is_empty() && report.errors.is_empty() {
            continue;
        }
        println!();
        println!("{}: {}", report.name, report.description);
        for check in failed {
            let mark = if check.ok { "ok  " } else { "FAIL" };
            let layer = match check.layer {
                Layer::Kernel => "kernel",
                Layer::Pidwatch => "pidwatch",
            };
            println!(
                "  {mark} [{}] {layer} {}: {} (expected {})",
                check.step, check.subject, check.observed, check.expected
            );
        }
        for error in &report.errors {
            println!("  ERROR {error}");
        }
    }
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let render = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    println!("{}", render(header.to_vec()));
    let rules: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    println!("{}", render(rules.iter().map(String::as_str).collect()));
    for row in rows {
        println!("{}", render(row.iter().map(String::as_str).collect()));
    }
}
