//! The kernel interface: safe wrappers over the pidfd system calls and
//! ioctls, pidfs identity, `/proc` readers, and the feature probe.
//!
//! Each wrapper is one call, named after it, and returns the kernel's error
//! unchanged as an [`std::io::Error`], so callers can tell `ENOSYS` (missing
//! or blocked) from `EINVAL` (flag unknown) from `ESRCH` (task gone).

pub mod features;
pub mod identity;
pub mod info;
pub mod pidfd;
pub mod procfs;
pub mod seccomp;

pub use features::{Feature, Features, Probe};
pub use identity::{open_checked, parse_pid, pidfd_inode, Opened, PidInode, PID_MAX_LIMIT};
pub use info::{exit_status, pidfd_get_info, Credentials, PidfdInfo, PidfdInfoMask};
pub use pidfd::{
    pidfd_open, pidfd_send_signal, readiness, wait_readable, waitid_peek, waitid_reap,
    waitid_reap_blocking, PidfdFlags, Readiness, SignalScope,
};

/// Returns the symbolic name of the errno values pidfd calls produce, for
/// messages that name the kernel's error.
///
/// ```
/// assert_eq!(pidwatch::sys::errno_name(libc::ESRCH), Some("ESRCH"));
/// assert_eq!(pidwatch::sys::errno_name(-1), None);
/// ```
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return None,
    })
}
