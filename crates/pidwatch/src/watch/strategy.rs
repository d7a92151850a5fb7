//! Kernel regimes, and how the watcher watches each kind of target in each.
//!
//! The promise is the Linux 6.15 semantics everywhere. A process target
//! exits when its whole thread group has exited. A thread target exits when
//! its thread exits, except that a thread-group leader watched as a thread
//! exits only with its group, and not at all when a subthread's `execve`
//! takes over its PID.
//!
//! Those leader semantics are exactly what a *process* pidfd has reported
//! since Linux 5.3. `pidfd_poll` on a process pidfd waits for an empty
//! thread group. An exec by a subthread moves the leader's `struct pid` to
//! the exec'ing thread, so the pidfd keeps naming the live process. The
//! struct pid of a thread-group ID stays one for life, so a leader's thread
//! target can be watched through a process pidfd on the same struct pid.
//! That is what the watcher does on kernels whose `PIDFD_THREAD` pidfds
//! report the leader's exit early (Linux 6.9 to 6.14, and 6.12 before
//! 6.12.31) and on kernels without `PIDFD_THREAD`: the kernel still wakes
//! the watcher, and no `/proc` polling or busy loop is involved. Only what
//! no pidfd can report is polled: non-leader threads without
//! `PIDFD_THREAD`, and everything without `pidfd_open`.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::sys::{Feature, Features};

use super::TargetKind;

/// The exit-notification capabilities of a kernel, ordered from the oldest
/// regime to the newest.
///
/// ```
/// use pidwatch::watch::Regime;
///
/// let regime = Regime::current();
/// println!("{regime}: {}", regime.kernels());
/// assert_eq!("no-pidfd".parse::<Regime>(), Ok(Regime::NoPidfd));
/// assert!(Regime::NoPidfd < Regime::Fixed);
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Regime {
    /// No `pidfd_open`: Linux before 5.3, or a sandbox that makes it fail
    /// with `ENOSYS`, `EPERM` or `EACCES`. Everything is polled in `/proc`.
    NoPidfd,

    /// `pidfd_open` without `PIDFD_THREAD`: Linux 5.3 to 6.8. Processes are
    /// watched by process pidfds, leaders watched as threads too, and other
    /// threads are polled in `/proc`.
    NoThreadPidfd,

    /// `PIDFD_THREAD` whose leader pidfds report a premature leader exit:
    /// Linux 6.9 to 6.14, and 6.12 before 6.12.31. Leaders watched as
    /// threads use a process pidfd; everything else uses its own pidfd.
    LegacyThreadPidfd,

    /// `PIDFD_THREAD` with the thread-group fix: Linux 6.15 and later, and
    /// 6.12.31 and later. The kernel is trusted for every target.
    Fixed,
}

impl Regime {
    /// Every regime, oldest first.
    ///
    /// ```
    /// let names: Vec<&str> = pidwatch::watch::Regime::ALL.iter().map(|regime| regime.name()).collect();
    /// assert_eq!(names, ["no-pidfd", "no-thread-pidfd", "legacy-thread-pidfd", "fixed"]);
    /// ```
    pub const ALL: [Regime; 4] = [
        Regime::NoPidfd,
        Regime::NoThreadPidfd,
        Regime::LegacyThreadPidfd,
        Regime::Fixed,
    ];

    /// Returns the regime's short name, as accepted by [`std::str::FromStr`].
    ///
    /// ```
    /// assert_eq!(pidwatch::watch::Regime::LegacyThreadPidfd.name(), "legacy-thread-pidfd");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Regime::NoPidfd => "no-pidfd",
            Regime::NoThreadPidfd => "no-thread-pidfd",
            Regime::LegacyThreadPidfd => "legacy-thread-pidfd",
            Regime::Fixed => "fixed",
        }
    }

    /// Returns the kernels that are in this regime when nothing blocks a
    /// call.
    ///
    /// ```
    /// assert_eq!(pidwatch::watch::Regime::NoThreadPidfd.kernels(), "Linux 5.3 to 6.8");
    /// ```
    pub fn kernels(self) -> &'static str {
        match self {
            Regime::NoPidfd => "Linux before 5.3, or pidfd_open blocked by a sandbox",
            Regime::NoThreadPidfd => "Linux 5.3 to 6.8",
            Regime::LegacyThreadPidfd => "Linux 6.9 to 6.14, and 6.12 before 6.12.31",
            Regime::Fixed => "Linux 6.15 and later, and 6.12.31 and later",
        }
    }

    /// Returns the regime of the running kernel.
    ///
    /// Telling [`Regime::LegacyThreadPidfd`] from [`Regime::Fixed`] runs the
    /// behavioural probe of [`Features::thread_group_fix`] once.
    ///
    /// ```
    /// let regime = pidwatch::watch::Regime::current();
    /// println!("this kernel is in the {regime} regime");
    /// ```
    pub fn current() -> Regime {
        let features = Features::get();
        match Regime::without_fix_probe(features) {
            Some(regime) => regime,
            None => Regime::with_fix(features.thread_group_fix()),
        }
    }

    /// Returns the regime the features alone decide, or `None` when the
    /// kernel has `PIDFD_THREAD` and only the thread-group probe can tell.
    pub(crate) fn without_fix_probe(features: &Features) -> Option<Regime> {
        if !features.has(Feature::PidfdOpen) {
            Some(Regime::NoPidfd)
        } else if !features.has(Feature::PidfdThread) {
            Some(Regime::NoThreadPidfd)
        } else {
            None
        }
    }

    /// Maps the thread-group probe's result to a regime. When the probe
    /// could not run, the legacy strategy is the safe choice, because it is
    /// correct on a fixed kernel too.
    pub(crate) fn with_fix(fix: std::result::Result<bool, String>) -> Regime {
        match fix {
            Ok(true) => Regime::Fixed,
            Ok(false) => Regime::LegacyThreadPidfd,
            Err(reason) => {
                tracing::warn!(%reason, "thread-group fix unknown; assuming the legacy kernel");
                Regime::LegacyThreadPidfd
            }
        }
    }

    /// Checks that the running kernel can serve a watcher forced into this
    /// regime: an older regime's strategies work on a newer kernel, not the
    /// other way round.
    pub(crate) fn check_available(self) -> Result<()> {
        let features = Features::get();
        let missing = match self {
            Regime::NoPidfd => None,
            Regime::NoThreadPidfd => Some(Feature::PidfdOpen),
            Regime::LegacyThreadPidfd => Some(Feature::PidfdThread),
            Regime::Fixed => {
                if Regime::current() == Regime::Fixed {
                    None
                } else {
                    return Err(Error::Unsupported {
                        capability: "the thread-group fix of PIDFD_THREAD",
                        since: "6.15 (6.12.31)",
                        reason: "the kernel reports a leader's exit while its threads run"
                            .to_owned(),
                    });
                }
            }
        };
        match missing {
            Some(feature) if !features.has(feature) => Err(Error::Unsupported {
                capability: feature.name(),
                since: feature.since(),
                reason: format!("a watcher was asked for the {} regime", self.name()),
            }),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Regime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a regime name that is not one of [`Regime::ALL`].
///
/// ```
/// let err = "6.12".parse::<pidwatch::watch::Regime>().unwrap_err();
/// assert!(err.to_string().contains("unknown regime \"6.12\""));
/// ```
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("unknown regime {0:?}; use one of: no-pidfd, no-thread-pidfd, legacy-thread-pidfd, fixed")]
pub struct ParseRegimeError(pub String);

impl std::str::FromStr for Regime {
    type Err = ParseRegimeError;

    fn from_str(name: &str) -> std::result::Result<Self, Self::Err> {
        Regime::ALL
            .into_iter()
            .find(|regime| regime.name() == name)
            .ok_or_else(|| ParseRegimeError(name.to_owned()))
    }
}

/// The strategy for one target.
///
/// ```
/// use pidwatch::watch::strategy::{plan, Plan, Regime};
/// use pidwatch::TargetKind;
///
/// // A leader watched as a thread on a legacy kernel goes through a process pidfd.
/// assert_eq!(plan(Regime::LegacyThreadPidfd, TargetKind::Thread, true), Plan::ProcessPidfd);
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Plan {
    /// The target's own pidfd: its readiness is the promised one.
    OwnPidfd,
    /// A process pidfd on the target's struct pid: a thread-group leader
    /// watched as a thread, where the kernel's `PIDFD_THREAD` readiness is
    /// not the promised one or `PIDFD_THREAD` is missing.
    ProcessPidfd,
    /// `/proc` polling of one non-leader thread, with the process pidfd of
    /// its thread group (when there is one) to learn of the group's exit at
    /// once.
    PollThread,
    /// `/proc` polling of a whole thread group.
    PollProcess,
}

/// Returns the strategy for a target of `kind` in `regime`. `leader` is
/// true when the target's number is a thread-group ID.
///
/// ```
/// use pidwatch::watch::strategy::{plan, Plan, Regime};
/// use pidwatch::TargetKind;
///
/// assert_eq!(plan(Regime::Fixed, TargetKind::Thread, true), Plan::OwnPidfd);
/// assert_eq!(plan(Regime::NoThreadPidfd, TargetKind::Thread, false), Plan::PollThread);
/// ```
pub fn plan(regime: Regime, kind: TargetKind, leader: bool) -> Plan {
    match (regime, kind, leader) {
        (Regime::Fixed, _, _) => Plan::OwnPidfd,
        (Regime::NoPidfd, TargetKind::Process, _) => Plan::PollProcess,
        (_, TargetKind::Process, _) => Plan::OwnPidfd,
        (Regime::NoPidfd, TargetKind::Thread, true) => Plan::PollProcess,
        (Regime::NoPidfd, TargetKind::Thread, false) => Plan::PollThread,
        (_, TargetKind::Thread, true) => Plan::ProcessPidfd,
        (Regime::LegacyThreadPidfd, TargetKind::Thread, false) => Plan::OwnPidfd,
        (Regime::NoThreadPidfd, TargetKind::Thread, false) => Plan::PollThread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for regime in Regime::ALL {
            assert_eq!(regime.name().parse::<Regime>(), Ok(regime));
        }
        assert!("6.12".parse::<Regime>().is_err());
    }

    #[test]
    fn plans_per_regime() {
        use Plan::*;
        use TargetKind::{Process, Thread};
        let table = [
            (Regime::Fixed, [OwnPidfd, OwnPidfd, OwnPidfd]),
            (
                Regime::LegacyThreadPidfd,
                [OwnPidfd, ProcessPidfd, OwnPidfd],
            ),
            (Regime::NoThreadPidfd, [OwnPidfd, ProcessPidfd, PollThread]),
            (Regime::NoPidfd, [PollProcess, PollProcess, PollThread]),
        ];
        for (regime, [process, leader, thread]) in table {
            assert_eq!(plan(regime, Process, true), process, "{regime}");
            assert_eq!(plan(regime, Thread, true), leader, "{regime}");
            assert_eq!(plan(regime, Thread, false), thread, "{regime}");
        }
    }
}
