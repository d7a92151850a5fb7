//! Seccomp sandboxes that make pidfd features fail the way older kernels and
//! container sandboxes do, so that every fallback can run on a new kernel.
//!
//! A [`Sandbox`] names which calls, flags and ioctls to deny and with which
//! error. [`Sandbox::filter`] compiles it to a classic BPF program before a
//! `fork`, and [`Filter::install`] loads it in the child with two system
//! calls, which is safe between `fork` and `exec` (for example in
//! [`std::os::unix::process::CommandExt::pre_exec`]). A filter survives
//! `execve` and is inherited by every child, so a whole `pidwatch` run
//! meets the older kernel's behaviour.
//!
//! The features that live inside the kernel and not at the system-call
//! boundary (`POLLHUP` after reap, pidfs inodes) cannot be taken away this
//! way, so the kernel matrix under QEMU covers them.
//!
//! # References
//!  - [`seccomp(2)`](https://man7.org/linux/man-pages/man2/seccomp.2.html)

use std::fmt;
use std::io;
use std::str::FromStr;

/// `AUDIT_ARCH_*` of the architecture this crate is built for: the filter
/// allows everything when a call comes in through another ABI.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xc000_00f3;
/// No filter is built for other architectures: [`Filter::install`] fails.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
const AUDIT_ARCH: u32 = 0;

/// `PIDFD_THREAD`, which is `O_EXCL`.
const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// `PIDFD_NONBLOCK`, which is `O_NONBLOCK`.
const PIDFD_NONBLOCK: u32 = libc::O_NONBLOCK as u32;

/// `P_PIDFD` for `waitid`.
const P_PIDFD: u32 = 3;

/// Type and number of `PIDFD_GET_INFO` (`_IOWR(0xFF, 11, ...)`). The size
/// field of the request grows with the structure, so the filter compares only
/// these low 16 bits.
const PIDFD_GET_INFO_TYPE_NR: u32 = 0xff0b;

/// Offsets into `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

/// Returns the offset of the low 32 bits of argument `index`.
const fn arg_low(index: u32) -> u32 {
    16 + 8 * index
}

/// A set of pidfd features to deny, each with its error.
///
/// ```
/// use pidwatch::sys::seccomp::Sandbox;
///
/// let sandbox: Sandbox = "no-thread-pidfd".parse()?;
/// assert!(sandbox.pidfd_thread);
/// assert!(Sandbox::none().is_empty());
/// # Ok::<(), pidwatch::sys::seccomp::ParseSandboxError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Sandbox {
    /// Fail `pidfd_open`, `pidfd_send_signal` and `pidfd_getfd` with this
    /// errno: `ENOSYS` for a kernel before 5.3 or a sandbox that hides the
    /// calls, `EPERM` or `EACCES` for sandboxes that refuse them.
    pub pidfd_calls: Option<i32>,
    /// Fail `pidfd_open` with `EINVAL` when it is given `PIDFD_THREAD`, as
    /// before Linux 6.9.
    pub pidfd_thread: bool,
    /// Fail `pidfd_open` with `EINVAL` when it is given `PIDFD_NONBLOCK`, as
    /// before Linux 5.10.
    pub pidfd_nonblock: bool,
    /// Fail `pidfd_send_signal` with `EINVAL` when it is given scope flags,
    /// as before Linux 6.9.
    pub signal_scope: bool,
    /// Fail `waitid(P_PIDFD)` with `EINVAL`, as on Linux 5.3.
    pub waitid_pidfd: bool,
    /// Fail the `PIDFD_GET_INFO` ioctl with `ENOTTY`, as before Linux 6.13.
    pub pidfd_get_info: bool,
}

impl Sandbox {
    /// The named sandboxes, in the order `pidwatch check --sandbox` lists
    /// them.
    ///
    /// ```
    /// use pidwatch::sys::seccomp::Sandbox;
    ///
    /// for name in Sandbox::NAMES {
    ///     assert!(name.parse::<Sandbox>().is_ok(), "{name}");
    /// }
    /// ```
    pub const NAMES: [&'static str; 6] = [
        "no-pidfd-info",
        "no-thread-pidfd",
        "linux-5.3",
        "no-pidfd:ENOSYS",
        "no-pidfd:EPERM",
        "no-pidfd:EACCES",
    ];

    /// Returns a sandbox that denies nothing.
    ///
    /// ```
    /// assert_eq!(pidwatch::sys::seccomp::Sandbox::none(), Default::default());
    /// ```
    pub const fn none() -> Self {
        Sandbox {
            pidfd_calls: None,
            pidfd_thread: false,
            pidfd_nonblock: false,
            signal_scope: false,
            waitid_pidfd: false,
            pidfd_get_info: false,
        }
    }

    /// Returns true when the sandbox denies nothing.
    ///
    /// ```
    /// let sandbox: pidwatch::sys::seccomp::Sandbox = "linux-5.3".parse()?;
    /// assert!(!sandbox.is_empty());
    /// # Ok::<(), pidwatch::sys::seccomp::ParseSandboxError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        *self == Sandbox::none()
    }

    /// Compiles the sandbox to a seccomp filter. Call it before `fork`: it
    /// allocates.
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    /// use pidwatch::sys::seccomp::Sandbox;
    ///
    /// let filter = "no-pidfd:ENOSYS".parse::<Sandbox>()?.filter();
    /// let mut command = std::process::Command::new("true");
    /// // SAFETY: install makes two system calls and allocates nothing, which is
    /// // allowed between fork and exec.
    /// unsafe { command.pre_exec(move || filter.install()) };
    /// assert!(command.status()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn filter(&self) -> Filter {
        let mut program = Program::default();

        // Calls through another ABI (x32, i386 on x86_64) use other numbers.
        program.load(OFFSET_ARCH);
        program.push(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            1,
            0,
            AUDIT_ARCH,
        );
        program.ret(libc::SECCOMP_RET_ALLOW);
        program.load(OFFSET_NR);

        if let Some(errno) = self.pidfd_calls {
            for nr in [
                libc::SYS_pidfd_open,
                libc::SYS_pidfd_send_signal,
                libc::SYS_pidfd_getfd,
            ] {
                program.deny_call(nr as u32, errno);
            }
        }

        let mut open_flags = 0;
        if self.pidfd_thread {
            open_flags |= PIDFD_THREAD;
        }
        if self.pidfd_nonblock {
            open_flags |= PIDFD_NONBLOCK;
        }
        if open_flags != 0 {
            program.deny_if_any_bit(libc::SYS_pidfd_open as u32, 1, open_flags, libc::EINVAL);
        }
        if self.signal_scope {
            program.deny_if_any_bit(
                libc::SYS_pidfd_send_signal as u32,
                3,
                u32::MAX,
                libc::EINVAL,
            );
        }
        if self.waitid_pidfd {
            program.deny_if_equal(libc::SYS_waitid as u32, 0, u32::MAX, P_PIDFD, libc::EINVAL);
        }
        if self.pidfd_get_info {
            program.deny_if_equal(
                libc::SYS_ioctl as u32,
                1,
                0xffff,
                PIDFD_GET_INFO_TYPE_NR,
                libc::ENOTTY,
            );
        }

        program.ret(libc::SECCOMP_RET_ALLOW);
        Filter {
            instructions: program.instructions,
        }
    }
}

impl fmt::Display for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(errno) = self.pidfd_calls {
            parts.push(format!(
                "pidfd calls fail with {}",
                super::errno_name(errno).unwrap_or("an error")
            ));
        }
        if self.pidfd_thread {
            parts.push("PIDFD_THREAD fails with EINVAL".to_owned());
        }
        if self.pidfd_nonblock {
            parts.push("PIDFD_NONBLOCK fails with EINVAL".to_owned());
        }
        if self.signal_scope {
            parts.push("signal scope flags fail with EINVAL".to_owned());
        }
        if self.waitid_pidfd {
            parts.push("waitid(P_PIDFD) fails with EINVAL".to_owned());
        }
        if self.pidfd_get_info {
            parts.push("PIDFD_GET_INFO fails with ENOTTY".to_owned());
        }
        if parts.is_empty() {
            f.write_str("nothing denied")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The error for a sandbox name that is not one of [`Sandbox::NAMES`].
///
/// ```
/// let err = "linux-4.19".parse::<pidwatch::sys::seccomp::Sandbox>().unwrap_err();
/// assert!(err.to_string().starts_with("unknown sandbox"));
/// ```
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("unknown sandbox {0:?}; use one of: {names}", names = Sandbox::NAMES.join(", "))]
pub struct ParseSandboxError(pub String);

impl FromStr for Sandbox {
    type Err = ParseSandboxError;

    /// Parses one of [`Sandbox::NAMES`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let none = Sandbox::none();
        let no_pidfd = |errno| Sandbox {
            pidfd_calls: Some(errno),
            ..none
        };
        Ok(match name {
            "no-pidfd-info" => Sandbox {
                pidfd_get_info: true,
                ..none
            },
            "no-thread-pidfd" => Sandbox {
                pidfd_thread: true,
                signal_scope: true,
                pidfd_get_info: true,
                ..none
            },
            "linux-5.3" => Sandbox {
                pidfd_thread: true,
                pidfd_nonblock: true,
                signal_scope: true,
                waitid_pidfd: true,
                pidfd_get_info: true,
                ..none
            },
            "no-pidfd" | "no-pidfd:ENOSYS" => no_pidfd(libc::ENOSYS),
            "no-pidfd:EPERM" => no_pidfd(libc::EPERM),
            "no-pidfd:EACCES" => no_pidfd(libc::EACCES),
            _ => return Err(ParseSandboxError(name.to_owned())),
        })
    }
}

/// A compiled seccomp filter, ready to install.
///
/// ```
/// let filter = pidwatch::sys::seccomp::Sandbox::none().filter();
/// println!("{filter:?}");
/// ```
#[derive(Clone, Debug)]
pub struct Filter {
    instructions: Vec<libc::sock_filter>,
}

impl Filter {
    /// Sets `PR_SET_NO_NEW_PRIVS` and installs the filter on the calling
    /// thread, with `seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog)`.
    ///
    /// Only two system calls, no allocation: safe to call between `fork` and
    /// `exec` in a multithreaded program. In a running multithreaded program
    /// it binds only the calling thread and the threads it creates later.
    /// Fails with `EOPNOTSUPP` on architectures other than x86-64, aarch64
    /// and riscv64, whose audit architecture the filter does not check.
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    ///
    /// let filter = "no-thread-pidfd".parse::<pidwatch::sys::seccomp::Sandbox>()?.filter();
    /// let mut command = std::process::Command::new("true");
    /// // SAFETY: install is async-signal-safe, as pre_exec requires.
    /// unsafe { command.pre_exec(move || filter.install()) };
    /// assert!(command.status()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn install(&self) -> io::Result<()> {
        if AUDIT_ARCH == 0 {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        let program = libc::sock_fprog {
            len: self.instructions.len() as u16,
            filter: self.instructions.as_ptr().cast_mut(),
        };

        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }

        // SAFETY: `program` points to `self.instructions`, which outlives the
        // call; the kernel copies the program before it returns.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &program as *const libc::sock_fprog,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// A classic BPF program under construction. Every check leaves the system
/// call number in the accumulator for the next one.
#[derive(Default)]
struct Program {
    instructions: Vec<libc::sock_filter>,
}

impl Program {
    fn push(&mut self, code: u32, jt: u8, jf: u8, k: u32) {
        self.instructions.push(libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        });
    }

    fn load(&mut self, offset: u32) {
        self.push(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, offset);
    }

    fn ret(&mut self, value: u32) {
        self.push(libc::BPF_RET | libc::BPF_K, 0, 0, value);
    }

    fn ret_errno(&mut self, errno: i32) {
        self.ret(libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA));
    }

    /// Jumps over the next `count` instructions unless the accumulator
    /// equals `value`.
    fn skip_unless_equal(&mut self, value: u32, count: u8) {
        self.push(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, count, value);
    }

    /// Fails system call `nr` with `errno`.
    fn deny_call(&mut self, nr: u32, errno: i32) {
        self.skip_unless_equal(nr, 1);
        self.ret_errno(errno);
    }

    /// Fails system call `nr` with `errno` when argument `arg` has any of
    /// `bits` set.
    fn deny_if_any_bit(&mut self, nr: u32, arg: u32, bits: u32, errno: i32) {
        self.skip_unless_equal(nr, 4);
        self.load(arg_low(arg));
        self.push(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 1, 0, bits);
        self.skip(1);
        self.ret_errno(errno);
        self.load(OFFSET_NR);
    }

    /// Fails system call `nr` with `errno` when argument `arg`, masked with
    /// `mask`, equals `value`.
    fn deny_if_equal(&mut self, nr: u32, arg: u32, mask: u32, value: u32, errno: i32) {
        self.skip_unless_equal(nr, 5);
        self.load(arg_low(arg));
        self.push(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, 0, 0, mask);
        self.skip_unless_equal(value, 1);
        self.ret_errno(errno);
        self.load(OFFSET_NR);
    }

    fn skip(&mut self, count: u32) {
        self.push(libc::BPF_JMP | libc::BPF_JA, 0, 0, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_denies_something() {
        for name in Sandbox::NAMES {
            let sandbox: Sandbox = name.parse().unwrap();
            assert!(!sandbox.is_empty(), "{name}");
            assert!(sandbox.filter().instructions.len() > 4, "{name}");
        }
        let err = "no-such".parse::<Sandbox>().unwrap_err();
        assert!(err.to_string().contains("no-pidfd:EPERM"), "{err}");
    }

    #[test]
    fn jumps_stay_inside_the_program() {
        let sandbox: Sandbox = "linux-5.3".parse().unwrap();
        let filter = sandbox.filter();
        let len = filter.instructions.len();
        for (at, insn) in filter.instructions.iter().enumerate() {
            let class = u32::from(insn.code) & 0x07;
            if class == libc::BPF_JMP {
                let far = if u32::from(insn.code) & 0xf0 == libc::BPF_JA {
                    insn.k as usize
                } else {
                    usize::from(insn.jt.max(insn.jf))
                };
                assert!(at + 1 + far < len, "jump at {at} leaves the program");
            }
        }
    }

    /// Installs each sandbox in a forked child and checks that the denied
    /// call fails with the chosen errno there, and still works here.
    #[test]
    fn denies_in_a_forked_child() {
        let cases: [(&str, i32); 3] = [
            ("no-pidfd:EPERM", libc::EPERM),
            ("no-pidfd:ENOSYS", libc::ENOSYS),
            ("no-thread-pidfd", libc::EINVAL),
        ];
        for (name, errno) in cases {
            let filter = name.parse::<Sandbox>().unwrap().filter();
            let thread = name == "no-thread-pidfd";
            let flags = if thread { PIDFD_THREAD } else { 0 };

            // SAFETY: the child only makes system calls and then _exit()s.
            let child = unsafe { libc::fork() };
            assert!(child >= 0, "fork failed");
            if child == 0 {
                let code = match filter.install() {
                    Err(_) => 100,
                    Ok(()) => {
                        // SAFETY: raw pidfd_open with integer arguments.
                        let fd =
                            unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), flags) };
                        if fd >= 0 {
                            101
                        } else {
                            io::Error::last_os_error().raw_os_error().unwrap_or(102)
                        }
                    }
                };
                // SAFETY: _exit is async-signal-safe.
                unsafe { libc::_exit(code) };
            }

            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer.
            assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
            assert!(libc::WIFEXITED(status));
            assert_eq!(libc::WEXITSTATUS(status), errno, "{name}");
        }
    }
}
