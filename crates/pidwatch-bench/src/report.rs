//! Summaries, ratios against the C limit and the peers, the targets, and
//! their Markdown tables.

use std::fmt::Write as _;

use serde::Serialize;

use crate::measure::{Batch, CliRun, Idle, Latencies};
use crate::process::{Kind, WatcherKind};

/// Latency percentiles of one watcher on one target set.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyRow {
    pub kind: Kind,
    pub targets: usize,
    pub watcher: WatcherKind,
    pub samples: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// A line of the plot.
#[derive(Clone, Debug)]
pub struct LatencySeries {
    pub watcher: String,
    pub points: Vec<(f64, f64)>,
}

pub fn latency_rows(kind: Kind, targets: usize, latencies: &Latencies) -> Vec<LatencyRow> {
    let mut rows: Vec<LatencyRow> = latencies
        .iter()
        .map(|(watcher, h)| LatencyRow {
            kind,
            targets,
            watcher: *watcher,
            samples: h.len(),
            p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
            p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
            p999_us: h.value_at_quantile(0.999) as f64 / 1e3,
            max_us: h.max() as f64 / 1e3,
        })
        .collect();
    rows.sort_by_key(|row| row.watcher.name());
    rows
}

/// The median of each batch figure over the rounds, per watcher and size.
#[derive(Clone, Debug, Serialize)]
pub struct BatchSummary {
    pub watcher: WatcherKind,
    pub targets: usize,
    pub rounds: usize,
    pub registrations_per_second: f64,
    /// The fastest round: other load on the machine only ever slows a round.
    pub registrations_per_second_best: f64,
    pub rss_bytes_per_target: f64,
    pub storm_ms: f64,
    pub storm_ms_max: f64,
    pub lost: usize,
    pub duplicated: usize,
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

pub fn summarize_batches(batches: &[Batch]) -> Vec<BatchSummary> {
    let mut keys: Vec<(usize, WatcherKind)> =
        batches.iter().map(|b| (b.targets, b.watcher)).collect();
    keys.sort_by_key(|(size, w)| (*size, w.name()));
    keys.dedup();
    keys.into_iter()
        .map(|(size, watcher)| {
            let mine: Vec<&Batch> = batches
                .iter()
                .filter(|b| b.targets == size && b.watcher == watcher)
                .collect();
            BatchSummary {
                watcher,
                targets: size,
                rounds: mine.len(),
                registrations_per_second: median(
                    mine.iter().map(|b| b.registrations_per_second).collect(),
                ),
                registrations_per_second_best: mine
                    .iter()
                    .map(|b| b.registrations_per_second)
                    .fold(0.0, f64::max),
                rss_bytes_per_target: median(mine.iter().map(|b| b.rss_bytes_per_target).collect()),
                storm_ms: median(mine.iter().map(|b| b.storm_ms).collect()),
                storm_ms_max: mine.iter().map(|b| b.storm_ms).fold(0.0, f64::max),
                lost: mine.iter().map(|b| b.lost).sum(),
                duplicated: mine.iter().map(|b| b.duplicated).sum(),
            }
        })
        .collect()
}

/// A performance target and whether this run met it.
#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub target: String,
    pub measured: String,
    /// `None` when this run did not measure it.
    pub met: Option<bool>,
}

/// Every result of one run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub latency: Vec<LatencyRow>,
    pub batches: Vec<BatchSummary>,
    pub idle: Vec<Idle>,
    pub cli: Vec<CliRun>,
    pub ratios: serde_json::Map<String, serde_json::Value>,
    pub goals: Vec<Goal>,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        f64::NAN
    }
}

impl Report {
    fn latency_of(&self, kind: Kind, size: usize, watcher: WatcherKind) -> Option<&LatencyRow> {
        self.latency
            .iter()
            .find(|r| r.kind == kind && r.targets == size && r.watcher == watcher)
    }

    fn batch_of(&self, size: usize, watcher: WatcherKind) -> Option<&BatchSummary> {
        self.batches
            .iter()
            .find(|b| b.targets == size && b.watcher == watcher)
    }

    fn cli_of(&self, tool: &str, size: usize) -> Option<&CliRun> {
        self.cli
            .iter()
            .find(|c| c.tool == tool && c.targets == size)
    }

    /// Computes the ratios (pidwatch over the C limit, pidwatch over each
    /// peer) and checks the targets.
    pub fn evaluate(&mut self) {
        use serde_json::json;
        let (pw, limit) = (WatcherKind::Pidwatch, WatcherKind::Limit);

        let mut latency = Vec::new();
        for row in self.latency.iter().filter(|r| r.watcher == pw) {
            if let Some(base) = self.latency_of(row.kind, row.targets, limit) {
                latency.push(json!({
                    "kind": row.kind, "targets": row.targets,
                    "p50": ratio(row.p50_us, base.p50_us),
                    "p99": ratio(row.p99_us, base.p99_us),
                    "p999": ratio(row.p999_us, base.p999_us),
                }));
            }
        }
        self.ratios
            .insert("latency_pidwatch_over_limit".into(), latency.into());

        let mut batches = Vec::new();
        for row in self.batches.iter().filter(|r| r.watcher == pw) {
            if let Some(base) = self.batch_of(row.targets, limit) {
                batches.push(json!({
                    "targets": row.targets,
                    "registrations_per_second": ratio(row.registrations_per_second, base.registrations_per_second),
                    "storm_ms": ratio(row.storm_ms, base.storm_ms),
                    "rss_bytes_per_target_beyond_limit":
                        ((row.rss_bytes_per_target - base.rss_bytes_per_target) * 10.0).round() / 10.0,
                }));
            }
        }
        self.ratios
            .insert("batches_pidwatch_over_limit".into(), batches.into());

        let mut cli = Vec::new();
        for row in self.cli.iter().filter(|c| c.tool == "pidwatch wait -q") {
            for peer in self
                .cli
                .iter()
                .filter(|c| c.targets == row.targets && c.tool != row.tool)
            {
                cli.push(json!({
                    "targets": row.targets, "peer": peer.tool,
                    "median": ratio(row.median_ms, peer.median_ms),
                    "p90": ratio(row.p90_ms, peer.p90_ms),
                }));
            }
        }
        self.ratios
            .insert("cli_pidwatch_over_peer".into(), cli.into());

        self.goals = self.goals();
    }

    fn goals(&self) -> Vec<Goal> {
        let (pw, limit) = (WatcherKind::Pidwatch, WatcherKind::Limit);
        let mut goals = Vec::new();

        let p99 = (
            self.latency_of(Kind::Process, 10_000, pw),
            self.latency_of(Kind::Process, 10_000, limit),
        );
        goals.push(match p99 {
            (Some(a), Some(b)) => Goal {
                target: "latency p99 at 10,000 processes within 1.2x of the C limit".into(),
                measured: format!(
                    "{:.1} µs vs {:.1} µs: {:.2}x",
                    a.p99_us,
                    b.p99_us,
                    a.p99_us / b.p99_us
                ),
                met: Some(a.p99_us <= 1.2 * b.p99_us),
            },
            _ => missing("latency p99 at 10,000 processes within 1.2x of the C limit"),
        });

        for peer in ["pidwait", "waitpid"] {
            let mut measured = Vec::new();
            let mut met = None;
            for size in [1, 1_000] {
                if let (Some(a), Some(b)) = (
                    self.cli_of("pidwatch wait -q", size),
                    self.cli_of(peer, size),
                ) {
                    let mut line = format!("{size}: p90 {:.2} ms vs {:.2} ms", a.p90_ms, b.p90_ms);
                    if b.premature_exits > 0 {
                        // A waiter that exits before its last target has no
                        // latency to compare.
                        line.push_str(&format!(
                            " ({peer} exited before its last target in {} of {} samples)",
                            b.premature_exits, b.samples
                        ));
                    } else {
                        met = Some(met.unwrap_or(true) && a.p90_ms <= b.p90_ms);
                    }
                    if a.premature_exits > 0 {
                        met = Some(false);
                    }
                    measured.push(line);
                }
            }
            goals.push(Goal {
                target: format!("command-line latency no worse than {peer} at 1 and 1,000 targets"),
                measured: if measured.is_empty() {
                    format!("{peer} not run")
                } else {
                    measured.join("; ")
                },
                met,
            });
        }

        for row in self.batches.iter().filter(|r| r.watcher == pw) {
            let Some(base) = self.batch_of(row.targets, limit) else {
                goals.push(Goal {
                    target: format!(
                        "registration and memory at {} targets against the C limit",
                        row.targets
                    ),
                    measured: format!(
                        "pidwatch alone: {:.0}/s, {:.0} B per target; the C limit cannot hold that many pidfds under this hard RLIMIT_NOFILE",
                        row.registrations_per_second, row.rss_bytes_per_target
                    ),
                    met: None,
                });
                continue;
            };
            // Other load only ever slows a round, so the fastest rounds
            // compare the costs; the medians are in the tables.
            let reg = row.registrations_per_second_best / base.registrations_per_second_best;
            goals.push(Goal {
                target: format!(
                    "registration at {} targets at least 0.8x of the C limit",
                    row.targets
                ),
                measured: format!(
                    "best round {:.0}/s vs {:.0}/s: {reg:.2}x (medians {:.2}x)",
                    row.registrations_per_second_best,
                    base.registrations_per_second_best,
                    row.registrations_per_second / base.registrations_per_second
                ),
                met: Some(reg >= 0.8),
            });
            let extra = row.rss_bytes_per_target - base.rss_bytes_per_target;
            goals.push(Goal {
                target: format!(
                    "at most 256 B per target beyond the C limit at {} targets",
                    row.targets
                ),
                measured: format!(
                    "{:.0} B vs {:.0} B: {extra:.0} B more",
                    row.rss_bytes_per_target, base.rss_bytes_per_target
                ),
                met: Some(extra <= 256.0),
            });
            if row.targets == 10_000 {
                let storm = row.storm_ms / base.storm_ms;
                goals.push(Goal {
                    target: "exit storm of 10,000 drained within 1.5x of the C limit, none lost"
                        .into(),
                    measured: format!(
                        "{:.1} ms vs {:.1} ms: {storm:.2}x; lost {}, duplicated {}",
                        row.storm_ms, base.storm_ms, row.lost, row.duplicated
                    ),
                    met: Some(storm <= 1.5 && row.lost == 0 && row.duplicated == 0),
                });
            }
        }

        let idle: Vec<&Idle> = self
            .idle
            .iter()
            .filter(|i| i.watcher == pw.name())
            .collect();
        goals.push(if idle.is_empty() {
            missing("zero wakeups while idle")
        } else {
            let wakeups: u64 = idle.iter().map(|i| i.voluntary_switches).max().unwrap_or(0);
            Goal {
                target: "zero wakeups while idle".into(),
                measured: format!(
                    "at most {wakeups} voluntary context switches in {} s",
                    idle[0].seconds
                ),
                met: Some(wakeups == 0),
            }
        });

        let polling: Vec<&Idle> = self
            .idle
            .iter()
            .filter(|i| i.watcher == WatcherKind::PidwatchPolling.name())
            .collect();
        goals.push(if polling.is_empty() {
            missing("fallback polling at 1,000 targets under 1% of one core")
        } else {
            let worst = polling.iter().map(|i| i.core_percent).fold(0.0, f64::max);
            Goal {
                target: "fallback polling at 1,000 targets under 1% of one core".into(),
                measured: format!("at most {worst:.2}% of one core"),
                met: Some(worst < 1.0),
            }
        });
        goals
    }

    /// Renders the tables.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "### Exit-notification latency\n");
        let _ = writeln!(
            md,
            "| targets | watcher | samples | p50 µs | p99 µs | p99.9 µs | max µs | p99 / limit |"
        );
        let _ = writeln!(
            md,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for row in &self.latency {
            let base = self.latency_of(row.kind, row.targets, WatcherKind::Limit);
            let _ = writeln!(
                md,
                "| {} {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                row.targets,
                match (row.kind, row.targets) {
                    (Kind::Thread, 1) => "thread",
                    (Kind::Thread, _) => "threads",
                    (Kind::Process, 1) => "process",
                    (Kind::Process, _) => "processes",
                },
                row.watcher.name(),
                row.samples,
                row.p50_us,
                row.p99_us,
                row.p999_us,
                row.max_us,
                base.map_or("".into(), |b| format!("{:.2}", row.p99_us / b.p99_us)),
            );
        }

        let _ = writeln!(
            md,
            "\n### Registration, memory and exit storm (median of rounds)\n"
        );
        let _ = writeln!(md, "| targets | watcher | rounds | added/s (best) | ratio | RSS B/target | beyond limit | storm ms (max) | ratio | lost | duplicated |");
        let _ = writeln!(
            md,
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for row in &self.batches {
            let base = self.batch_of(row.targets, WatcherKind::Limit);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} ({:.0}) | {} | {:.1} | {} | {:.1} ({:.1}) | {} | {} | {} |",
                row.targets,
                row.watcher.name(),
                row.rounds,
                row.registrations_per_second,
                row.registrations_per_second_best,
                base.map_or("".into(), |b| format!(
                    "{:.2}",
                    row.registrations_per_second / b.registrations_per_second
                )),
                row.rss_bytes_per_target,
                base.map_or("".into(), |b| format!(
                    "{:+.1}",
                    row.rss_bytes_per_target - b.rss_bytes_per_target
                )),
                row.storm_ms,
                row.storm_ms_max,
                base.map_or("".into(), |b| format!("{:.2}", row.storm_ms / b.storm_ms)),
                row.lost,
                row.duplicated,
            );
        }

        let _ = writeln!(md, "\n### Idle cost\n");
        let _ = writeln!(md, "| watcher | targets | window s | CPU ms | % of a core | voluntary switches | involuntary |");
        let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        let cli_idle = self.cli.iter().filter_map(|c| c.idle.as_ref());
        for row in self.idle.iter().chain(cli_idle) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.3} | {:.3} | {} | {} |",
                row.watcher,
                row.targets,
                row.seconds,
                row.cpu_ms,
                row.core_percent,
                row.voluntary_switches,
                row.involuntary_switches
            );
        }

        let _ = writeln!(
            md,
            "\n### Command-line waiters: last target's end to the waiter's exit\n"
        );
        let _ = writeln!(md, "| targets | tool | samples | median ms | p90 ms | max ms | exited early | RSS KiB | pidwatch wait -q median / this |");
        let _ = writeln!(
            md,
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for row in &self.cli {
            let pidwatch = self.cli_of("pidwatch wait -q", row.targets);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {} | {} | {} |",
                row.targets,
                row.tool,
                row.samples,
                row.median_ms,
                row.p90_ms,
                row.max_ms,
                row.premature_exits,
                if row.rss_kib > 0 {
                    row.rss_kib.to_string()
                } else {
                    String::new()
                },
                pidwatch.map_or("".into(), |p| format!("{:.2}", p.median_ms / row.median_ms)),
            );
        }

        let _ = writeln!(md, "\n### Targets\n");
        let _ = writeln!(md, "| target | measured | met |");
        let _ = writeln!(md, "| --- | --- | --- |");
        for goal in &self.goals {
            let met = match goal.met {
                Some(true) => "met",
                Some(false) => "not met",
                None => "not measured",
            };
            let _ = writeln!(md, "| {} | {} | {met} |", goal.target, goal.measured);
        }
        md
    }
}

fn missing(target: &str) -> Goal {
    Goal {
        target: target.to_owned(),
        measured: "not measured in this run".to_owned(),
        met: None,
    }
}
