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
    ///
    /// ```
    /// use pidwatch::sys::{pidfd_open, PidfdFlags};
    ///
    /// let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    /// match pidfd_open(tid, PidfdFlags::PIDFD_THREAD | PidfdFlags::PIDFD_NONBLOCK) {
    ///     Ok(_pidfd) => {}
    ///     // EINVAL before Linux 6.9.
    ///     Err(err) => println!("no PIDFD_THREAD: {err}"),
    /// }
    /// ```
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
///
/// ```
/// use pidwatch::sys::{pidfd_open, readiness, PidfdFlags};
///
/// let pidfd = pidfd_open(std::process::id(), PidfdFlags::empty())?;
/// assert!(!readiness(&pidfd)?.exited());
/// // No task can have PID 0.
/// assert!(pidfd_open(0, PidfdFlags::empty()).is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pidfd_open(pid: u32, flags: PidfdFlags) -> io::Result<OwnedFd> {
    let pid = to_pid(pid)?;
    let flags = rustix::process::PidfdFlags::from_bits_retain(flags.bits());
    Ok(rustix::process::pidfd_open(pid, flags)?)
}

/// The set of tasks a signal sent through a pidfd goes to.
///
/// ```
/// use pidwatch::sys::{pidfd_open, pidfd_send_signal, PidfdFlags, SignalScope};
///
/// let pidfd = pidfd_open(std::process::id(), PidfdFlags::empty())?;
/// // Signal 0 checks permission only.
/// pidfd_send_signal(&pidfd, 0, SignalScope::Default)?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// use pidwatch::sys::{pidfd_open, pidfd_send_signal, waitid_reap_blocking, PidfdFlags, SignalScope};
/// use std::os::unix::process::ExitStatusExt;
///
/// let child = std::process::Command::new("sleep").arg("10").spawn()?;
/// let pidfd = pidfd_open(child.id(), PidfdFlags::empty())?;
/// pidfd_send_signal(&pidfd, libc::SIGKILL, SignalScope::Default)?;
/// assert_eq!(waitid_reap_blocking(&pidfd)?.signal(), Some(libc::SIGKILL));
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// use pidwatch::sys::{pidfd_open, wait_readable, waitid_reap, PidfdFlags};
///
/// let child = std::process::Command::new("sh").args(["-c", "exit 4"]).spawn()?;
/// let pidfd = pidfd_open(child.id(), PidfdFlags::empty())?;
/// wait_readable(&pidfd, None)?;
/// assert_eq!(waitid_reap(&pidfd)?.and_then(|status| status.code()), Some(4));
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// use pidwatch::sys::{pidfd_open, wait_readable, waitid_peek, PidfdFlags};
///
/// let mut child = std::process::Command::new("sh").args(["-c", "exit 6"]).spawn()?;
/// let pidfd = pidfd_open(child.id(), PidfdFlags::empty())?;
/// wait_readable(&pidfd, None)?;
/// assert_eq!(waitid_peek(&pidfd)?.and_then(|status| status.code()), Some(6));
/// // The child is still there for its owner to reap.
/// assert_eq!(child.wait()?.code(), Some(6));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn waitid_peek(pidfd: impl AsFd) -> io::Result<Option<ExitStatus>> {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), options) {
        Ok(Some(status)) => Ok(exit_status_of(&status)),
        Ok(None) | Err(rustix::io::Errno::AGAIN) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Like [`waitid_reap`], but blocks until the child exits.
///
/// ```
/// use pidwatch::sys::{pidfd_open, waitid_reap_blocking, PidfdFlags};
///
/// let child = std::process::Command::new("true").spawn()?;
/// let pidfd = pidfd_open(child.id(), PidfdFlags::PIDFD_NONBLOCK)?;
/// assert!(waitid_reap_blocking(&pidfd)?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
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
///
/// ```
/// use pidwatch::sys::Readiness;
/// use rustix::event::PollFlags;
///
/// let zombie = Readiness::from_revents(PollFlags::IN);
/// assert!(zombie.exited());
/// assert_eq!(zombie.to_string(), "POLLIN");
/// ```
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
    ///
    /// ```
    /// let reaped = pidwatch::sys::Readiness::from_revents(rustix::event::PollFlags::IN | rustix::event::PollFlags::HUP);
    /// assert!(reaped.hangup);
    /// ```
    pub fn from_revents(revents: PollFlags) -> Self {
        Readiness {
            readable: revents.contains(PollFlags::IN),
            hangup: revents.contains(PollFlags::HUP),
        }
    }

    /// Returns the revents bits (`POLLIN` = 0x1, `POLLHUP` = 0x10), the form
    /// the kernel's selftests print.
    ///
    /// ```
    /// let readiness = pidwatch::sys::Readiness { readable: true, hangup: true };
    /// assert_eq!(readiness.revents_bits(), 0x11);
    /// ```
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
    ///
    /// ```
    /// let running = pidwatch::sys::Readiness { readable: false, hangup: false };
    /// assert!(!running.exited());
    /// ```
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
///
/// ```
/// use pidwatch::sys::{pidfd_open, readiness, PidfdFlags};
///
/// let pidfd = pidfd_open(std::process::id(), PidfdFlags::empty())?;
/// assert_eq!(readiness(&pidfd)?.to_string(), "0");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn readiness(pidfd: impl AsFd) -> io::Result<Readiness> {
    poll_once(pidfd.as_fd(), Some(Duration::ZERO))
}

/// `poll(&{pidfd, POLLIN}, 1, timeout)`: waits until the pidfd reports an
/// exit or `timeout` passes (`None` waits forever), and returns the
/// readiness at that point.
///
/// ```
/// use std::time::Duration;
/// use pidwatch::sys::{pidfd_open, wait_readable, PidfdFlags};
///
/// let mut child = std::process::Command::new("true").spawn()?;
/// let pidfd = pidfd_open(child.id(), PidfdFlags::empty())?;
/// assert!(wait_readable(&pidfd, Some(Duration::from_secs(10)))?.readable);
/// child.wait()?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
