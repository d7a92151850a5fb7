//! `/proc` polling, for the targets no pidfd can report on.
//!
//! A polled task is named by its number and the start time it had when it
//! was added, so a reused PID never passes for the original. The watcher
//! polls all such targets in rounds. Each round is followed by a pause of
//! a hundred times its cost, so polling takes about 1% of one core, within
//! [`MIN_INTERVAL`] and the watcher's maximum.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::sys::procfs::{self, TaskStat};

/// The shortest time between two polling rounds.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// The default longest time between two polling rounds, which bounds the
/// delay of a polled event.
pub(crate) const DEFAULT_MAX_INTERVAL: Duration = Duration::from_millis(500);

/// Rounds are spaced this many times their own cost apart.
const DUTY_CYCLE_FACTOR: u32 = 100;

/// The extent of a polled target.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub(crate) enum Scope {
    /// The whole thread group whose ID is the number: exited when its
    /// leader is a zombie and the last task of the group.
    Group,
    /// One thread: exited when its task is dead or gone. A non-leader
    /// thread is released as it exits, so its exit and its reap coincide.
    Thread,
}

/// The result of one poll.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub(crate) enum Observed {
    /// The task (or group) runs.
    Alive,
    /// The group has exited and its leader is a zombie awaiting its reaper.
    Exited,
    /// The task is gone: reaped, or its number now names another task.
    Reaped,
}

/// The identity of a polled task.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub(crate) struct Polled {
    pub number: u32,
    pub scope: Scope,
    pub start_time: u64,
}

impl Polled {
    /// Reads the task's identity now. `Ok(None)` when no task has the
    /// number.
    pub fn read(number: u32, scope: Scope) -> io::Result<Option<(Polled, TaskStat)>> {
        Ok(procfs::task_stat(number)?.map(|stat| {
            let polled = Polled {
                number,
                scope,
                start_time: stat.start_time,
            };
            (polled, stat)
        }))
    }

    /// Reads `/proc` and returns how far the task has come.
    pub fn observe(&self) -> io::Result<Observed> {
        let Some(stat) = procfs::task_stat(self.number)? else {
            return Ok(Observed::Reaped);
        };
        Ok(self.judge(&stat))
    }

    /// Judges a `stat` read for this task's number.
    pub fn judge(&self, stat: &TaskStat) -> Observed {
        if stat.start_time != self.start_time {
            // Another task has the number: ours was reaped.
            return Observed::Reaped;
        }
        match self.scope {
            Scope::Group if stat.is_dead() && stat.num_threads <= 1 => Observed::Exited,
            Scope::Group => Observed::Alive,
            Scope::Thread if stat.is_dead() => Observed::Reaped,
            Scope::Thread => Observed::Alive,
        }
    }
}

/// A descriptor held back so that `/proc` can still be read at the
/// descriptor limit. Targets added at the limit get no pidfd and are polled
/// through `/proc`, which needs a descriptor for each read.
pub(crate) struct Spare(Option<OwnedFd>);

impl Spare {
    pub fn new() -> Self {
        Spare(Spare::open())
    }

    fn open() -> Option<OwnedFd> {
        use rustix::fs::{Mode, OFlags};
        rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).ok()
    }

    /// Runs `read`; if it fails with `EMFILE`, frees the spare descriptor,
    /// runs it again, and takes the spare back.
    pub fn retry<T>(&mut self, read: impl Fn() -> io::Result<T>) -> io::Result<T> {
        match read() {
            Err(err) if err.raw_os_error() == Some(libc::EMFILE) && self.0.is_some() => {
                self.0 = None;
                let result = read();
                self.0 = Spare::open();
                if self.0.is_none() {
                    tracing::warn!("lost the spare descriptor for reading /proc at the limit");
                }
                result
            }
            result => result,
        }
    }
}

/// Returns the time until the next round, from the cost of the last one.
pub(crate) fn next_interval(round_cost: Duration, max: Duration) -> Duration {
    round_cost
        .saturating_mul(DUTY_CYCLE_FACTOR)
        .clamp(MIN_INTERVAL, max.max(MIN_INTERVAL))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(state: char, num_threads: u32, start_time: u64) -> TaskStat {
        TaskStat {
            comm: "t".to_owned(),
            state,
            ppid: 1,
            flags: 0,
            num_threads,
            start_time,
        }
    }

    #[test]
    fn group_exit_needs_lone_zombie() {
        let polled = Polled {
            number: 10,
            scope: Scope::Group,
            start_time: 5,
        };
        assert_eq!(polled.judge(&stat('S', 3, 5)), Observed::Alive);
        assert_eq!(polled.judge(&stat('Z', 2, 5)), Observed::Alive);
        assert_eq!(polled.judge(&stat('Z', 1, 5)), Observed::Exited);
        assert_eq!(polled.judge(&stat('S', 1, 6)), Observed::Reaped);
    }

    #[test]
    fn thread_is_reaped_when_dead_or_replaced() {
        let polled = Polled {
            number: 11,
            scope: Scope::Thread,
            start_time: 5,
        };
        assert_eq!(polled.judge(&stat('R', 2, 5)), Observed::Alive);
        assert_eq!(polled.judge(&stat('X', 2, 5)), Observed::Reaped);
        assert_eq!(polled.judge(&stat('R', 1, 9)), Observed::Reaped);
    }

    #[test]
    fn observe_alive_then_reaped() {
        let me = std::process::id();
        let (polled, _) = Polled::read(me, Scope::Group).unwrap().unwrap();
        assert_eq!(polled.observe().unwrap(), Observed::Alive);

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let (polled, _) = Polled::read(child.id(), Scope::Group)
            .unwrap()
            .expect("an unreaped child is in /proc");
        child.wait().unwrap();
        assert_eq!(polled.observe().unwrap(), Observed::Reaped);
    }

    #[test]
    fn interval_follows_the_cost_within_bounds() {
        let max = Duration::from_millis(500);
        assert_eq!(next_interval(Duration::ZERO, max), MIN_INTERVAL);
        assert_eq!(
            next_interval(Duration::from_millis(1), max),
            Duration::from_millis(100)
        );
        assert_eq!(next_interval(Duration::from_secs(1), max), max);
    }
}
