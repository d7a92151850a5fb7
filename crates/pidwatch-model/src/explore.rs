//! Exhaustive breadth-first exploration of the model and its report.

use serde::Serialize;
use std::collections::hash_map::{Entry, HashMap};
use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use stateright::{Checker, Expectation, Model};

use crate::kernel::{Action, FdId, KernelState, PidIndex, PidfdKind, TaskState, ThreadIndex};
use crate::model::PidfdModel;
use crate::rule::{Readiness, Rule};

/// Limits of the explored state space.
///
/// The number of states grows exponentially with `max_tasks` and
/// `max_pidfds`. The defaults cover the premature-leader-exit and exec
/// scenarios with a spare thread and pidfd, and every state they allow is
/// reachable within `max_steps`, so the default exploration is complete.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Bounds {
    /// Maximum number of threads ever created, the initial leader included.
    /// Released threads count, because thread indices are never reused.
    pub max_tasks: usize,
    /// Maximum number of pidfds opened.
    pub max_pidfds: usize,
    /// Maximum number of kernel steps from the initial state.
    pub max_steps: usize,
}

impl Default for Bounds {
    /// Returns 3 tasks, 3 pidfds and 40 steps.
    fn default() -> Self {
        Self {
            max_tasks: 3,
            max_pidfds: 3,
            max_steps: 40,
        }
    }
}

/// Expectation a property states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PropertyKind {
    /// The condition must hold in every reachable state.
    Always,
    /// Some reachable state must satisfy the condition. Used to show that
    /// the bounds reach the states the `Always` properties are about.
    Sometimes,
}

/// Outcome of checking one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Verdict {
    /// An `Always` property held in every state checked.
    Holds,
    /// An `Always` property failed; the report carries the shortest
    /// counterexample.
    Violated,
    /// A `Sometimes` property was satisfied; the report carries the shortest
    /// example.
    Reached,
    /// No state checked satisfied a `Sometimes` property.
    Unreached,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Holds => "holds",
            Verdict::Violated => "violated",
            Verdict::Reached => "reached",
            Verdict::Unreached => "unreached",
        })
    }
}

/// Readiness of one open pidfd after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PidfdReadiness {
    /// The pidfd.
    pub fd: FdId,
    /// The `struct pid` it holds.
    pub pid: PidIndex,
    /// Process pidfd, or `PIDFD_THREAD` pidfd.
    pub kind: PidfdKind,
    /// Readiness `poll(2)` returns for it.
    pub readiness: Readiness,
}

/// One thread after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ThreadSnapshot {
    /// The thread.
    pub thread: ThreadIndex,
    /// The `struct pid` it holds, or `None` once released.
    pub pid: Option<PidIndex>,
    /// Its life-cycle state.
    pub state: TaskState,
    /// Whether it is the thread-group leader.
    pub leader: bool,
    /// Whether it has a SIGKILL pending.
    pub sigkill_pending: bool,
}

/// One step of a counterexample or example.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    /// The kernel step.
    pub action: Action,
    /// The step in words, naming the threads and pids involved.
    pub description: String,
    /// Every thread after the step.
    pub threads: Vec<ThreadSnapshot>,
    /// Every open pidfd after the step, with its readiness.
    pub pidfds: Vec<PidfdReadiness>,
}

impl fmt::Display for TraceStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)?;
        if self.pidfds.is_empty() {
            return f.write_str(" | no pidfd open");
        }

        f.write_str(" |")?;
        for pidfd in &self.pidfds {
            write!(
                f,
                " {} ({}, {}): {}",
                pidfd.fd, pidfd.kind, pidfd.pid, pidfd.readiness
            )?;
            if pidfd.fd.0 + 1 < self.pidfds.len() {
                f.write_str(";")?;
            }
        }
        Ok(())
    }
}

/// Result of checking one named property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyReport {
    /// The property's name, one of the constants in [`crate::properties`].
    pub name: String,
    /// Whether the property is an invariant or a reachability check.
    pub kind: PropertyKind,
    /// The outcome.
    pub verdict: Verdict,
    /// For [`Verdict::Violated`] the shortest counterexample, for
    /// [`Verdict::Reached`] the shortest example, and otherwise empty. The
    /// initial state (thread 0 running as the leader, no pidfd) precedes the
    /// first step.
    pub trace: Vec<TraceStep>,
}

/// Result of [`explore`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exploration {
    /// The rule explored.
    pub rule: Rule,
    /// The bounds explored.
    pub bounds: Bounds,
    /// Number of distinct states the checker generated.
    pub unique_states: usize,
    /// Whether every state reachable within the bounds was checked. When
    /// false, `max_steps` cut the exploration short, and `unique_states`
    /// includes states one step past the bound that were not checked.
    pub complete: bool,
    /// Wall-clock time of the exploration, in seconds.
    pub elapsed_seconds: f64,
    /// One report per property, in the order of [`crate::properties`].
    pub properties: Vec<PropertyReport>,
}

impl Exploration {
    /// Returns the report of the property with this name.
    pub fn property(&self, name: &str) -> Option<&PropertyReport> {
        self.properties.iter().find(|report| report.name == name)
    }

    /// Returns whether any `Always` property is violated.
    pub fn has_violations(&self) -> bool {
        self.properties
            .iter()
            .any(|report| report.verdict == Verdict::Violated)
    }
}

impl fmt::Display for Exploration {
    /// Writes the exploration in lines: rule, bounds, state count, then one
    /// line per property, each violated property followed by its
    /// counterexample, one step per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "rule: {} ({})", self.rule, self.rule.kernels())?;
        writeln!(
            f,
            "bounds: {} tasks, {} pidfds, {} steps",
            self.bounds.max_tasks, self.bounds.max_pidfds, self.bounds.max_steps
        )?;
        let coverage = if self.complete {
            "every reachable state checked"
        } else {
            "cut short by the step bound"
        };
        writeln!(
            f,
            "states: {} unique, {coverage}, {:.2} s",
            self.unique_states, self.elapsed_seconds
        )?;

        for report in &self.properties {
            writeln!(f, "{}: {}", report.verdict, report.name)?;
            if report.verdict != Verdict::Violated {
                continue;
            }
            for (index, step) in report.trace.iter().enumerate() {
                writeln!(f, "  {:>2}. {step}", index + 1)?;
            }
        }
        Ok(())
    }
}

/// Explores every state of `rule`'s model within `bounds`, breadth first, and
/// checks every property.
///
/// The checker runs on one thread so the exploration order is breadth first
/// and each counterexample is a shortest one. Time and memory grow with the
/// bounds; [`Bounds::default`] takes well under a second in a release build.
pub fn explore(rule: Rule, bounds: &Bounds) -> Exploration {
    let start = Instant::now();
    let model = PidfdModel::new(rule, bounds.clone());
    let properties = model.properties();

    // stateright counts the initial state as depth 1 and skips states whose
    // depth reaches the target, so states after max_steps steps (depth
    // max_steps + 1) are still checked.
    let checker = model
        .clone()
        .checker()
        .threads(1)
        .target_max_depth(bounds.max_steps.saturating_add(2))
        .spawn_bfs()
        .join();

    let discoveries = checker.discoveries();

    let mut reports = Vec::new();
    for property in &properties {
        let discovered = discoveries.contains_key(property.name);
        let (kind, verdict) = match (&property.expectation, discovered) {
            (Expectation::Sometimes, true) => (PropertyKind::Sometimes, Verdict::Reached),
            (Expectation::Sometimes, false) => (PropertyKind::Sometimes, Verdict::Unreached),
            (_, true) => (PropertyKind::Always, Verdict::Violated),
            (_, false) => (PropertyKind::Always, Verdict::Holds),
        };

        // stateright's BFS checker records the last state it finds for a
        // property, not the first, so its path is not a shortest one.
        // A second breadth-first search finds the shortest.
        let expected = property.expectation == Expectation::Sometimes;
        let trace = if discovered {
            shortest_path(&model, property.condition, expected, bounds.max_steps)
                .or_else(|| {
                    discoveries
                        .get(property.name)
                        .map(|path| path.clone().into_vec())
                })
                .map(|path| trace_steps(rule, path))
                .unwrap_or_default()
        } else {
            Vec::new()
        };

        reports.push(PropertyReport {
            name: property.name.to_string(),
            kind,
            verdict,
            trace,
        });
    }

    let all_discovered = reports
        .iter()
        .all(|report| matches!(report.verdict, Verdict::Violated | Verdict::Reached));
    let within_steps = checker.max_depth() <= bounds.max_steps.saturating_add(1);

    Exploration {
        rule,
        bounds: bounds.clone(),
        unique_states: checker.unique_state_count(),
        complete: within_steps && !all_discovered,
        elapsed_seconds: start.elapsed().as_secs_f64(),
        properties: reports,
    }
}

/// Finds a shortest path, within `max_steps` steps, from the initial state
/// to a state where `condition` returns `expected`. Each state on the path is
/// paired with the action taken from it, and the last state with `None`, as
/// in a stateright path.
fn shortest_path(
    model: &PidfdModel,
    condition: fn(&PidfdModel, &KernelState) -> bool,
    expected: bool,
    max_steps: usize,
) -> Option<Vec<(KernelState, Option<Action>)>> {
    let initial = KernelState::new();
    let mut parents: HashMap<KernelState, Option<(KernelState, Action)>> = HashMap::new();
    parents.insert(initial.clone(), None);
    let mut frontier = VecDeque::from([(initial, 0_usize)]);

    while let Some((state, steps)) = frontier.pop_front() {
        if condition(model, &state) == expected {
            return Some(path_to(&parents, state));
        }
        if steps >= max_steps {
            continue;
        }
        for (action, next) in model.next_steps(&state) {
            if let Entry::Vacant(entry) = parents.entry(next.clone()) {
                entry.insert(Some((state.clone(), action)));
                frontier.push_back((next, steps + 1));
            }
        }
    }
    None
}

/// Follows parent links from `last` back to the initial state.
fn path_to(
    parents: &HashMap<KernelState, Option<(KernelState, Action)>>,
    last: KernelState,
) -> Vec<(KernelState, Option<Action>)> {
    let mut path = vec![(last.clone(), None)];
    let mut current = last;
    while let Some(Some((parent, action))) = parents.get(&current) {
        path.push((parent.clone(), Some(*action)));
        current = parent.clone();
    }
    path.reverse();
    path
}

/// Turns a stateright path, in which each state is paired with the action
/// taken from it, into trace steps.
fn trace_steps(rule: Rule, path: Vec<(KernelState, Option<Action>)>) -> Vec<TraceStep> {
    let mut steps = Vec::new();
    for pair in path.windows(2) {
        let (before, Some(action)) = &pair[0] else {
            continue;
        };
        let after = &pair[1].0;
        steps.push(TraceStep {
            action: *action,
            description: before.describe(rule, *action),
            threads: thread_snapshots(after),
            pidfds: pidfd_readiness(rule, after),
        });
    }
    steps
}

/// Lists every thread of a state.
pub(crate) fn thread_snapshots(state: &KernelState) -> Vec<ThreadSnapshot> {
    (0..state.thread_count())
        .map(ThreadIndex)
        .filter_map(|thread| {
            Some(ThreadSnapshot {
                thread,
                pid: state.pid_of(thread),
                state: state.thread_state(thread)?,
                leader: state.leader() == thread,
                sigkill_pending: state.sigkill_pending(thread)?,
            })
        })
        .collect()
}

/// Lists every open pidfd of a state with its readiness under `rule`.
pub(crate) fn pidfd_readiness(rule: Rule, state: &KernelState) -> Vec<PidfdReadiness> {
    state
        .pidfds()
        .map(|pidfd| PidfdReadiness {
            fd: pidfd.fd,
            pid: pidfd.pid,
            kind: pidfd.kind,
            readiness: state.poll_pid(rule, pidfd.pid, pidfd.kind),
        })
        .collect()
}
