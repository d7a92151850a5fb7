//! Kernel feature probe: each capability is tested by calling it once, and
//! the results are cached for the life of the process.
//!
//! Kernel version numbers are never parsed: distributions backport features,
//! and seccomp sandboxes block calls that the kernel has.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use serde::Serialize;

use super::identity::pidfd_inode;
use super::info::{pidfd_get_info, PidfdInfoMask};
use super::pidfd::{
    pidfd_open, pidfd_send_signal, readiness, waitid_reap_blocking, PidfdFlags, SignalScope,
};

/// One kernel capability that pidwatch uses.
///
/// ```
/// use pidwatch::sys::{Feature, Features};
///
/// for feature in Feature::ALL {
///     let state = if Features::get().has(feature) { "yes" } else { "no" };
///     println!("{} (Linux {}): {state}", feature.name(), feature.since());
/// }
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Feature {
    /// `pidfd_open(2)`.
    PidfdOpen,
    /// `PIDFD_NONBLOCK` for `pidfd_open`.
    PidfdNonblock,
    /// `pidfd_send_signal(2)`.
    PidfdSendSignal,
    /// `waitid(P_PIDFD, ...)`.
    WaitidPidfd,
    /// `PIDFD_THREAD`: pidfds for single threads.
    PidfdThread,
    /// `PIDFD_SIGNAL_THREAD`, `_THREAD_GROUP`, `_PROCESS_GROUP`.
    PidfdSignalScope,
    /// `POLLHUP` on a pidfd once its task is reaped.
    PollHupAfterReap,
    /// pidfs: pidfds with an inode number that identifies the process.
    PidfsInode,
    /// `PIDFD_GET_INFO` ioctl.
    PidfdGetInfo,
    /// `PIDFD_INFO_EXIT`: exit status after reap, to any pidfd holder.
    PidfdInfoExit,
    /// `PIDFD_INFO_SUPPORTED_MASK`.
    PidfdInfoSupportedMask,
}

impl Feature {
    /// Every feature, in the order the probe reports them.
    ///
    /// ```
    /// assert_eq!(pidwatch::sys::Feature::ALL.len(), pidwatch::sys::Features::get().probes().len());
    /// ```
    pub const ALL: [Feature; 11] = [
        Feature::PidfdOpen,
        Feature::PidfdNonblock,
        Feature::PidfdSendSignal,
        Feature::WaitidPidfd,
        Feature::PidfdThread,
        Feature::PidfdSignalScope,
        Feature::PollHupAfterReap,
        Feature::PidfsInode,
        Feature::PidfdGetInfo,
        Feature::PidfdInfoExit,
        Feature::PidfdInfoSupportedMask,
    ];

    /// Returns the kernel's own name for the feature.
    ///
    /// ```
    /// assert_eq!(pidwatch::sys::Feature::PidfdThread.name(), "PIDFD_THREAD");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Feature::PidfdOpen => "pidfd_open",
            Feature::PidfdNonblock => "PIDFD_NONBLOCK",
            Feature::PidfdSendSignal => "pidfd_send_signal",
            Feature::WaitidPidfd => "waitid(P_PIDFD)",
            Feature::PidfdThread => "PIDFD_THREAD",
            Feature::PidfdSignalScope => "PIDFD_SIGNAL_THREAD/_THREAD_GROUP/_PROCESS_GROUP",
            Feature::PollHupAfterReap => "POLLHUP after reap",
            Feature::PidfsInode => "pidfs inode identity (PID:INODE)",
            Feature::PidfdGetInfo => "PIDFD_GET_INFO",
            Feature::PidfdInfoExit => "PIDFD_INFO_EXIT",
            Feature::PidfdInfoSupportedMask => "PIDFD_INFO_SUPPORTED_MASK",
        }
    }

    /// Returns the mainline Linux release that introduced the feature.
    ///
    /// ```
    /// assert_eq!(pidwatch::sys::Feature::PidfdThread.since(), "6.9");
    /// ```
    pub fn since(self) -> &'static str {
        match self {
            Feature::PidfdSendSignal => "5.1",
            Feature::PidfdOpen => "5.3",
            Feature::WaitidPidfd => "5.4",
            Feature::PidfdNonblock => "5.10",
            Feature::PidfdThread
            | Feature::PidfdSignalScope
            | Feature::PollHupAfterReap
            | Feature::PidfsInode => "6.9",
            Feature::PidfdGetInfo => "6.13",
            Feature::PidfdInfoExit => "6.15",
            Feature::PidfdInfoSupportedMask => "6.19",
        }
    }
}

/// The result of probing one feature.
///
/// ```
/// for probe in pidwatch::sys::Features::get().probes() {
///     if let Some(reason) = &probe.reason {
///         println!("{} is missing: {reason}", probe.feature.name());
///     }
/// }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Serialize)]
pub struct Probe {
    /// The feature probed.
    pub feature: Feature,
    /// Whether the call worked as the feature needs.
    pub available: bool,
    /// Why it is missing: the error the probe saw, or what it observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The cached results of the feature probe.
///
/// ```
/// use pidwatch::sys::{Feature, Features};
///
/// // pidwatch itself needs no feature, so every kernel can run this.
/// let json = serde_json::to_string(Features::get())?;
/// assert!(json.contains("pidfd_open"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct Features {
    probes: Vec<Probe>,
}

static FEATURES: OnceLock<Features> = OnceLock::new();

static THREAD_GROUP_FIX: OnceLock<Result<bool, String>> = OnceLock::new();

impl Features {
    /// Returns the features of the running kernel, probing them on the first
    /// call.
    ///
    /// ```
    /// let has_pidfds = pidwatch::sys::Features::get().has(pidwatch::sys::Feature::PidfdOpen);
    /// println!("pidfd_open works: {has_pidfds}");
    /// ```
    pub fn get() -> &'static Features {
        FEATURES.get_or_init(|| {
            let features = Features::probe();
            for probe in &features.probes {
                tracing::debug!(
                    feature = probe.feature.name(),
                    available = probe.available,
                    reason = probe.reason.as_deref().unwrap_or(""),
                    "probed kernel feature"
                );
            }
            features
        })
    }

    /// Probes every feature now, without the cache.
    ///
    /// ```
    /// let fresh = pidwatch::sys::Features::probe();
    /// assert_eq!(fresh.probes().len(), pidwatch::sys::Feature::ALL.len());
    /// ```
    pub fn probe() -> Features {
        let mut probes = Vec::new();
        let mut record = |feature, result: Result<(), String>| {
            probes.push(Probe {
                feature,
                available: result.is_ok(),
                reason: result.err(),
            });
        };
        let me = std::process::id();

        // pidfd_open (5.3) on ourselves. Everything below needs it.
        let own = match pidfd_open(me, PidfdFlags::empty()) {
            Ok(fd) => {
                record(Feature::PidfdOpen, Ok(()));
                fd
            }
            Err(err) => {
                record(Feature::PidfdOpen, Err(describe(&err)));
                for feature in &Feature::ALL[1..] {
                    record(*feature, Err("needs pidfd_open".to_owned()));
                }
                return Features { probes };
            }
        };

        // PIDFD_NONBLOCK (5.10): EINVAL on 5.3 to 5.9.
        record(
            Feature::PidfdNonblock,
            pidfd_open(me, PidfdFlags::PIDFD_NONBLOCK)
                .map(drop)
                .map_err(|e| describe(&e)),
        );

        // pidfd_send_signal (5.1) with signal 0, which only checks.
        record(
            Feature::PidfdSendSignal,
            pidfd_send_signal(&own, 0, SignalScope::Default).map_err(|e| describe(&e)),
        );

        // PIDFD_THREAD (6.9) for the calling thread, which may be a
        // non-leader.
        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        record(
            Feature::PidfdThread,
            pidfd_open(tid, PidfdFlags::PIDFD_THREAD)
                .map(drop)
                .map_err(|e| describe(&e)),
        );

        // The pidfd_send_signal scope flags (6.9): EINVAL before.
        record(
            Feature::PidfdSignalScope,
            pidfd_send_signal(&own, 0, SignalScope::ThreadGroup).map_err(|e| describe(&e)),
        );

        // pidfs (6.9): the pidfd lives on a filesystem of its own.
        record(
            Feature::PidfsInode,
            match pidfd_inode(&own) {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("pidfds are anonymous inodes".to_owned()),
                Err(err) => Err(describe(&err)),
            },
        );

        // PIDFD_GET_INFO (6.13) on ourselves.
        record(
            Feature::PidfdGetInfo,
            pidfd_get_info(&own, PidfdInfoMask::empty())
                .map(drop)
                .map_err(|e| describe(&e)),
        );

        // PIDFD_INFO_SUPPORTED_MASK (after 6.18): the kernel sets the bit in the
        // returned mask when it fills the field.
        record(
            Feature::PidfdInfoSupportedMask,
            match pidfd_get_info(&own, PidfdInfoMask::PIDFD_INFO_SUPPORTED_MASK) {
                Ok(info) if info.supported_mask.is_some() => Ok(()),
                Ok(_) => Err("the kernel did not fill supported_mask".to_owned()),
                Err(err) => Err(describe(&err)),
            },
        );

        // The rest needs a child that has exited and been reaped.
        match probe_with_reaped_child() {
            Ok(results) => {
                record(Feature::WaitidPidfd, results.waitid);
                record(Feature::PollHupAfterReap, results.hangup);
                record(Feature::PidfdInfoExit, results.info_exit);
            }
            Err(err) => {
                let reason = format!("could not start a probe child: {}", describe(&err));
                record(Feature::WaitidPidfd, Err(reason.clone()));
                record(Feature::PollHupAfterReap, Err(reason.clone()));
                record(Feature::PidfdInfoExit, Err(reason));
            }
        }

        probes.sort_by_key(|probe| Feature::ALL.iter().position(|f| *f == probe.feature));
        Features { probes }
    }

    /// Returns whether `feature` is available.
    ///
    /// ```
    /// use pidwatch::sys::{Feature, Features};
    ///
    /// if !Features::get().has(Feature::PidfdInfoExit) {
    ///     println!("exit statuses of non-children are unknown before Linux 6.15");
    /// }
    /// ```
    pub fn has(&self, feature: Feature) -> bool {
        self.probes
            .iter()
            .any(|probe| probe.feature == feature && probe.available)
    }

    /// Returns every probe result, in [`Feature::ALL`] order.
    ///
    /// ```
    /// let available = pidwatch::sys::Features::get().probes().iter().filter(|probe| probe.available).count();
    /// println!("{available} features available");
    /// ```
    pub fn probes(&self) -> &[Probe] {
        &self.probes
    }

    /// Returns whether the kernel has the thread-group fix of Linux 6.15
    /// (backported to 6.12.31): a `PIDFD_THREAD` pidfd of a thread-group
    /// leader reports the leader's exit only once the whole group has
    /// exited. `Err` gives the reason it is unknown (no `PIDFD_THREAD`, or the probe
    /// could not run).
    ///
    /// The answer comes from a behavioural probe, since the fix changed no
    /// interface: a forked child starts a thread and its leader exits, and
    /// the probe polls the leader's `PIDFD_THREAD` pidfd. It costs a fork
    /// and a few milliseconds, so it runs on the first call only, which the
    /// watcher makes when a thread-group leader is first watched as a
    /// thread.
    ///
    /// ```
    /// match pidwatch::sys::Features::get().thread_group_fix() {
    ///     Ok(true) => println!("Linux 6.15 leader semantics"),
    ///     Ok(false) => println!("legacy leader semantics (Linux 6.9 to 6.14)"),
    ///     Err(reason) => println!("unknown: {reason}"),
    /// }
    /// ```
    pub fn thread_group_fix(&self) -> Result<bool, String> {
        THREAD_GROUP_FIX
            .get_or_init(|| {
                if !self.has(Feature::PidfdThread) {
                    return Err("the kernel lacks PIDFD_THREAD".to_owned());
                }
                let result = probe_thread_group_fix().map_err(|err| describe(&err));
                tracing::debug!(?result, "probed the thread-group fix");
                result
            })
            .clone()
    }
}

/// Stack size of the probe child's second thread, which only blocks.
const PROBE_STACK: usize = 64 * 1024;

/// Forks a child whose thread-group leader exits while a second thread
/// blocks, and returns whether the leader's `PIDFD_THREAD` pidfd stays quiet
/// (the fix) rather than reporting the premature exit (the legacy rule).
fn probe_thread_group_fix() -> io::Result<bool> {
    // Allocated before the fork: the child must not allocate.
    let mut stack = vec![0u8; PROBE_STACK];
    let stack_top = stack.as_mut_ptr().wrapping_add(PROBE_STACK) as usize & !15;

    extern "C" fn block_forever(_: *mut libc::c_void) -> libc::c_int {
        loop {
            // SAFETY: ppoll with no descriptors and no timeout only blocks.
            unsafe {
                libc::syscall(
                    libc::SYS_ppoll,
                    std::ptr::null::<libc::pollfd>(),
                    0,
                    std::ptr::null::<libc::timespec>(),
                    std::ptr::null::<libc::sigset_t>(),
                )
            };
        }
    }

    // SAFETY: the child makes only raw system calls (clone, exit) and never
    // returns into Rust code, so forking a multithreaded process is sound.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let flags = libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM;
        // SAFETY: `stack_top` is the 16-byte aligned end of a live buffer
        // that the new thread owns; the thread runs `block_forever` only.
        // SYS_exit ends only the calling thread, the leader.
        unsafe {
            libc::clone(
                block_forever,
                stack_top as *mut libc::c_void,
                flags,
                std::ptr::null_mut(),
            );
            libc::syscall(libc::SYS_exit, 0);
            libc::_exit(0);
        }
    }

    let child = rustix::process::Pid::from_raw(pid).expect("fork returned a positive PID");
    let result = observe_leader_exit(pid as u32);

    // The child is ours: kill and reap it whatever the probe saw.
    let _ = rustix::process::kill_process(child, rustix::process::Signal::KILL);
    let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
    drop(stack);
    result
}

/// Waits until the leader of `pid` is a zombie beside a live thread, then
/// polls its `PIDFD_THREAD` pidfd.
fn observe_leader_exit(pid: u32) -> io::Result<bool> {
    let leader = pidfd_open(pid, PidfdFlags::PIDFD_THREAD)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stat = super::procfs::task_stat(pid)?;
        let threads = super::procfs::threads(pid)?;
        if stat.as_ref().is_some_and(|s| s.is_dead()) && threads.len() == 2 {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the probe child's leader did not exit beside its thread within 5 s",
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(!readiness(&leader)?.readable)
}

struct ReapedChildProbes {
    waitid: Result<(), String>,
    hangup: Result<(), String>,
    info_exit: Result<(), String>,
}

/// Forks a child that exits with status 7 at once, reaps it through its
/// pidfd, and checks what the pidfd reports afterwards.
fn probe_with_reaped_child() -> io::Result<ReapedChildProbes> {
    let (child, pidfd) = fork_exiting_child(7)?;

    // waitid(P_PIDFD) (5.4); fall back to waitpid so the child never stays a
    // zombie.
    let waitid = match waitid_reap_blocking(&pidfd) {
        Ok(status) if status.code() == Some(7) => Ok(()),
        Ok(status) => Err(format!("reaped the probe child with unexpected {status}")),
        Err(err) => {
            let reason = describe(&err);
            let _ = rustix::process::waitpid(Some(child), rustix::process::WaitOptions::empty());
            Err(reason)
        }
    };

    let hangup = match readiness(&pidfd) {
        Ok(r) if r.hangup => Ok(()),
        Ok(r) => Err(format!("a reaped child's pidfd polls as {r}")),
        Err(err) => Err(describe(&err)),
    };

    let info_exit = match pidfd_get_info(&pidfd, PidfdInfoMask::PIDFD_INFO_EXIT) {
        Ok(info) => match info.exit_status {
            Some(status) if status.code() == Some(7) => Ok(()),
            Some(status) => Err(format!("reported {status} instead of exit status 7")),
            None => Err("no exit status after reap".to_owned()),
        },
        Err(err) => Err(describe(&err)),
    };

    Ok(ReapedChildProbes {
        waitid,
        hangup,
        info_exit,
    })
}

/// Forks a child that calls `_exit(code)` immediately, and opens a pidfd
/// for it before it can be reaped.
fn fork_exiting_child(code: i32) -> io::Result<(rustix::process::Pid, OwnedFd)> {
    // SAFETY: the child calls only `_exit`, which is async-signal-safe, so
    // forking a multi-threaded process is sound here.
    let pid = unsafe { libc::fork() };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: `_exit` does not return and touches no state of the parent.
        unsafe { libc::_exit(code) };
    }

    // The child cannot be reaped before we do it, so its PID is still ours.
    let pidfd = pidfd_open(pid as u32, PidfdFlags::empty())?;
    let pid = rustix::process::Pid::from_raw(pid)
        .ok_or_else(|| io::Error::other(format!("fork returned the invalid PID {pid}")))?;
    Ok((pid, pidfd))
}

fn describe(err: &io::Error) -> String {
    match err.raw_os_error().and_then(super::errno_name) {
        Some(name) => format!("{name}: {err}"),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_covers_every_feature() {
        let features = Features::probe();
        let probed: Vec<Feature> = features.probes().iter().map(|p| p.feature).collect();
        assert_eq!(probed, Feature::ALL.to_vec());
    }

    #[test]
    fn missing_features_give_a_reason() {
        for probe in Features::probe().probes() {
            assert_eq!(
                probe.available,
                probe.reason.is_none(),
                "{:?} has available={} reason={:?}",
                probe.feature,
                probe.available,
                probe.reason
            );
        }
    }

    #[test]
    fn thread_group_fix_probe_answers() {
        let features = Features::get();
        match features.thread_group_fix() {
            Ok(fixed) => eprintln!("thread-group fix: {fixed}"),
            Err(reason) => {
                assert!(!features.has(Feature::PidfdThread), "{reason}");
                eprintln!("skipped: the thread-group fix needs PIDFD_THREAD ({reason})");
            }
        }
    }

    #[test]
    fn cache_matches_fresh_probe() {
        let fresh = Features::probe();
        for feature in Feature::ALL {
            assert_eq!(
                Features::get().has(feature),
                fresh.has(feature),
                "{feature:?}"
            );
        }
    }
}
