//! Kernel regimes for pidfd exit notification, and the readiness a poll
//! returns.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

use crate::error::ParseRuleError;

/// Exit-notification rule of `pidfd_poll`, one per kernel regime.
///
/// The rules differ only in what a pidfd reports when its task has exited
/// and in whether a released task's pidfd reports POLLHUP; see
/// [`KernelState::poll_pid`](crate::KernelState::poll_pid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Rule {
    /// Linux 5.3 to 6.8: process pidfds only (no `PIDFD_THREAD`), POLLIN
    /// once the whole thread group has exited, and no POLLHUP after the
    /// group is reaped (a reaped process's pidfd reports POLLIN only).
    NoThreadPidfd,
    /// Linux 6.9 to 6.14, and 6.12 stable releases before 6.12.31:
    /// `PIDFD_THREAD` exists, a released task's pidfd reports POLLHUP, and a
    /// `PIDFD_THREAD` pidfd reports POLLIN as soon as its task is a zombie.
    /// On the thread-group leader this is premature while subthreads run,
    /// and the POLLIN vanishes when a subthread execs and takes over the
    /// leader's `struct pid`.
    Legacy,
    /// Linux 6.15 and later, and 6.12.31 and later: like [`Rule::Legacy`],
    /// except that a `PIDFD_THREAD` pidfd on the thread-group leader reports
    /// POLLIN only once the whole thread group has exited.
    ///
    /// NOTE: stable series other than 6.12 may carry the same change; which
    /// releases do is not recorded here.
    Fixed,
}

impl Rule {
    /// Every rule, oldest kernels first.
    pub const ALL: [Rule; 3] = [Rule::NoThreadPidfd, Rule::Legacy, Rule::Fixed];

    /// Returns the rule's short name, as accepted by [`FromStr`].
    pub const fn name(self) -> &'static str {
        match self {
            Rule::NoThreadPidfd => "no-thread-pidfd",
            Rule::Legacy => "legacy",
            Rule::Fixed => "fixed",
        }
    }

    /// Returns the kernel releases that follow the rule.
    pub const fn kernels(self) -> &'static str {
        match self {
            Rule::NoThreadPidfd => "Linux 5.3 to 6.8",
            Rule::Legacy => "Linux 6.9 to 6.14, and 6.12 before 6.12.31",
            Rule::Fixed => "Linux 6.15 and later, and 6.12.31 and later",
        }
    }

    /// Returns whether `pidfd_open` accepts `PIDFD_THREAD` (Linux 6.9 and
    /// later).
    pub const fn has_thread_pidfd(self) -> bool {
        !matches!(self, Rule::NoThreadPidfd)
    }

    /// Returns whether a pidfd whose `struct pid` has no task reports POLLHUP
    /// as well as POLLIN (Linux 6.9 and later).
    pub const fn has_pollhup(self) -> bool {
        !matches!(self, Rule::NoThreadPidfd)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Rule {
    type Err = ParseRuleError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Rule::ALL
            .into_iter()
            .find(|rule| rule.name() == name)
            .ok_or_else(|| ParseRuleError(name.to_string()))
    }
}

/// `POLLIN` as defined by Linux on every architecture.
pub const POLLIN: i16 = 0x001;

/// `POLLHUP` as defined by Linux on every architecture.
pub const POLLHUP: i16 = 0x010;

/// Readiness of a pidfd as `poll(2)` reports it.
///
/// `pidfd_poll` also sets POLLRDNORM together with POLLIN. `poll(2)` passes
/// it on only when the caller requested it, so [`Readiness::revents`] leaves
/// it out, matching a caller that requested POLLIN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Readiness {
    /// POLLIN: the task or thread group has exited.
    pub readable: bool,
    /// POLLHUP: the `struct pid` has no task any more (released or reaped).
    pub hangup: bool,
}

impl Readiness {
    /// Nothing to report (revents 0).
    pub const NONE: Readiness = Readiness {
        readable: false,
        hangup: false,
    };

    /// POLLIN only (revents 0x1).
    pub const READABLE: Readiness = Readiness {
        readable: true,
        hangup: false,
    };

    /// POLLIN|POLLHUP (revents 0x11).
    pub const HANGUP: Readiness = Readiness {
        readable: true,
        hangup: true,
    };

    /// Returns the `revents` bits `poll(2)` sets for a caller that requested
    /// POLLIN.
    pub const fn revents(self) -> i16 {
        let mut bits = 0;
        if self.readable {
            bits |= POLLIN;
        }
        if self.hangup {
            bits |= POLLHUP;
        }
        bits
    }

    /// Builds a readiness from `revents` bits, ignoring bits other than
    /// POLLIN and POLLHUP.
    pub const fn from_revents(revents: i16) -> Self {
        Readiness {
            readable: revents & POLLIN != 0,
            hangup: revents & POLLHUP != 0,
        }
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.readable, self.hangup) {
            (false, false) => f.write_str("0"),
            (true, false) => f.write_str("POLLIN"),
            (false, true) => f.write_str("POLLHUP"),
            (true, true) => f.write_str("POLLIN|POLLHUP"),
        }
    }
}
