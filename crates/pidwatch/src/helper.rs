//! A scriptable test process for the conformance scenarios: it creates
//! threads, lets its thread-group leader exit early and execs from any
//! thread, one command at a time.
//!
//! The `pidwatch` binary runs it in a hidden mode (`pidwatch __helper`).
//! [`HelperProcess`] starts it as a child and drives it over its standard
//! input and output, one line per command and per reply, so every step is
//! synchronised through the pipe and no step depends on a sleep.
//!
//! Commands and replies:
//!
//! | command | effect | reply |
//! | --- | --- | --- |
//! | (start, or after an exec) | | `ready PID CONTROLLER_TID` |
//! | `spawn` | starts a parked thread | `thread TID` |
//! | `thread-exit TID` | that thread returns | `ok` once it has exited |
//! | `leader-exit` | the leader calls `SYS_exit` | `ok` once it is a zombie |
//! | `exec` | the controller thread execs the helper again | the new image's `ready` |
//! | `exec-from TID` | that thread execs the helper again | the new image's `ready` |
//! | `leader-exec` | the leader execs the helper again | the new image's `ready` |
//! | `exit CODE` | the process calls `exit_group(CODE)` | none |
//!
//! The controller thread, which reads the commands, is never the leader
//! when the process starts, so it is the thread that stays alive after a
//! premature leader exit.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::sys;

/// The hidden argument that selects helper mode in the `pidwatch` binary.
///
/// ```
/// let mut command = std::process::Command::new("target/debug/pidwatch");
/// command.arg(pidwatch::helper::HELPER_ARG);
/// ```
pub const HELPER_ARG: &str = "__helper";

/// How long the driver waits for one reply before it gives up on the
/// helper.
const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// An order to a thread that waits in the helper.
enum Order {
    Exit,
    Exec,
}

fn gettid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// The helper's own executable, resolved at start. `/proc/self/exe` cannot
/// be read once the thread-group leader has exited, because the zombie
/// leader no longer has an address space.
static EXE: OnceLock<CString> = OnceLock::new();

/// Runs helper mode. Never returns: the process ends through `exit` or the
/// signals the driver sends.
///
/// ```no_run
/// // At the start of the binary's main function:
/// if std::env::args().nth(1).as_deref() == Some(pidwatch::helper::HELPER_ARG) {
///     pidwatch::helper::run();
/// }
/// ```
pub fn run() -> ! {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let exe = CString::new(exe.as_os_str().as_bytes()).expect("a path has no NUL byte");
    EXE.get_or_init(|| exe);

    let (leader_orders, leader_inbox) = mpsc::channel::<Order>();

    let controller = thread::Builder::new()
        .name("controller".to_owned())
        .spawn(move || control(leader_orders));
    if let Err(err) = controller {
        eprintln!("pidwatch helper: cannot start the controller thread: {err}");
        std::process::exit(1);
    }

    // The leader waits for orders; its stack must stay alive for SYS_exit.
    wait_for_orders(&leader_inbox);
}

/// Waits for the one order a parked leader gets: exit or exec.
fn wait_for_orders(inbox: &mpsc::Receiver<Order>) -> ! {
    match inbox.recv() {
        Ok(Order::Exec) => exec_self(),
        Ok(Order::Exit) | Err(_) => exit_thread(),
    }
}

/// Ends the calling thread only, with `SYS_exit` (not `exit_group`).
fn exit_thread() -> ! {
    // SAFETY: SYS_exit ends only the calling thread. This thread holds no
    // lock, and nothing in the process refers to its stack afterwards.
    unsafe {
        libc::syscall(libc::SYS_exit, 0);
    }
    unreachable!("SYS_exit returned");
}

/// Replaces the process image with the helper again, from the calling
/// thread.
fn exec_self() -> ! {
    let program = EXE.get().expect("run() resolves the executable first");
    let arg0 = CString::new("pidwatch").expect("literal without NUL");
    let arg1 = CString::new(HELPER_ARG).expect("literal without NUL");
    let argv = [arg0.as_ptr(), arg1.as_ptr(), std::ptr::null()];

    // SAFETY: `program` and `argv` are NUL-terminated C strings that live
    // across the call, `argv` ends with NULL, and `environ` is the process's
    // own environment.
    unsafe {
        libc::execv(program.as_ptr(), argv.as_ptr());
    }
    eprintln!(
        "pidwatch helper: exec failed: {}",
        io::Error::last_os_error()
    );
    std::process::exit(127);
}

/// Reads commands from standard input and replies on standard output.
fn control(leader: mpsc::Sender<Order>) {
    let pid = std::process::id();
    let mut workers: HashMap<u32, (mpsc::Sender<Order>, thread::JoinHandle<()>)> = HashMap::new();
    reply(&format!("ready {pid} {}", gettid()));

    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or("");
        let argument = words.next().and_then(|word| word.parse::<u32>().ok());

        match (command, argument) {
            ("spawn", None) => {
                let (orders, inbox) = mpsc::channel();
                let (tid_sender, tid_receiver) = mpsc::channel();
                let handle = thread::spawn(move || {
                    let _ = tid_sender.send(gettid());
                    match inbox.recv() {
                        Ok(Order::Exec) => exec_self(),
                        Ok(Order::Exit) | Err(_) => {}
                    }
                });
                let tid = tid_receiver.recv().expect("the new thread sends its TID");
                workers.insert(tid, (orders, handle));
                reply(&format!("thread {tid}"));
            }
            ("thread-exit", Some(tid)) => match workers.remove(&tid) {
                Some((orders, handle)) => {
                    let _ = orders.send(Order::Exit);
                    let _ = handle.join();
                    reply("ok");
                }
                None => reply(&format!("error no thread {tid}")),
            },
            ("leader-exit", None) => {
                let _ = leader.send(Order::Exit);
                match wait_until_zombie(pid, pid) {
                    Ok(()) => reply("ok"),
                    Err(err) => reply(&format!("error the leader did not become a zombie: {err}")),
                }
            }
            ("exec", None) => exec_self(),
            ("exec-from", Some(tid)) => match workers.get(&tid) {
                Some((orders, _)) => {
                    let _ = orders.send(Order::Exec);
                    // This thread is killed by the exec; wait for that.
                    loop {
                        thread::park();
                    }
                }
                None => reply(&format!("error no thread {tid}")),
            },
            ("leader-exec", None) => {
                let _ = leader.send(Order::Exec);
                loop {
                    thread::park();
                }
            }
            ("exit", Some(code)) => std::process::exit(code as i32),
            _ => reply(&format!("error unknown command {line:?}")),
        }
    }

    // The driver closed the pipe: end the whole process.
    std::process::exit(0);
}

/// Waits until thread `tid` of process `pid` is a zombie or gone, checking
/// `/proc/PID/task/TID/stat`. Used only after an order that makes it exit.
fn wait_until_zombie(pid: u32, tid: u32) -> io::Result<()> {
    let deadline = Instant::now() + REPLY_TIMEOUT;
    loop {
        match sys::procfs::thread_stat(pid, tid)? {
            Some(stat) if !stat.is_dead() => {}
            _ => return Ok(()),
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("thread {tid} still runs after {REPLY_TIMEOUT:?}"),
            ));
        }
        thread::sleep(Duration::from_micros(200));
    }
}

fn reply(line: &str) {
    let mut stdout = io::stdout().lock();
    // A broken pipe means the driver is gone; the process ends when the
    // driver kills it or stdin closes.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// The `ready` line: the helper's PID and the TID of its controller thread.
///
/// ```no_run
/// # use std::path::Path;
/// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
/// assert_ne!(ready.pid, ready.controller);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub struct Ready {
    /// The PID of the helper process.
    pub pid: u32,
    /// The TID of the thread that reads commands (a non-leader at start).
    pub controller: u32,
}

/// A running helper process, driven from the parent.
///
/// Dropping it kills the helper with SIGKILL and reaps it, so a failed test
/// never leaks a process.
///
/// ```no_run
/// use std::path::Path;
/// use pidwatch::helper::HelperProcess;
///
/// let (mut helper, ready) = HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
/// let worker = helper.spawn_thread()?;
/// // The thread-group leader exits early; the controller thread lives on.
/// helper.request("leader-exit")?;
/// helper.request(&format!("thread-exit {worker}"))?;
/// helper.kill()?;
/// let status = helper.reap()?;
/// println!("helper {} ended with {status}", ready.pid);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct HelperProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// A process pidfd opened while the child could not yet be reaped, when
    /// the kernel (or the sandbox) allows one.
    pidfd: Option<std::os::fd::OwnedFd>,
    reaped: bool,
}

impl HelperProcess {
    /// Starts `program` (a `pidwatch` binary) in helper mode and waits for
    /// its `ready` line.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// use pidwatch::helper::HelperProcess;
    ///
    /// let (helper, ready) = HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// assert_eq!(helper.pid(), ready.pid);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(program: &Path) -> io::Result<(HelperProcess, Ready)> {
        let mut child = Command::new(program)
            .arg(HELPER_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let pidfd = match sys::pidfd_open(child.id(), sys::PidfdFlags::empty()) {
            Ok(pidfd) => Some(pidfd),
            Err(err) => {
                tracing::debug!(error = %err, "the helper is driven without a pidfd");
                None
            }
        };

        let mut helper = HelperProcess {
            child,
            stdin,
            stdout,
            pidfd,
            reaped: false,
        };
        let ready = helper.read_ready()?;
        Ok((helper, ready))
    }

    /// Returns the helper's PID.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// let target = pidwatch::Target::process(helper.pid());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the process pidfd of the helper, when the kernel gave one.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// if let Some(pidfd) = helper.pidfd() {
    ///     println!("{:?}", pidwatch::sys::readiness(pidfd)?);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|pidfd| pidfd.as_fd())
    }

    /// Sends one command line without waiting for a reply.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// // `exit` gets no reply.
    /// helper.send("exit 3")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send(&mut self, command: &str) -> io::Result<()> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()
    }

    /// Sends a command and returns its reply line.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// assert_eq!(helper.request("leader-exit")?, "ok");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn request(&mut self, command: &str) -> io::Result<String> {
        self.send(command)?;
        let line = self.read_line()?;
        if let Some(message) = line.strip_prefix("error ") {
            return Err(io::Error::other(format!(
                "helper rejected {command:?}: {message}"
            )));
        }
        Ok(line)
    }

    /// Starts a parked thread and returns its TID.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// let tid = helper.spawn_thread()?;
    /// helper.request(&format!("thread-exit {tid}"))?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_thread(&mut self) -> io::Result<u32> {
        let line = self.request("spawn")?;
        parse_reply(&line, "thread")
    }

    /// Sends a command that execs, and returns the new image's `ready`.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// let tid = helper.spawn_thread()?;
    /// let after = helper.exec(&format!("exec-from {tid}"))?;
    /// // The exec'ing thread takes over the leader's PID.
    /// assert_eq!(after.pid, ready.pid);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn exec(&mut self, command: &str) -> io::Result<Ready> {
        self.send(command)?;
        self.read_ready()
    }

    fn read_ready(&mut self) -> io::Result<Ready> {
        let line = self.read_line()?;
        let mut words = line.split_whitespace();
        let parsed = match (words.next(), words.next(), words.next()) {
            (Some("ready"), Some(pid), Some(controller)) => {
                pid.parse().ok().zip(controller.parse().ok())
            }
            _ => None,
        };
        let (pid, controller) =
            parsed.ok_or_else(|| io::Error::other(format!("unexpected helper line {line:?}")))?;
        Ok(Ready { pid, controller })
    }

    /// Reads one reply line, giving up after [`REPLY_TIMEOUT`].
    fn read_line(&mut self) -> io::Result<String> {
        if self.stdout.buffer().is_empty() {
            let fd = self.stdout.get_ref().as_fd();
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let timeout = sys::pidfd::to_timespec(REPLY_TIMEOUT);
            let ready = rustix::event::poll(&mut fds, Some(&timeout))?;
            if ready == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the helper did not answer within {REPLY_TIMEOUT:?}"),
                ));
            }
        }
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the helper closed its output",
            ));
        }
        Ok(line.trim_end().to_owned())
    }

    /// Sends SIGKILL to the whole thread group.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// helper.kill()?;
    /// helper.reap()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn kill(&self) -> io::Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// Sends `signal` to the whole thread group: through the pidfd where
    /// there is one, else with kill(2), which is as safe for an unreaped
    /// child, whose PID cannot be reused.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// helper.signal(libc::SIGTERM)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        match &self.pidfd {
            Some(pidfd) => sys::pidfd_send_signal(pidfd, signal, sys::SignalScope::Default),
            None => {
                let pid = self.pid() as libc::pid_t;
                // SAFETY: kill(2) takes integers; the PID is our unreaped child.
                if unsafe { libc::kill(pid, signal) } == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            }
        }
    }

    /// Waits up to `timeout` until the helper's thread group has exited,
    /// without reaping it. Returns whether it has.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// helper.send("exit 0")?;
    /// assert!(helper.wait_exited(std::time::Duration::from_secs(10))?);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_exited(&self, timeout: std::time::Duration) -> io::Result<bool> {
        if let Some(pidfd) = &self.pidfd {
            return Ok(sys::wait_readable(pidfd, Some(timeout))?.exited());
        }
        let deadline = std::time::Instant::now() + timeout;
        let pid = rustix::process::Pid::from_child(&self.child);
        loop {
            let options = rustix::process::WaitIdOptions::EXITED
                | rustix::process::WaitIdOptions::NOWAIT
                | rustix::process::WaitIdOptions::NOHANG;
            if rustix::process::waitid(rustix::process::WaitId::Pid(pid), options)?.is_some() {
                return Ok(true);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Reaps the helper, waiting for it to exit: through its pidfd where
    /// `waitid(P_PIDFD)` works, else by its PID.
    ///
    /// ```no_run
    /// # use std::path::Path;
    /// # let (mut helper, ready) = pidwatch::helper::HelperProcess::spawn(Path::new("target/debug/pidwatch"))?;
    /// helper.send("exit 7")?;
    /// assert_eq!(helper.reap()?.code(), Some(7));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reap(&mut self) -> io::Result<std::process::ExitStatus> {
        let status = match &self.pidfd {
            Some(pidfd) if sys::Features::get().has(sys::Feature::WaitidPidfd) => {
                sys::waitid_reap_blocking(pidfd)?
            }
            _ => self.child.wait()?,
        };
        self.reaped = true;
        Ok(status)
    }
}

fn parse_reply(line: &str, keyword: &str) -> io::Result<u32> {
    line.strip_prefix(keyword)
        .and_then(|rest| rest.trim().parse().ok())
        .ok_or_else(|| {
            io::Error::other(format!(
                "expected {keyword:?} from the helper, got {line:?}"
            ))
        })
}

impl Drop for HelperProcess {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if let Err(err) = self.kill() {
            tracing::warn!(pid = self.child.id(), error = %err, "could not kill the helper");
            // Try kill(2) as well, and leave a zombie rather than block in
            // wait on a helper that may never exit.
            if let Err(err) = self.child.kill() {
                tracing::warn!(pid = self.child.id(), error = %err, "could not kill the helper; leaving it unreaped");
                return;
            }
        }
        if let Err(err) = self.child.wait() {
            tracing::warn!(pid = self.child.id(), error = %err, "could not reap the helper");
        }
    }
}
