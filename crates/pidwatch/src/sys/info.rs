//! `ioctl(pidfd, PIDFD_GET_INFO, &info)`: identity, credentials, cgroup and
//! exit status of the task behind a pidfd.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use rustix::ioctl::{opcode, Opcode, Updater};

/// `struct pidfd_info` at `PIDFD_INFO_SIZE_VER2` (80 bytes), the largest
/// layout published so far.
///
/// The ioctl is extensible because the size is part of the request number.
/// The kernel copies only the fields both sides define, so an older kernel
/// leaves the tail zeroed and clears the mask bits of fields it did not fill.
#[repr(C)]
#[derive(Copy, Clone, Debug, Default)]
struct RawPidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
    coredump_mask: u32,
    coredump_signal: u32,
    supported_mask: u64,
}

const _: () = assert!(std::mem::size_of::<RawPidfdInfo>() == 80);

/// `PIDFD_GET_INFO`: `_IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info)`.
const PIDFD_GET_INFO: Opcode = opcode::read_write::<RawPidfdInfo>(0xFF, 11);

bitflags::bitflags! {
    /// `PIDFD_INFO_*` bits of `pidfd_info.mask`: which fields to fill (on
    /// request) and which were filled (on return).
    ///
    /// ```
    /// use pidwatch::sys::PidfdInfoMask;
    ///
    /// let request = PidfdInfoMask::PIDFD_INFO_PID | PidfdInfoMask::PIDFD_INFO_CREDS;
    /// assert!(request.contains(PidfdInfoMask::PIDFD_INFO_PID));
    /// ```
    #[repr(transparent)]
    #[derive(Copy, Clone, Debug, Default, Eq, PartialEq, Hash)]
    pub struct PidfdInfoMask: u64 {
        /// `PIDFD_INFO_PID` (Linux 6.13): `pid`, `tgid` and `ppid`, always
        /// returned while the task exists.
        const PIDFD_INFO_PID = 1 << 0;
        /// `PIDFD_INFO_CREDS` (Linux 6.13): the user and group IDs.
        const PIDFD_INFO_CREDS = 1 << 1;
        /// `PIDFD_INFO_CGROUPID` (Linux 6.13): the cgroup v2 ID.
        const PIDFD_INFO_CGROUPID = 1 << 2;
        /// `PIDFD_INFO_EXIT` (Linux 6.15): the wait status, available to any
        /// holder of the pidfd once the task has been reaped.
        const PIDFD_INFO_EXIT = 1 << 3;
        /// `PIDFD_INFO_COREDUMP` (Linux 6.16): whether the task dumped core.
        const PIDFD_INFO_COREDUMP = 1 << 4;
        /// `PIDFD_INFO_SUPPORTED_MASK` (after Linux 6.18): the mask bits
        /// this kernel supports.
        const PIDFD_INFO_SUPPORTED_MASK = 1 << 5;
        /// `PIDFD_INFO_COREDUMP_SIGNAL` (after Linux 6.18): the signal that
        /// caused the core dump.
        const PIDFD_INFO_COREDUMP_SIGNAL = 1 << 6;
    }
}

/// User and group IDs of a task, as seen from the caller's user namespace.
///
/// ```
/// use pidwatch::sys::{pidfd_get_info, pidfd_open, PidfdFlags, PidfdInfoMask};
///
/// let pidfd = pidfd_open(std::process::id(), PidfdFlags::empty())?;
/// // ENOTTY or EINVAL before Linux 6.13.
/// if let Ok(info) = pidfd_get_info(&pidfd, PidfdInfoMask::PIDFD_INFO_CREDS) {
///     let credentials = info.credentials.expect("requested");
///     assert_eq!(credentials.euid, rustix::process::geteuid().as_raw());
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, serde::Serialize)]
pub struct Credentials {
    /// Real user ID.
    pub ruid: u32,
    /// Real group ID.
    pub rgid: u32,
    /// Effective user ID.
    pub euid: u32,
    /// Effective group ID.
    pub egid: u32,
}

/// The fields `PIDFD_GET_INFO` returned. Every field is `None` when the kernel did
/// not fill it.
///
/// ```
/// use pidwatch::sys::{pidfd_get_info, pidfd_open, PidfdFlags, PidfdInfoMask};
///
/// let me = std::process::id();
/// let pidfd = pidfd_open(me, PidfdFlags::empty())?;
/// if let Ok(info) = pidfd_get_info(&pidfd, PidfdInfoMask::PIDFD_INFO_PID) {
///     assert_eq!(info.tgid, Some(me));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Default, Eq, PartialEq)]
pub struct PidfdInfo {
    /// The mask the kernel returned.
    pub mask: PidfdInfoMask,
    /// PID of the task in the caller's PID namespace (the TID for a thread).
    pub pid: Option<u32>,
    /// Thread-group ID (the PID of the process).
    pub tgid: Option<u32>,
    /// PID of the parent.
    pub ppid: Option<u32>,
    /// The task's credentials.
    pub credentials: Option<Credentials>,
    /// The cgroup v2 ID.
    pub cgroup_id: Option<u64>,
    /// The wait status, once the task has been reaped.
    pub exit_status: Option<ExitStatus>,
    /// `PIDFD_COREDUMP*` bits, when the kernel reports them.
    pub coredump_mask: Option<u32>,
    /// The mask bits this kernel supports (kernels after 6.18).
    pub supported_mask: Option<PidfdInfoMask>,
}

/// `ioctl(pidfd, PIDFD_GET_INFO, &info)` with `request` in `info.mask`.
///
/// Fails with `ESRCH` when the task has been reaped and `request` lacks
/// `PIDFD_INFO_EXIT` (or the kernel predates it), and with `ENOTTY` or
/// `EINVAL` on kernels before 6.13 or on pidfds that are not pidfs files.
///
/// # References
///  - [Linux](https://man7.org/linux/man-pages/man2/PIDFD_GET_INFO.2const.html)
///
/// ```
/// use pidwatch::sys::{pidfd_get_info, pidfd_open, PidfdFlags, PidfdInfoMask};
///
/// let pidfd = pidfd_open(std::process::id(), PidfdFlags::empty())?;
/// match pidfd_get_info(&pidfd, PidfdInfoMask::PIDFD_INFO_PID) {
///     Ok(info) => println!("parent: {:?}", info.ppid),
///     Err(err) => println!("no PIDFD_GET_INFO before Linux 6.13: {err}"),
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn pidfd_get_info(pidfd: impl AsFd, request: PidfdInfoMask) -> io::Result<PidfdInfo> {
    let mut raw = RawPidfdInfo {
        mask: request.bits(),
        ..RawPidfdInfo::default()
    };

    // SAFETY: `RawPidfdInfo` is the kernel's `struct pidfd_info` layout at the
    // size encoded in the request number, so the kernel writes only inside it.
    unsafe {
        let ioctl = Updater::<PIDFD_GET_INFO, RawPidfdInfo>::new(&mut raw);
        rustix::ioctl::ioctl(pidfd.as_fd(), ioctl)?;
    }

    Ok(PidfdInfo::from_raw(&raw))
}

impl PidfdInfo {
    fn from_raw(raw: &RawPidfdInfo) -> Self {
        let mask = PidfdInfoMask::from_bits_retain(raw.mask);
        let has = |bit| mask.contains(bit);

        PidfdInfo {
            mask,
            pid: has(PidfdInfoMask::PIDFD_INFO_PID).then_some(raw.pid),
            tgid: has(PidfdInfoMask::PIDFD_INFO_PID).then_some(raw.tgid),
            ppid: has(PidfdInfoMask::PIDFD_INFO_PID).then_some(raw.ppid),
            credentials: has(PidfdInfoMask::PIDFD_INFO_CREDS).then_some(Credentials {
                ruid: raw.ruid,
                rgid: raw.rgid,
                euid: raw.euid,
                egid: raw.egid,
            }),
            cgroup_id: has(PidfdInfoMask::PIDFD_INFO_CGROUPID).then_some(raw.cgroupid),
            exit_status: has(PidfdInfoMask::PIDFD_INFO_EXIT)
                .then(|| ExitStatus::from_raw(raw.exit_code)),
            coredump_mask: has(PidfdInfoMask::PIDFD_INFO_COREDUMP).then_some(raw.coredump_mask),
            supported_mask: has(PidfdInfoMask::PIDFD_INFO_SUPPORTED_MASK)
                .then(|| PidfdInfoMask::from_bits_retain(raw.supported_mask)),
        }
    }
}

/// Reads the exit status of a reaped task through its pidfd (Linux 6.15).
///
/// Returns `Ok(None)` while the task has not been reaped, and when the kernel
/// keeps no exit information.
///
/// ```
/// use pidwatch::sys::{exit_status, pidfd_open, waitid_reap_blocking, PidfdFlags};
///
/// let child = std::process::Command::new("sh").args(["-c", "exit 5"]).spawn()?;
/// let pidfd = pidfd_open(child.id(), PidfdFlags::empty())?;
/// waitid_reap_blocking(&pidfd)?;
/// // PIDFD_INFO_EXIT, Linux 6.15: any holder of the pidfd can read it.
/// if let Ok(Some(status)) = exit_status(&pidfd) {
///     assert_eq!(status.code(), Some(5));
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn exit_status(pidfd: impl AsFd) -> io::Result<Option<ExitStatus>> {
    match pidfd_get_info(pidfd, PidfdInfoMask::PIDFD_INFO_EXIT) {
        Ok(info) => Ok(info.exit_status),
        // Reaped on a kernel that cannot report the exit status.
        Err(err) if err.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Err(err) => Err(err),
    }
}
