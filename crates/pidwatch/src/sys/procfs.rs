//! Readers for `/proc/PID/...`, used for what the pidfd interface does not
//! report: the thread group of a TID, a task's state, and kernel threads.
//!
//! Everything read here can be stale by the time it returns, because a PID is
//! free for reuse as soon as its task is reaped. Callers therefore hold a
//! pidfd on the task and re-check the pidfd after reading.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `PF_KTHREAD` from `<linux/sched.h>`: the task is a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/PID/task/TID/stat` that pidwatch uses.
///
/// ```
/// let stat = pidwatch::sys::procfs::task_stat(std::process::id())?.expect("this process exists");
/// assert!(!stat.is_dead());
/// assert!(!stat.is_kernel_thread());
/// assert!(stat.start_time > 0);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct TaskStat {
    /// The task's command name (`comm`), at most 15 bytes.
    pub comm: String,
    /// The state letter: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// The PID of the parent process.
    pub ppid: u32,
    /// `PF_*` flags of the task.
    pub flags: u64,
    /// Threads in the task's thread group that have not been released yet.
    /// A zombie leader whose count is 1 is the last task of its group.
    pub num_threads: u32,
    /// Start time in clock ticks after boot; with the PID it identifies a
    /// task on kernels without pidfs.
    pub start_time: u64,
}

impl TaskStat {
    /// Returns true for a kernel thread, which never exits through the usual
    /// process paths.
    ///
    /// ```
    /// // PID 2 is kthreadd where this PID namespace shows it.
    /// if let Some(stat) = pidwatch::sys::procfs::task_stat(2)? {
    ///     println!("PID 2 is a kernel thread: {}", stat.is_kernel_thread());
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// Returns true for a zombie (`Z`) or a task being torn down (`X`).
    ///
    /// ```
    /// use pidwatch::sys::{pidfd_open, procfs, wait_readable, PidfdFlags};
    ///
    /// let mut child = std::process::Command::new("true").spawn()?;
    /// wait_readable(pidfd_open(child.id(), PidfdFlags::empty())?, None)?;
    /// assert!(procfs::task_stat(child.id())?.expect("a zombie").is_dead());
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Reads `/proc/TID/stat` (which also works for non-leader TIDs, although
/// `/proc` does not list them). Returns `Ok(None)` when the task is gone.
///
/// ```
/// let stat = pidwatch::sys::procfs::task_stat(std::process::id())?;
/// assert!(stat.is_some());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn task_stat(tid: u32) -> io::Result<Option<TaskStat>> {
    read_optional(&format!("/proc/{tid}/stat")).map(|text| text.and_then(|t| parse_stat(&t)))
}

/// The fields of `stat` that a liveness poll needs.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub struct PollStat {
    /// The state letter, as in [`TaskStat::state`].
    pub state: u8,
    /// As [`TaskStat::num_threads`].
    pub num_threads: u32,
    /// As [`TaskStat::start_time`].
    pub start_time: u64,
}

impl PollStat {
    /// Returns true for a zombie (`Z`) or a task being torn down (`X`).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

/// Reads the liveness fields of `/proc/TID/stat` without allocating: the
/// path and the text stay on the stack. Returns `Ok(None)` when the task
/// is gone. This is the call `/proc` polling makes for every target in
/// every round.
pub fn poll_stat(tid: u32) -> io::Result<Option<PollStat>> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Write as _;

    let mut path = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut path[..]);
    write!(cursor, "/proc/{tid}/stat").expect("a u32 path fits in 32 bytes");
    let len = cursor.position() as usize;

    let fd = match rustix::fs::open(
        &path[..len],
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::SRCH) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let mut buffer = [0u8; 1024];
    let mut filled = 0;
    loop {
        match rustix::io::read(&fd, &mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => {
                filled += read;
                if filled == buffer.len() {
                    break;
                }
            }
            Err(rustix::io::Errno::SRCH) => return Ok(None),
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(parse_poll_stat(&buffer[..filled]))
}

/// Parses the fields after `comm` (the text after the last `)`).
fn parse_poll_stat(text: &[u8]) -> Option<PollStat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let mut fields = text[close + 1..]
        .split(|&b| b == b' ' || b == b'\n')
        .filter(|field| !field.is_empty());
    let number = |field: &[u8]| -> Option<u64> { std::str::from_utf8(field).ok()?.parse().ok() };

    // Field 3 is the state; num_threads is field 20 and start time 22.
    let state = *fields.next()?.first()?;
    let num_threads = number(fields.nth(16)?)?;
    let start_time = number(fields.nth(1)?)?;
    Some(PollStat {
        state,
        num_threads: u32::try_from(num_threads).ok()?,
        start_time,
    })
}

/// Reads `/proc/PID/task/TID/stat`, which exists only while `tid` belongs to
/// the thread group `pid`.
///
/// ```
/// use pidwatch::sys::procfs::thread_stat;
///
/// let me = std::process::id();
/// // The leader is a thread of its own group.
/// assert!(thread_stat(me, me)?.is_some());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn thread_stat(pid: u32, tid: u32) -> io::Result<Option<TaskStat>> {
    read_optional(&format!("/proc/{pid}/task/{tid}/stat"))
        .map(|text| text.and_then(|t| parse_stat(&t)))
}

/// Returns the thread-group ID of `tid` from `/proc/TID/status`, or `None`
/// when the task is gone.
///
/// ```
/// let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
/// assert_eq!(pidwatch::sys::procfs::tgid_of(tid)?, Some(std::process::id()));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn tgid_of(tid: u32) -> io::Result<Option<u32>> {
    let Some(status) = read_optional(&format!("/proc/{tid}/status"))? else {
        return Ok(None);
    };
    Ok(status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))
        .and_then(|value| value.trim().parse().ok()))
}

/// Lists the TIDs of the threads in thread group `pid`.
///
/// ```
/// let me = std::process::id();
/// assert!(pidwatch::sys::procfs::threads(me)?.contains(&me));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn threads(pid: u32) -> io::Result<Vec<u32>> {
    let entries = match fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut tids: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Returns the PID a pidfd of this process refers to, from the `Pid:` line
/// of `/proc/self/fdinfo/FD` (Linux 5.4). `Ok(None)` when the task is gone
/// (`-1`, Linux 5.15) or outside this PID namespace (`0`).
///
/// ```
/// use std::os::fd::AsFd;
/// use pidwatch::sys::{pidfd_open, procfs, PidfdFlags};
///
/// let me = std::process::id();
/// let pidfd = pidfd_open(me, PidfdFlags::empty())?;
/// assert_eq!(procfs::pidfd_pid(pidfd.as_fd())?, Some(me));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pidfd_pid(pidfd: BorrowedFd<'_>) -> io::Result<Option<u32>> {
    let path = format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd());
    let Some(text) = read_optional(&path)? else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{path} does not exist"),
        ));
    };
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("Pid:"))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path} has no Pid: line; is it a pidfd?"),
            )
        })?;
    Ok(value.trim().parse::<i64>().ok().and_then(|pid| {
        if pid > 0 {
            u32::try_from(pid).ok()
        } else {
            None
        }
    }))
}

fn read_optional(path: &str) -> io::Result<Option<String>> {
    match read_small(path) {
        Ok(text) => Ok(Some(text)),
        // ESRCH shows up when the task dies while the file is read.
        Err(err)
            if err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Reads a `/proc/PID` file with one `read` into a page-sized buffer when
/// it fits. `fs::read_to_string` first calls `statx` (which reports size 0
/// for these files) and then grows its buffer over several reads.
fn read_small(path: &str) -> io::Result<String> {
    use std::io::Read;

    let mut file = fs::File::open(path)?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..])?;
        len += n;
        // A /proc/PID file is generated whole by one seq_file show(), so a
        // read that leaves room in the buffer has returned all of it.
        if n == 0 || len < buf.len() {
            break;
        }
        if len == buf.len() {
            // Larger than a page: read the rest the general way.
            let mut rest = Vec::from(&buf[..]);
            file.read_to_end(&mut rest)?;
            return String::from_utf8(rest)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err));
        }
    }
    String::from_utf8(buf[..len].to_vec())
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

/// Parses `stat`: `pid (comm) state ppid pgrp session tty tpgid flags ...`,
/// where `comm` may itself contain spaces and parentheses.
fn parse_stat(text: &str) -> Option<TaskStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();

    // Field numbers in proc(5) count from 1 with pid and comm as 1 and 2, so
    // field N is fields[N - 3] here.
    Some(TaskStat {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        flags: fields.get(6)?.parse().ok()?,
        num_threads: fields.get(17)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_with_odd_comm() {
        let text = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.comm, "a) b (c");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.flags, 4_194_560);
        assert_eq!(stat.num_threads, 1);
        assert_eq!(stat.start_time, 98_765);
    }

    #[test]
    fn poll_stat_matches_full_parse() {
        let text = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 3 0 98765 0 0\n";
        let full = parse_stat(text).unwrap();
        let poll = parse_poll_stat(text.as_bytes()).unwrap();
        assert_eq!(poll.state, b'S');
        assert_eq!(poll.num_threads, full.num_threads);
        assert_eq!(poll.start_time, full.start_time);

        let me = std::process::id();
        let own = poll_stat(me).unwrap().expect("own /proc entry");
        assert_eq!(own.start_time, task_stat(me).unwrap().unwrap().start_time);
        assert!(!own.is_dead());
    }

    #[test]
    fn own_task_is_found() {
        let me = std::process::id();
        let stat = task_stat(me).unwrap().expect("own /proc entry");
        assert!(!stat.is_kernel_thread());
        assert_eq!(tgid_of(me).unwrap(), Some(me));
        assert!(threads(me).unwrap().contains(&me));
    }

    #[test]
    fn pidfd_pid_reads_fdinfo() {
        use std::os::fd::AsFd;
        let me = std::process::id();
        let pidfd = crate::sys::pidfd_open(me, crate::sys::PidfdFlags::empty()).unwrap();
        assert_eq!(pidfd_pid(pidfd.as_fd()).unwrap(), Some(me));
    }

    #[test]
    fn kthreadd_is_a_kernel_thread() {
        let Some(stat) = task_stat(2).unwrap() else {
            eprintln!("skipped: PID 2 (kthreadd) is not visible in this PID namespace");
            return;
        };
        assert!(stat.is_kernel_thread(), "PID 2 is {stat:?}");
    }
}
