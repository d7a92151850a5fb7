//! Targets from the types other code already holds: `PID:INODE` strings,
//! pidfds from `pidfd_open` or another library, and a TID of a known
//! process.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::sys::identity::{ParsePidError, PID_FS_MAGIC};
use crate::sys::{self, Feature, Features, PidInode, PidfdFlags, PidfdInfoMask};
use crate::watch::{open_error, Target, TargetKind};

impl Target {
    /// Parses `PID`, `PID:INODE`, `TID` or `TID:INODE` as `pidwatch id`
    /// prints it, for a target of `kind`.
    ///
    /// [`str::parse`] does the same for processes. The inode pins the
    /// target: [`Watcher::add`](crate::Watcher::add) then fails with
    /// [`Error::Reused`] when the number belongs to another task by now.
    ///
    /// ```
    /// use pidwatch::{Target, TargetKind};
    ///
    /// let thread = Target::parse("4321:98765", TargetKind::Thread)?;
    /// assert!(matches!(thread, Target::Thread(id) if id.pid == 4321 && id.inode == Some(98765)));
    ///
    /// let err = Target::parse("12:x", TargetKind::Process).unwrap_err();
    /// assert!(err.to_string().starts_with(r#"invalid PID "12:x": the inode after ':'"#));
    /// # Ok::<(), pidwatch::Error>(())
    /// ```
    pub fn parse(input: &str, kind: TargetKind) -> Result<Target, ParsePidError> {
        Ok(match kind {
            TargetKind::Process => Target::Process(PidInode::parse(input, "PID")?),
            TargetKind::Thread => Target::Thread(PidInode::parse(input, "TID")?),
        })
    }

    /// Returns a target for a pidfd the caller owns, such as one from
    /// [`sys::pidfd_open`], `rustix::process::pidfd_open`, or std's
    /// `PidFd` (through `OwnedFd::from`).
    ///
    /// The kind comes from the descriptor: a pidfd opened with
    /// `PIDFD_THREAD` (its file status flags contain `O_EXCL`) is a thread
    /// target, any other a process target. A raw descriptor number becomes
    /// an `OwnedFd` through the unsafe `OwnedFd::from_raw_fd`, and a
    /// borrowed one through `BorrowedFd::try_clone_to_owned`.
    ///
    /// # Errors
    ///
    /// [`Error::NotAPidfd`] when `fd` is some other file: pidfds are pidfs
    /// files from Linux 6.9 and `anon_inode:[pidfd]` before.
    ///
    /// ```
    /// use pidwatch::sys::{pidfd_open, PidfdFlags};
    /// use pidwatch::{Target, TargetKind, Watcher};
    ///
    /// let child = std::process::Command::new("sleep").arg("10").spawn()?;
    /// let pidfd = pidfd_open(child.id(), PidfdFlags::empty())?;
    ///
    /// let mut watcher = Watcher::new()?;
    /// let id = watcher.add(Target::from_pidfd(pidfd)?)?;
    /// assert_eq!(watcher.identity(id).map(|i| i.kind), Some(TargetKind::Process));
    ///
    /// let not_a_pidfd = std::fs::File::open("/dev/null")?;
    /// assert!(Target::from_pidfd(not_a_pidfd.into()).is_err());
    /// # let mut child = child;
    /// # child.kill()?;
    /// # child.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_pidfd(fd: OwnedFd) -> Result<Target> {
        check_pidfd(fd.as_fd())?;
        let flags = rustix::fs::fcntl_getfl(&fd).map_err(|err| {
            Error::io(
                format!("fcntl(F_GETFL) on descriptor {}", fd.as_raw_fd()),
                err.into(),
            )
        })?;
        // PIDFD_THREAD is O_EXCL, and F_GETFL returns it with the other
        // open flags of the pidfd.
        if flags.contains(rustix::fs::OFlags::EXCL) {
            Ok(Target::ThreadPidfd(fd))
        } else {
            Ok(Target::ProcessPidfd(fd))
        }
    }

    /// Returns a target for thread `tid` of process `pid`, after checking
    /// that the thread belongs to that process.
    ///
    /// Use it for TIDs read from `/proc/PID/task`: a listed thread can exit
    /// and its TID be reused by another task before the watcher opens it.
    /// Where the kernel has `PIDFD_THREAD` (Linux 6.9), the returned target
    /// owns the `PIDFD_THREAD` pidfd that was checked, so the watcher
    /// watches exactly that thread. On older kernels the check reads
    /// `/proc/PID/task/TID`, and the target is [`Target::thread`].
    ///
    /// # Errors
    ///
    /// - [`Error::NotAThread`] when `tid` belongs to another process.
    /// - [`Error::NotFound`] when no task has `tid` any more.
    /// - The errors of `pidfd_open`, as for [`Target::thread`].
    ///
    /// ```
    /// use pidwatch::{Target, Watcher};
    ///
    /// let pid = std::process::id();
    /// let mut watcher = Watcher::new()?;
    /// for tid in pidwatch::sys::procfs::threads(pid)? {
    ///     match Target::thread_of(pid, tid) {
    ///         Ok(target) => {
    ///             watcher.add(target)?;
    ///         }
    ///         // The thread exited after /proc listed it.
    ///         Err(err) if err.is_gone() => {}
    ///         Err(err) => return Err(err.into()),
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn thread_of(pid: u32, tid: u32) -> Result<Target> {
        if !Features::get().has(Feature::PidfdThread) {
            // NOTE: without PIDFD_THREAD nothing pins the thread between
            // this check and Watcher::add, so a TID reused in that window
            // is watched as if it were the thread that was checked.
            return match sys::procfs::thread_stat(pid, tid) {
                Ok(Some(_)) => Ok(Target::thread(tid)),
                Ok(None) => Err(not_a_thread(pid, tid)),
                Err(err) => Err(Error::io(format!("reading /proc/{pid}/task/{tid}"), err)),
            };
        }

        let pidfd = sys::pidfd_open(tid, PidfdFlags::PIDFD_THREAD)
            .map_err(|err| open_error(err, "TID", tid, true))?;
        verify_thread_group(&pidfd, pid, tid)?;
        Ok(Target::ThreadPidfd(pidfd))
    }
}

/// Parses `PID` or `PID:INODE` as a process target, as the command line
/// takes it. Use [`Target::parse`] for threads.
///
/// ```
/// use pidwatch::Target;
///
/// let target: Target = "1234:56789".parse()?;
/// assert!(matches!(target, Target::Process(id) if id.pid == 1234 && id.inode == Some(56789)));
/// assert!("0".parse::<Target>().is_err());
/// # Ok::<(), pidwatch::Error>(())
/// ```
impl FromStr for Target {
    type Err = ParsePidError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Target::parse(input, TargetKind::Process)
    }
}

/// The same as [`Target::from_pidfd`].
impl TryFrom<OwnedFd> for Target {
    type Error = Error;

    fn try_from(fd: OwnedFd) -> Result<Self> {
        Target::from_pidfd(fd)
    }
}

/// The same as [`Target::child`].
impl TryFrom<&std::process::Child> for Target {
    type Error = Error;

    fn try_from(child: &std::process::Child) -> Result<Self> {
        Target::child(child)
    }
}

/// Checks that `fd` is a pidfd: a pidfs file (Linux 6.9), or an anonymous
/// inode named `[pidfd]` before that.
fn check_pidfd(fd: BorrowedFd<'_>) -> Result<()> {
    let raw = fd.as_raw_fd();
    let io_error =
        |what: &str, err: io::Error| Error::io(format!("{what} on descriptor {raw}"), err);

    let statfs = rustix::fs::fstatfs(fd).map_err(|err| io_error("fstatfs", err.into()))?;
    if statfs.f_type as i64 == PID_FS_MAGIC {
        return Ok(());
    }
    let link = std::fs::read_link(format!("/proc/self/fd/{raw}"))
        .map_err(|err| io_error("readlink of /proc/self/fd", err))?;
    if link.as_os_str() == "anon_inode:[pidfd]" {
        return Ok(());
    }
    Err(Error::NotAPidfd {
        fd: raw,
        reason: format!("it is {}", link.display()),
    })
}

/// Checks that the task behind the `PIDFD_THREAD` pidfd `pidfd`, opened for
/// `tid`, is a thread of process `pid`.
fn verify_thread_group(pidfd: &OwnedFd, pid: u32, tid: u32) -> Result<()> {
    // PIDFD_GET_INFO (Linux 6.13) names the thread group of the task the
    // pidfd holds, so no TID reuse can come between open and check.
    match sys::pidfd_get_info(pidfd, PidfdInfoMask::PIDFD_INFO_PID) {
        Ok(info) => match info.tgid {
            Some(tgid) if tgid == pid => Ok(()),
            tgid => Err(Error::NotAThread { tid, pid, tgid }),
        },
        // Reaped after the open.
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => Err(Error::NotFound {
            what: "TID",
            id: tid,
        }),
        // Linux before 6.13: no PIDFD_GET_INFO.
        Err(_) => verify_thread_group_in_procfs(pidfd, pid, tid),
    }
}

/// [`verify_thread_group`] for kernels without `PIDFD_GET_INFO`.
fn verify_thread_group_in_procfs(pidfd: &OwnedFd, pid: u32, tid: u32) -> Result<()> {
    // /proc/PID/task/TID names whichever task has the TID now. The pidfd
    // pins the task but not the number, which is freed at reap, so the
    // entry is ours only if the task was still unreaped after the read.
    let listed = sys::procfs::thread_stat(pid, tid)
        .map_err(|err| Error::io(format!("reading /proc/{pid}/task/{tid}"), err))?
        .is_some();
    let readiness = sys::readiness(pidfd)
        .map_err(|err| Error::io(format!("poll on the pidfd of TID {tid}"), err))?;
    if readiness.hangup {
        return Err(Error::NotFound {
            what: "TID",
            id: tid,
        });
    }
    if !listed {
        return Err(not_a_thread(pid, tid));
    }
    Ok(())
}

fn not_a_thread(pid: u32, tid: u32) -> Error {
    let tgid = sys::procfs::tgid_of(tid).ok().flatten();
    Error::NotAThread { tid, pid, tgid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_thread_and_process() {
        let target = Target::parse("42", TargetKind::Thread).unwrap();
        let Target::Thread(id) = target else {
            panic!("expected a thread target, got {target:?}");
        };
        assert_eq!(id.pid, 42);
        assert_eq!(id.inode, None);
        let target: Target = "42:7".parse().unwrap();
        assert!(matches!(target, Target::Process(id) if id.inode == Some(7)));
    }

    #[test]
    fn parse_errors_name_the_kind() {
        let err = Target::parse("x", TargetKind::Thread).unwrap_err();
        assert!(err.to_string().starts_with("invalid TID \"x\""), "{err}");
    }

    #[test]
    fn procfs_check_tells_thread_groups_apart() {
        if !Features::get().has(Feature::PidfdThread) {
            eprintln!("skipped: PIDFD_THREAD (Linux 6.9) is missing");
            return;
        }
        let me = std::process::id();
        let own = sys::pidfd_open(me, PidfdFlags::PIDFD_THREAD).unwrap();
        verify_thread_group_in_procfs(&own, me, me).unwrap();

        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let other = sys::pidfd_open(child.id(), PidfdFlags::PIDFD_THREAD).unwrap();
        let err = verify_thread_group_in_procfs(&other, me, child.id()).unwrap_err();
        assert!(
            matches!(err, Error::NotAThread { tgid: Some(tgid), .. } if tgid == child.id()),
            "got {err}"
        );

        child.kill().unwrap();
        child.wait().unwrap();
        let err = verify_thread_group_in_procfs(&other, me, child.id()).unwrap_err();
        assert!(err.is_gone(), "got {err}");
    }

    #[test]
    fn socket_is_not_a_pidfd() {
        let (socket, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        match Target::from_pidfd(socket.into()) {
            Err(Error::NotAPidfd { reason, .. }) => assert!(reason.contains("socket"), "{reason}"),
            other => panic!("expected NotAPidfd, got {other:?}"),
        }
    }
}
