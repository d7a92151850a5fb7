//! Target selection in the manner of pgrep and pidwait: by name pattern,
//! user and parent, read from `/proc`, and the threads of a process.
//!
//! What `/proc` shows can be stale by the time a pidfd is opened, because a
//! PID is free for reuse once its task is reaped. Each selected task is
//! therefore opened first and its `/proc` entry read again afterwards: the
//! same start time means the pidfd refers to the task that matched.

use std::fs;
use std::io;

use regex::Regex;

use pidwatch::sys::{self, procfs, Feature, Features};
use pidwatch::Error;

/// The criteria that select processes from `/proc`. An empty list matches
/// anything.
#[derive(Debug, Default)]
pub struct Criteria {
    /// Matched against the command name, or the command line with `full`.
    pub pattern: Option<Pattern>,
    /// Match the pattern against the whole command line.
    pub full: bool,
    /// Real UIDs.
    pub uids: Vec<u32>,
    /// Effective UIDs.
    pub euids: Vec<u32>,
    /// Parent PIDs.
    pub parents: Vec<u32>,
    /// Keep only the newest (or oldest) of the matching processes.
    pub pick: Option<Pick>,
}

/// The one process that `--newest` or `--oldest` keeps.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum Pick {
    /// The most recently started process.
    Newest,
    /// The least recently started process.
    Oldest,
}

/// A process or thread that matched, as `/proc` showed it.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Candidate {
    /// The PID, or the TID of a thread.
    pub id: u32,
    /// The command name (`comm`).
    pub comm: String,
    /// Start time in clock ticks after boot.
    pub start_time: u64,
}

/// The regular expression of `--pattern`, as given and as compiled.
#[derive(Debug)]
pub struct Pattern {
    text: String,
    exact: bool,
    regex: Regex,
}

impl Pattern {
    /// Compiles `--pattern`, anchored at both ends with `--exact`.
    pub fn new(text: &str, exact: bool) -> Result<Pattern, String> {
        let source = if exact {
            format!("^(?:{text})$")
        } else {
            text.to_owned()
        };
        let regex =
            Regex::new(&source).map_err(|err| format!("invalid pattern {text:?}: {err}"))?;
        Ok(Pattern {
            text: text.to_owned(),
            exact,
            regex,
        })
    }

    fn is_match(&self, haystack: &str) -> bool {
        self.regex.is_match(haystack)
    }
}

impl Criteria {
    /// Describes the criteria for error messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(pattern) = &self.pattern {
            let field = if self.full { "command line" } else { "name" };
            let exactly = if pattern.exact { " exactly" } else { "" };
            parts.push(format!("{field} matching {:?}{exactly}", pattern.text));
        }
        if !self.uids.is_empty() {
            parts.push(format!("real UID {}", join(&self.uids)));
        }
        if !self.euids.is_empty() {
            parts.push(format!("effective UID {}", join(&self.euids)));
        }
        if !self.parents.is_empty() {
            parts.push(format!("parent PID {}", join(&self.parents)));
        }
        parts.join(", ")
    }

    /// Scans `/proc` and returns the matching processes, ordered by PID,
    /// never including this process.
    pub fn scan(&self) -> io::Result<Vec<Candidate>> {
        let me = std::process::id();
        let mut matches = Vec::new();
        for entry in fs::read_dir("/proc")? {
            let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if pid == me {
                continue;
            }
            if let Some(candidate) = self.test(pid)? {
                matches.push(candidate);
            }
        }
        matches.sort_by_key(|candidate: &Candidate| candidate.id);

        let picked = match self.pick {
            None => return Ok(matches),
            Some(Pick::Newest) => matches.into_iter().max_by_key(|c| (c.start_time, c.id)),
            Some(Pick::Oldest) => matches.into_iter().min_by_key(|c| (c.start_time, c.id)),
        };
        Ok(picked.into_iter().collect())
    }

    /// Reads one process from `/proc` and returns it if it matches. A
    /// process that is gone meanwhile does not match.
    fn test(&self, pid: u32) -> io::Result<Option<Candidate>> {
        let Some(stat) = procfs::task_stat(pid)? else {
            return Ok(None);
        };
        if !self.parents.is_empty() && !self.parents.contains(&stat.ppid) {
            return Ok(None);
        }
        if !self.uids.is_empty() || !self.euids.is_empty() {
            let Some((real, effective)) = read_uids(pid)? else {
                return Ok(None);
            };
            if !self.uids.is_empty() && !self.uids.contains(&real) {
                return Ok(None);
            }
            if !self.euids.is_empty() && !self.euids.contains(&effective) {
                return Ok(None);
            }
        }
        if let Some(pattern) = &self.pattern {
            let matched = if self.full {
                let command_line = read_command_line(pid)?;
                // Kernel threads and zombies have an empty command line;
                // pgrep matches their name instead, and so does this.
                let text = command_line.unwrap_or_else(|| stat.comm.clone());
                pattern.is_match(&text)
            } else {
                pattern.is_match(&stat.comm)
            };
            if !matched {
                return Ok(None);
            }
        }
        Ok(Some(Candidate {
            id: pid,
            comm: stat.comm,
            start_time: stat.start_time,
        }))
    }
}

fn join(numbers: &[u32]) -> String {
    numbers
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Reads the real and effective UIDs from `/proc/PID/status`.
fn read_uids(pid: u32) -> io::Result<Option<(u32, u32)>> {
    let status = match fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(text) => text,
        Err(err) if is_gone(&err) => return Ok(None),
        Err(err) => return Err(err),
    };
    let Some(line) = status.lines().find_map(|line| line.strip_prefix("Uid:")) else {
        return Ok(None);
    };
    let mut fields = line.split_whitespace().map(|field| field.parse::<u32>());
    match (fields.next(), fields.next()) {
        (Some(Ok(real)), Some(Ok(effective))) => Ok(Some((real, effective))),
        _ => Ok(None),
    }
}

/// Reads `/proc/PID/cmdline` with the arguments joined by spaces, or `None`
/// when it is empty or the process is gone.
fn read_command_line(pid: u32) -> io::Result<Option<String>> {
    let bytes = match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(bytes) => bytes,
        Err(err) if is_gone(&err) => return Ok(None),
        Err(err) => return Err(err),
    };
    let text = String::from_utf8_lossy(&bytes);
    let joined = text.trim_end_matches('\0').replace('\0', " ");
    Ok((!joined.is_empty()).then_some(joined))
}

fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH)
}

/// Lists the threads of process `pid` with their start times.
pub fn threads_of(pid: u32) -> io::Result<Vec<Candidate>> {
    let mut threads = Vec::new();
    for tid in procfs::threads(pid)? {
        if let Some(stat) = procfs::thread_stat(pid, tid)? {
            threads.push(Candidate {
                id: tid,
                comm: stat.comm,
                start_time: stat.start_time,
            });
        }
    }
    Ok(threads)
}

/// Returns true when `/proc` still shows the task that matched: the same
/// start time under the same PID (or TID, within thread group `group`).
///
/// Called after the task's pidfd is open. A task that exited before the
/// pidfd was opened is either gone from `/proc` or replaced by a newer task
/// with the same number, and then the pidfd may refer to that newer task.
/// A task that exits after the open keeps its entry until it is reaped,
/// and the pidfd refers to it.
pub fn still_same(candidate: &Candidate, group: Option<u32>) -> Result<bool, Error> {
    let (now, path) = match group {
        Some(pid) => (
            procfs::thread_stat(pid, candidate.id),
            format!("/proc/{pid}/task/{}/stat", candidate.id),
        ),
        None => (
            procfs::task_stat(candidate.id),
            format!("/proc/{}/stat", candidate.id),
        ),
    };
    let now = now.map_err(|err| Error::io(format!("reading {path}"), err))?;
    Ok(now.is_some_and(|stat| stat.start_time == candidate.start_time))
}

/// Reads the command name of a watched task, and returns it only if the
/// task still had its PID after the read, so the name cannot belong to a
/// process that reused the PID.
///
/// The PID is freed when the task is reaped, which a pidfd reports with
/// `POLLHUP` (Linux 6.9). Without that, a task that exited before the check
/// gets no name.
pub fn command_name(
    pidfd: std::os::fd::BorrowedFd<'_>,
    pid: u32,
    tid: Option<u32>,
) -> Option<String> {
    let stat = match tid {
        Some(tid) => procfs::thread_stat(pid, tid),
        None => procfs::task_stat(pid),
    };
    let comm = stat.ok().flatten()?.comm;
    let readiness = sys::readiness(pidfd).ok()?;
    let pid_still_assigned = if Features::get().has(Feature::PollHupAfterReap) {
        !readiness.hangup
    } else {
        !readiness.exited()
    };
    pid_still_assigned.then_some(comm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_pattern_is_anchored() {
        let regex = Pattern::new("sl|sleep", true).unwrap();
        assert!(regex.is_match("sleep"));
        assert!(regex.is_match("sl"));
        assert!(!regex.is_match("sleeper"));
    }

    #[test]
    fn bad_pattern_names_itself() {
        let err = Pattern::new("a(b", false).unwrap_err();
        assert!(err.starts_with("invalid pattern \"a(b\""), "{err}");
    }

    #[test]
    fn scan_never_selects_itself() {
        let me = std::process::id();
        let stat = procfs::task_stat(me).unwrap().unwrap();
        let criteria = Criteria {
            pattern: Some(Pattern::new(&regex::escape(&stat.comm), true).unwrap()),
            ..Criteria::default()
        };
        let found = criteria.scan().unwrap();
        assert!(found.iter().all(|c| c.id != me), "{found:?}");
    }

    #[test]
    fn still_same_checks_start_time() {
        let me = std::process::id();
        let stat = procfs::task_stat(me).unwrap().unwrap();
        let mut candidate = Candidate {
            id: me,
            comm: stat.comm,
            start_time: stat.start_time,
        };
        assert!(still_same(&candidate, None).unwrap());
        assert!(
            still_same(&candidate, Some(me)).unwrap(),
            "the leader is a thread of its group"
        );

        // A different start time is what a reused PID looks like.
        candidate.start_time += 1;
        assert!(!still_same(&candidate, None).unwrap());
    }

    #[test]
    fn still_same_false_for_reaped_task() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let stat = procfs::task_stat(pid).unwrap();
        child.wait().unwrap();
        let candidate = Candidate {
            id: pid,
            comm: String::new(),
            start_time: stat.map_or(0, |stat| stat.start_time),
        };
        assert!(!still_same(&candidate, None).unwrap());
    }

    #[test]
    fn own_threads_are_listed() {
        let me = std::process::id();
        let threads = threads_of(me).unwrap();
        assert!(threads.iter().any(|t| t.id == me), "{threads:?}");
    }
}
