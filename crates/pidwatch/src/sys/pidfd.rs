//! Thin wrappers over the pidfd system calls: `pidfd_open`, `pidfd_send_signal`,
//! `waitid(P_PIDFD)` and `poll` on a pidfd.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, WaitId, WaitIdOptions};

bitflags::bitflags! {
    /// `PIDFD_*` flags for [`pidfd_open`].
    #[repr(transparent)]
    #[derive(Copy, Clone, Debug, Default, Eq, PartialEq, Hash)]
    pub struct PidfdFlags: u32 {
        /// `PIDFD_NONBLOCK` (Linux 5.10): `waitid(P_PIDFD)` on the pidfd
        /// returns `EAGAIN` instead of blocking while the process runs.
        const PIDFD_NONBLOCK = libc::O_NONBLOCK as u32;

        /// `PIDFD_THREAD` (Linux 6.9): the pidfd refers to one thread, which
        /// may be a non-leader, and reports that thread's exit rather than
        /// the whole thread group's.
        const PIDFD_THREAD = libc::O_EXCL as u32;
    }
}

/// Converts a PID or TID to the kernel's `pid_t`, rejecting values that no
/// task can have.
pub(crate) fn to_pid(pid: u32) -> io::Result<Pid> {
    i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `syscall(SYS_pidfd_open, pid, flags)`: opens a pidfd for a process or,
/// with [`PidfdFlags::PIDFD_THREAD`], for a thread.
///
/// Without `PIDFD_THREAD`, `pid` must be a thread-group leader: a non-leader
/// TID fails with `EINVAL` (Linux 5.3 to 6.17) or `ENOENT` (6.18).
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
pub fn pidfd_open(pid: u32, flags: PidfdFlags) -> io::Result<OwnedFd> {
    let pid = to_pid(pid)?;
    let flags = rustix::process::PidfdFlags::from_bits_retain(flags.bits());
    Ok(rustix::process::pidfd_open(pid, flags)?)
}

/// The set of tasks a signal sent through a pidfd goes to.
#[derive(Copy, Clone, Debug, Default, Eq, PartialEq, Hash)]
#[non_exhaustive]
pub enum SignalScope {
    /// No flag: the thread group of a process pidfd, the thread of a
    /// `PIDFD_THREAD` pidfd.
    #[default]
    Default,

    /// `PIDFD_SIGNAL_THREAD` (Linux 6.9): only the task the pidfd refers to.
    Thread,

    /// `PIDFD_SIGNAL_THREAD_GROUP` (Linux 6.9): the whole thread group, even
    /// through a `PIDFD_THREAD` pidfd.
    ThreadGroup,

    /// `PIDFD_SIGNAL_PROCESS_GROUP` (Linux 6.9): the process group the task
    /// belongs to.
    ProcessGroup,
}

impl SignalScope {
    fn flags(self) -> libc::c_uint {
        match self {
            SignalScope::Default => 0,
            SignalScope::Thread => libc::PIDFD_SIGNAL_THREAD,
            SignalScope::ThreadGroup => libc::PIDFD_SIGNAL_THREAD_GROUP,
            SignalScope::ProcessGroup => libc::PIDFD_SIGNAL_PROCESS_GROUP,
        }
    }
}

/// `syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, flags)`: sends `signal`
/// to the task behind `pidfd`, which can never be a process that reused its
/// PID. A signal of 0 only checks that the task can be signalled.
///
/// rustix's wrapper has no flags argument, so this calls the system call
/// directly.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
pub fn pidfd_send_signal(pidfd: impl AsFd, signal: i32, scope: SignalScope) -> io::Result<()> {
    // SAFETY: the descriptor is borrowed for the whole call, the siginfo
    // pointer is NULL (the kernel fills in a SI_USER siginfo itself), and the
    // system call takes exactly these four arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            scope.flags(),
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `waitid(P_PIDFD, pidfd, &info, WEXITED | WNOHANG)`: reaps the child behind
/// `pidfd` if it has exited, and returns its exit status.
///
/// Returns `Ok(None)` while the child runs. Only the parent (or a subreaper
/// that inherited the child) can reap: for anyone else the call fails
/// with `ECHILD`.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/waitid.2.html)
pub fn waitid_reap(pidfd: impl AsFd) -> io::Result<Option<ExitStatus>> {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
    match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), options) {
        Ok(Some(status)) => Ok(exit_status_of(&status)),
        Ok(None) => Ok(None),
        Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// `waitid(P_PIDFD, pidfd, &info, WEXITED | WNOHANG | WNOWAIT)`: returns the
/// exit status of an exited child without reaping it, so its owner can still
/// wait for it. Fails with `ECHILD` for a task that is not our child.
pub fn waitid_peek(pidfd: impl AsFd) -> io::Result<Option<ExitStatus>> {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), options) {
        Ok(Some(status)) => Ok(exit_status_of(&status)),
        Ok(None) | Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Like [`waitid_reap`], but blocks until the child exits.
pub fn waitid_reap_blocking(pidfd: impl AsFd) -> io::Result<ExitStatus> {
    loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED) {
            Ok(Some(status)) => {
                if let Some(status) = exit_status_of(&status) {
                    return Ok(status);
                }
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            // A pidfd opened with PIDFD_NONBLOCK never blocks in waitid, so
            // wait for readiness and try again.
            Err(rustix::io::Errno::AGAIN) => {
                wait_readable(pidfd.as_fd(), None)?;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// Converts the `siginfo_t` of an exited child to a wait status.
fn exit_status_of(status: &rustix::process::WaitIdStatus) -> Option<ExitStatus> {
    if let Some(code) = status.exit_status() {
        return Some(ExitStatus::from_raw((code & 0xff) << 8));
    }
    let signal = status.terminating_signal()?;
    let core = if status.dumped() { 0x80 } else { 0 };
    Some(ExitStatus::from_raw(signal | core))
}

/// The readiness of a pidfd, as `poll` reports it.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, serde::Serialize)]
pub struct Readiness {
    /// `POLLIN`: the task has exited. For a process pidfd this means the
    /// thread group is empty and the leader is a zombie or gone.
    pub readable: bool,

    /// `POLLHUP` (Linux 6.9): the task has been reaped, so no task uses its
    /// `struct pid` any more.
    pub hangup: bool,
}

impl Readiness {
    /// Decodes `poll` revents.
    pub fn from_revents(revents: PollFlags) -> Self {
        Readiness {
            readable: revents.contains(PollFlags::IN),
            hangup: revents.contains(PollFlags::HUP),
        }
    }

    /// Returns the revents bits (`POLLIN` = 0x1, `POLLHUP` = 0x10), the form
    /// the kernel's selftests print.
    pub fn revents_bits(self) -> u16 {
        let mut bits = 0;
        if self.readable {
            bits |= libc::POLLIN as u16;
        }
        if self.hangup {
            bits |= libc::POLLHUP as u16;
        }
        bits
    }

    /// Returns true when the kernel reports an exit of any kind.
    pub fn exited(self) -> bool {
        self.readable || self.hangup
    }
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.readable, self.hangup) {
            (false, false) => f.write_str("0"),
            (true, false) => f.write_str("POLLIN"),
            (true, true) => f.write_str("POLLIN|POLLHUP"),
            (false, true) => f.write_str("POLLHUP"),
        }
    }
}

/// `poll(&{pidfd, POLLIN}, 1, 0)`: reads the readiness of a pidfd without
/// waiting.
pub fn readiness(pidfd: impl AsFd) -> io::Result<Readiness> {
    poll_once(pidfd.as_fd(), Some(Duration::ZERO))
}

/// `poll(&{pidfd, POLLIN}, 1, timeout)`: waits until the pidfd reports an
/// exit or `timeout` passes (`None` waits forever), and returns the
/// readiness at that point.
pub fn wait_readable(pidfd: impl AsFd, timeout: Option<Duration>) -> io::Result<Readiness> {
    poll_once(pidfd.as_fd(), timeout)
}

fn poll_once(
    pidfd: std::os::fd::BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<Readiness> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let timespec = left.map(to_timespec);
        let mut fds = [PollFd::new(&pidfd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, timespec.as_ref()) {
            Ok(_) => return Ok(Readiness::from_revents(fds[0].revents())),
            Err(rustix::io::Errno::INTR) => continue,
            Err(err) => return Err(err.into()),
        }
    }
}

/// Converts a timeout for `poll` and `epoll_wait`.
pub(crate) fn to_timespec(duration: Duration) -> rustix::event::Timespec {
    rustix::event::Timespec {
        tv_sec: duration.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(duration.subsec_nanos()),
    }
}
