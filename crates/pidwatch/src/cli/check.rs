//! `pidwatch check`: the conformance scenarios and the feature table.

use std::time::Duration;

use serde::Serialize;

use pidwatch::check::{self, Layer, Options, ScenarioReport, Verdict};
use pidwatch::sys::{Features, Probe};

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

#[derive(Copy, Clone, Serialize)]
struct Summary {
    pass: usize,
    fail: usize,
    skip: usize,
}

#[derive(Serialize)]
struct Document<'a> {
    /// The running kernel's release string, for the reader only: nothing
    /// is decided from it.
    kernel: String,
    features: Vec<FeatureJson<'a>>,
    scenarios: &'a [ScenarioReport],
    summary: Summary,
}

pub fn run(args: CheckArgs) -> Result<Code, Failure> {
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
    let options = Options {
        helper,
        quiet_window: Duration::from_millis(args.quiet_window),
    };

    let features = Features::get();
    let reports = check::run_all(&options, args.scenario.as_deref());
    let summary = Summary {
        pass: reports
            .iter()
            .filter(|r| r.verdict == Verdict::Pass)
            .count(),
        fail: reports
            .iter()
            .filter(|r| r.verdict == Verdict::Fail)
            .count(),
        skip: reports
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Skip(_)))
            .count(),
    };

    if args.json {
        let document = Document {
            kernel: rustix::system::uname()
                .release()
                .to_string_lossy()
                .into_owned(),
            features: features.probes().iter().map(feature_json).collect(),
            scenarios: &reports,
            summary,
        };
        let text = serde_json::to_string_pretty(&document).expect("report serializes");
        println!("{text}");
    } else {
        print_features(features.probes());
        println!();
        print_scenarios(&reports, args.verbose);
        println!();
        println!(
            "{} passed, {} failed, {} skipped",
            summary.pass, summary.fail, summary.skip
        );
    }

    Ok(if summary.fail == 0 {
        Code::Success
    } else {
        Code::Failure
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

fn print_features(probes: &[Probe]) {
    let rows: Vec<[String; 4]> = probes
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
    print_table(&["feature", "since", "available", "reason"], &rows);
}

fn print_scenarios(reports: &[ScenarioReport], verbose: bool) {
    let rows: Vec<[String; 5]> = reports
        .iter()
        .map(|report| {
            let verdict = match &report.verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::Fail => "FAIL".to_owned(),
                Verdict::Skip(reason) => format!("skip: {reason}"),
            };
            [
                report.name.to_owned(),
                report.headline(Layer::Kernel),
                report.headline(Layer::Pidwatch),
                report.expected_headline(),
                verdict,
            ]
        })
        .collect();
    println!("Leader's PIDFD_THREAD pidfd at each step (kernel: poll revents; pidwatch: watcher events):");
    print_table(
        &["scenario", "kernel", "pidwatch", "expected", "verdict"],
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
