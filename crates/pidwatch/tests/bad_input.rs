//! Bad and borderline targets given to `pidwatch wait`, through the real
//! binary: each case checks the exit code and the exact message.
//!
//! docs/guarantees.md lists every case with its message and code. A case
//! that needs something this machine lacks (root for namespaces, a visible
//! kthreadd) prints a `skipped:` line naming it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pidwatch::sys::{self, Feature, Features, PidfdFlags};

const PIDWATCH: &str = env!("CARGO_BIN_EXE_pidwatch");

/// How long a test waits for pidwatch to start watching.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn pidwatch() -> Command {
    Command::new(PIDWATCH)
}

fn run(args: &[&str]) -> Output {
    pidwatch().args(args).output().expect("run pidwatch")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts the exit code and the first line of standard error.
fn assert_rejected(output: &Output, code: i32, message: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {text}");
    assert_eq!(text.lines().next().unwrap_or(""), message, "stderr: {text}");
}

/// Returns the first line clap prints for a PID that does not parse.
fn parse_error(argument: &str, reason: &str) -> String {
    format!("error: invalid value '{argument}' for '[PID[:INODE]]...': invalid PID {argument:?}: {reason}")
}

fn thread_parse_error(argument: &str, reason: &str) -> String {
    format!("error: invalid value '{argument}' for '--thread <TID[:INODE]>...': invalid TID {argument:?}: {reason}")
}

const PID_EXAMPLE: &str = "give a PID such as 1234";
const PID_HINT: &str = "use PID or PID:INODE as `pidwatch id PID` prints it";
const TID_HINT: &str = "use TID or TID:INODE as `pidwatch id --thread TID` prints it";

/// Defines one test per argument that fails to parse as a PID.
macro_rules! rejects_pid {
    ($($name:ident: $argument:expr => $reason:expr;)*) => {$(
        #[test]
        fn $name() {
            let output = run(&["wait", $argument]);
            assert_rejected(&output, 1, &parse_error($argument, &$reason));
            assert!(stdout(&output).is_empty());
        }
    )*};
}

rejects_pid! {
    zero_pid: "0" => "0 is not a process; give a PID of 1 or more";
    negative_pid: "-1" => format!("expected a positive decimal number; {PID_EXAMPLE}");
    pid_two_to_the_31: "2147483648" => format!("it is larger than the maximum 4194304, so no task can have it; {PID_EXAMPLE}");
    pid_two_to_the_63: "9223372036854775808" => format!("it is larger than the maximum 4194304, so no task can have it; {PID_EXAMPLE}");
    pid_two_to_the_64: "18446744073709551616" => format!("it is larger than the maximum 4194304, so no task can have it; {PID_EXAMPLE}");
    pid_above_pid_max_limit: "4194305" => format!("it is larger than the maximum 4194304, so no task can have it; {PID_EXAMPLE}");
    empty_pid: "" => format!("it is empty; {PID_EXAMPLE}");
    non_numeric_pid: "abc" => format!("expected a positive decimal number; {PID_EXAMPLE}");
    pid_with_trailing_text: "12abc" => format!("expected a positive decimal number; {PID_EXAMPLE}");
    pid_with_plus_sign: "+5" => format!("expected a positive decimal number; {PID_EXAMPLE}");
    hexadecimal_pid: "0x10" => format!("expected a positive decimal number; {PID_EXAMPLE}");
    pid_with_space: " 12" => format!("expected a positive decimal number; {PID_EXAMPLE}");
    pid_colon_without_inode: "12:" => format!("the inode after ':' is missing; {PID_HINT}");
    inode_without_pid: ":12" => format!("the PID before ':' is missing; {PID_HINT}");
    inode_zero: "12:0" => format!("inode 0 names no task; {PID_HINT}");
    non_numeric_inode: "12:x" => format!("the inode after ':' must be a decimal number; {PID_HINT}");
    two_colons: "1:2:3" => format!("the inode after ':' must be a decimal number; {PID_HINT}");
    inode_above_64_bits: "1:18446744073709551616" => format!("the inode after ':' does not fit in 64 bits; {PID_HINT}");
    zero_pid_with_inode: "0:5" => "0 is not a process; give a PID of 1 or more";
}

#[test]
fn zero_tid() {
    let output = run(&["wait", "--thread", "0"]);
    assert_rejected(
        &output,
        1,
        &thread_parse_error("0", "0 is not a thread; give a TID of 1 or more"),
    );
}

#[test]
fn tid_inode_without_tid() {
    let output = run(&["wait", "--thread", ":5"]);
    let reason = format!("the TID before ':' is missing; {TID_HINT}");
    assert_rejected(&output, 1, &thread_parse_error(":5", &reason));
}

#[test]
fn no_target() {
    let output = run(&["wait"]);
    assert_rejected(
        &output,
        1,
        "pidwatch: no PID or TID given: name at least one, as in `pidwatch wait 1234` or `pidwatch wait --thread 4321`, or select processes with --pattern, --uid, --euid or --parent",
    );
}

/// Returns a PID that belongs to no process: a child that has been reaped.
/// Another process may take it again, so tests re-check it after use.
fn gone_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    child.id()
}

fn pid_is_free(pid: u32) -> bool {
    sys::pidfd_open(pid, PidfdFlags::PIDFD_THREAD).is_err()
}

fn not_found_message(what: &str, id: u32) -> String {
    format!(
        "pidwatch: no process or thread with {what} {id}: it has exited, or it never existed in this PID namespace; pass --exited to count it as exited"
    )
}

#[test]
fn gone_pid_without_exited() {
    let pid = gone_pid();
    let output = run(&["wait", &pid.to_string()]);
    if !pid_is_free(pid) {
        eprintln!("note: PID {pid} was reused during the test; result not checked");
        return;
    }
    assert_rejected(&output, 1, &not_found_message("PID", pid));
}

#[test]
fn gone_pid_with_exited() {
    let pid = gone_pid();
    let output = run(&["wait", "-e", "--json", "-t", "10", &pid.to_string()]);
    if !pid_is_free(pid) {
        eprintln!("note: PID {pid} was reused during the test; result not checked");
        return;
    }
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["kind"], "exited");
    assert_eq!(line["source"], "already_exited");
    assert_eq!(line["pid"], pid);
}

#[test]
fn gone_tid() {
    let (tid, stop, handle) = common::start_thread();
    stop.send(()).unwrap();
    handle.join().unwrap();
    // A joined thread may still be in do_exit for a moment.
    let deadline = Instant::now() + START_TIMEOUT;
    while !pid_is_free(tid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }

    let output = run(&["wait", "--thread", &tid.to_string()]);
    if !pid_is_free(tid) {
        eprintln!("note: TID {tid} was reused during the test; result not checked");
        return;
    }
    assert_rejected(&output, 1, &not_found_message("TID", tid));
}

#[test]
fn pid_above_pid_max() {
    // Valid as a number (at most PID_MAX_LIMIT) but above this system's
    // pid_max, so no task has it.
    let output = run(&["wait", "4194304"]);
    if !pid_is_free(4_194_304) {
        eprintln!("skipped: PID 4194304 exists on this machine");
        return;
    }
    assert_rejected(&output, 1, &not_found_message("PID", 4_194_304));
}

fn require_pidfs(test: &str) -> bool {
    if Features::get().has(Feature::PidfsInode) {
        return true;
    }
    eprintln!("skipped: {test}: pidfs inode identity (Linux 6.9) is missing");
    false
}

fn inode_of(pid: u32, flags: PidfdFlags) -> u64 {
    let pidfd = sys::pidfd_open(pid, flags).unwrap();
    sys::pidfd_inode(&pidfd).unwrap().unwrap()
}

/// A `sleep 60` child that is killed and reaped when dropped.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        Sleeper(Command::new("sleep").arg("60").spawn().unwrap())
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn wrong_inode_without_exited() {
    if !require_pidfs("wrong_inode_without_exited") {
        return;
    }
    let sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let inode = inode_of(pid, PidfdFlags::empty());
    let wrong = format!("{pid}:{}", inode + 1);

    let output = run(&["wait", "-t", "10", &wrong]);
    assert_rejected(
        &output,
        1,
        &format!("pidwatch: {wrong} has exited: {pid} now names another process or thread (inode {inode}); pass --exited to count it as exited"),
    );
}

#[test]
fn wrong_inode_with_exited() {
    if !require_pidfs("wrong_inode_with_exited") {
        return;
    }
    let sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let inode = inode_of(pid, PidfdFlags::empty());
    let wrong = format!("{pid}:{}", inode + 1);

    // The live process behind the number is never waited on: without the
    // timeout passing, pidwatch returns 0 at once.
    let output = run(&["wait", "-e", "--json", "-t", "10", &wrong]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["kind"], "exited");
    assert_eq!(line["source"], "already_exited");
    assert_eq!(line["pid"], pid);
    assert_eq!(line["inode"], inode + 1);
}

#[test]
fn wrong_inode_for_thread() {
    if !require_pidfs("wrong_inode_for_thread") {
        return;
    }
    let (tid, stop, handle) = common::start_thread();
    let inode = inode_of(tid, PidfdFlags::PIDFD_THREAD);
    let wrong = format!("{tid}:{}", inode + 1);

    let output = run(&["wait", "-t", "10", "--thread", &wrong]);
    stop.send(()).unwrap();
    handle.join().unwrap();
    assert_rejected(
        &output,
        1,
        &format!("pidwatch: {wrong} has exited: {tid} now names another process or thread (inode {inode}); pass --exited to count it as exited"),
    );
}

#[test]
fn tid_given_as_pid() {
    let (tid, stop, handle) = common::start_thread();
    let output = run(&["wait", "-t", "10", &tid.to_string()]);
    stop.send(()).unwrap();
    handle.join().unwrap();

    let pid = std::process::id();
    assert_rejected(
        &output,
        1,
        &format!("pidwatch: PID {tid} is not a process but a thread of process {pid}: wait for the thread with `--thread {tid}`, or for its whole process with PID {pid}"),
    );
}

/// Starts `command` with `PIDWATCH_LOG=debug` and returns once the
/// pidwatch process in it has logged that it watches its target(s).
// The lint misses that the caller waits for the returned child.
#[allow(clippy::zombie_processes)]
fn start_watching(mut command: Command) -> (Child, BufReader<ChildStderr>) {
    let mut child = command
        .env("PIDWATCH_LOG", "debug")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pidwatch");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + START_TIMEOUT;
    let mut log = String::new();
    loop {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).unwrap_or(0);
        log.push_str(&line);
        if line.contains("watching") {
            return (child, stderr);
        }
        if read == 0 || Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pidwatch did not start watching; its log:\n{log}");
        }
    }
}

fn read_rest(mut reader: impl Read) -> String {
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn pid_given_as_thread_waits_for_the_process() {
    if !Features::get().has(Feature::PidfdThread) {
        eprintln!("skipped: pid_given_as_thread: PIDFD_THREAD (Linux 6.9) is missing");
        return;
    }
    let mut sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let mut command = pidwatch();
    command.args(["wait", "--json", "-t", "20", "--thread", &pid.to_string()]);
    let (mut waiter, _log) = start_watching(command);

    sleeper.0.kill().unwrap();
    sleeper.0.wait().unwrap();
    let status = waiter.wait().unwrap();
    let text = read_rest(waiter.stdout.take().unwrap());
    assert_eq!(status.code(), Some(0), "{text}");
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "exited");
    assert_eq!(first["target"], "thread");
    assert_eq!(first["tid"], pid);
    assert_eq!(first["pid"], pid);
}

/// Returns true when PID 2 is kthreadd in this PID namespace.
fn kthreadd_visible(test: &str) -> bool {
    match sys::procfs::task_stat(2) {
        Ok(Some(stat)) if stat.comm == "kthreadd" && stat.is_kernel_thread() => true,
        _ => {
            eprintln!(
                "skipped: {test}: PID 2 is not kthreadd here (not the initial PID namespace)"
            );
            false
        }
    }
}

#[test]
fn kernel_thread_as_process() {
    if !kthreadd_visible("kernel_thread_as_process") {
        return;
    }
    let output = run(&["wait", "2"]);
    assert_rejected(
        &output,
        1,
        "pidwatch: PID 2 is the kernel thread \"kthreadd\", which never exits: name a user-space process",
    );
}

#[test]
fn kernel_thread_as_thread() {
    if !kthreadd_visible("kernel_thread_as_thread") {
        return;
    }
    let output = run(&["wait", "--thread", "2"]);
    assert_rejected(
        &output,
        1,
        "pidwatch: TID 2 is the kernel thread \"kthreadd\", which never exits: name a user-space thread",
    );
}

/// Runs `pidwatch ARGS... SELF` through `sh -c exec`, so that `$$` (the
/// shell's PID) is pidwatch's own PID.
fn run_on_itself(args: &str) -> (Output, u32) {
    let child = Command::new("sh")
        .args(["-c", &format!("exec \"$0\" wait -t 10 {args}"), PIDWATCH])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

#[test]
fn own_pid() {
    let (output, pid) = run_on_itself("$$");
    assert_rejected(
        &output,
        1,
        &format!("pidwatch: PID {pid} is pidwatch itself, which cannot wait for its own exit: name another process"),
    );
}

#[test]
fn own_tid() {
    let (output, pid) = run_on_itself("--thread $$");
    assert_rejected(
        &output,
        1,
        &format!("pidwatch: TID {pid} is a thread of pidwatch itself, which cannot wait for its own exit: name another thread"),
    );
}

#[test]
fn parent_pid_works() {
    // The shell starts pidwatch on itself ($$ is pidwatch's parent), waits
    // for a line on its standard input, and exits with 5.
    let mut command = Command::new("sh");
    command.args([
        "-c",
        "\"$0\" wait -v -t 20 $$ & read line; exit 5",
        PIDWATCH,
    ]);
    let (mut shell, _log) = start_watching(command);
    let shell_pid = shell.id();
    let inode = Features::get()
        .has(Feature::PidfsInode)
        .then(|| inode_of(shell_pid, PidfdFlags::empty()));

    let mut stdin = shell.stdin.take().unwrap();
    writeln!(stdin, "go").unwrap();
    assert_eq!(shell.wait().unwrap().code(), Some(5));
    let text = read_rest(shell.stdout.take().unwrap());

    let name = match inode {
        Some(inode) => format!("{shell_pid}:{inode}"),
        None => shell_pid.to_string(),
    };
    let status = if Features::get().has(Feature::PidfdInfoExit) {
        "exit code 5"
    } else {
        "status unknown"
    };
    // The command name is read just after the pidfd is opened, and the
    // shell may already be gone by then.
    let text = text.replacen(" (sh)", "", 1);
    let expected = format!("process {name} has exited: {status}, watched ");
    assert!(
        text.starts_with(&expected),
        "{text:?} does not start with {expected:?}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn unreaped_zombie_counts_as_exited() {
    // This test process is the parent of `true` and does not reap it until
    // pidwatch has run, so `true` stays a zombie meanwhile. (A shell parent
    // is no good here: it may reap background jobs before it execs.)
    let mut zombie_child = Command::new("true").spawn().unwrap();
    let zombie = zombie_child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let stat = sys::procfs::task_stat(zombie)
            .unwrap()
            .expect("zombie exists");
        if stat.state == 'Z' {
            break;
        }
        assert!(Instant::now() < deadline, "{zombie} never became a zombie");
        std::thread::sleep(Duration::from_millis(1));
    }

    let output = run(&["wait", "-t", "10", &zombie.to_string()]);
    let json = run(&["wait", "--json", "-t", "10", &zombie.to_string()]);
    zombie_child.wait().unwrap();

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line = format!("process {zombie}");
    assert!(stdout(&output).starts_with(&line), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("has exited"),
        "{}",
        stdout(&output)
    );
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let lines: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["kind"], "exited");
    assert_eq!(lines[0]["source"], "kernel");
    assert_eq!(lines[0]["pid"], zombie);
}

#[test]
fn pid_of_another_pid_namespace() {
    // Inside a new PID namespace, pidwatch is PID 1 and the PID of this
    // test process names nothing.
    let me = std::process::id();
    let mut command = Command::new("unshare");
    if !rustix::process::geteuid().is_root() {
        command.args(["--user", "--map-root-user"]);
    }
    let output = command
        .args(["--pid", "--fork", PIDWATCH, "wait", &me.to_string()])
        .output();
    let output = match output {
        Ok(output) if !stderr(&output).starts_with("unshare:") => output,
        Ok(output) => {
            eprintln!(
                "skipped: pid_of_another_pid_namespace: cannot create a PID namespace: {}",
                stderr(&output).trim()
            );
            return;
        }
        Err(err) => {
            eprintln!("skipped: pid_of_another_pid_namespace: cannot run unshare(1): {err}");
            return;
        }
    };
    assert_rejected(&output, 1, &not_found_message("PID", me));
}

#[test]
fn duplicate_pid_reported_once() {
    let mut sleeper = Sleeper::start();
    let pid = sleeper.pid().to_string();
    let mut command = pidwatch();
    command.args(["wait", "--json", "-t", "20", &pid, &pid, &pid]);
    let (mut waiter, _log) = start_watching(command);

    sleeper.0.kill().unwrap();
    sleeper.0.wait().unwrap();
    let status = waiter.wait().unwrap();
    let text = read_rest(waiter.stdout.take().unwrap());
    assert_eq!(status.code(), Some(0), "{text}");
    let exits = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|line| line["kind"] == "exited")
        .count();
    assert_eq!(exits, 1, "{text}");
}

#[test]
fn duplicate_pid_in_two_forms() {
    if !require_pidfs("duplicate_pid_in_two_forms") {
        return;
    }
    let sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let named = format!("{pid}:{}", inode_of(pid, PidfdFlags::empty()));

    let output = run(&["wait", "-t", "10", &pid.to_string(), &named]);
    assert_rejected(
        &output,
        1,
        &format!("pidwatch: PID {pid} is named twice, as {pid} and {named}: name each target once"),
    );
}

#[test]
fn duplicate_pid_with_two_inodes() {
    let sleeper = Sleeper::start();
    let pid = sleeper.pid();
    let first = format!("{pid}:7");
    let second = format!("{pid}:8");

    let output = run(&["wait", "-t", "10", &first, &second]);
    assert_rejected(
        &output,
        1,
        &format!(
            "pidwatch: PID {pid} is named twice, as {first} and {second}: name each target once"
        ),
    );
}

/// The unprivileged user the hidepid tests run pidwatch as.
const NOBODY: u32 = 65534;

/// Returns a command that runs pidwatch as `NOBODY` in a private mount
/// namespace whose `/proc` is mounted with `hidepid=2`, or `None` (after a
/// skip line) when this test process is not root.
fn hidepid_pidwatch(test: &str) -> Option<Command> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: {test}: mounting procfs with hidepid=2 needs root");
        return None;
    }
    let mut command = pidwatch();
    // SAFETY: the closure runs in the forked child before exec. It makes
    // only system calls (unshare, mount, setgroups, setgid, setuid), which
    // are async-signal-safe, with C string literals built at compile time.
    unsafe {
        command.pre_exec(|| {
            let check = |ret: libc::c_int| {
                if ret == -1 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                0,
                c"hidepid=2".as_ptr().cast(),
            ))?;
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(NOBODY))?;
            check(libc::setuid(NOBODY))?;
            Ok(())
        });
    }
    Some(command)
}

fn spawn_error_skips(test: &str, result: std::io::Result<Output>) -> Option<Output> {
    match result {
        Ok(output) => Some(output),
        Err(err) => {
            eprintln!(
                "skipped: {test}: cannot run pidwatch as uid {NOBODY} under hidepid=2: {err}"
            );
            None
        }
    }
}

#[test]
fn hidepid_waits_for_hidden_process() {
    let Some(mut command) = hidepid_pidwatch("hidepid_waits_for_hidden_process") else {
        return;
    };
    // The sleeper belongs to root, so uid 65534 cannot see it in /proc.
    let mut sleeper = Command::new("sleep").arg("0.5").spawn().unwrap();
    command.args(["wait", "-t", "20", &sleeper.id().to_string()]);
    let output = spawn_error_skips("hidepid_waits_for_hidden_process", command.output());
    sleeper.wait().unwrap();
    let Some(output) = output else { return };

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn hidepid_tid_given_as_pid() {
    if !Features::get().has(Feature::PidfdGetInfo) {
        eprintln!("skipped: hidepid_tid_given_as_pid: PIDFD_GET_INFO (Linux 6.13) is missing, and /proc cannot tell the thread group under hidepid");
        return;
    }
    let Some(mut command) = hidepid_pidwatch("hidepid_tid_given_as_pid") else {
        return;
    };
    let (tid, stop, handle) = common::start_thread();
    command.args(["wait", "-t", "10", &tid.to_string()]);
    let output = spawn_error_skips("hidepid_tid_given_as_pid", command.output());
    stop.send(()).unwrap();
    handle.join().unwrap();
    let Some(output) = output else { return };

    let pid = std::process::id();
    assert_rejected(
        &output,
        1,
        &format!("pidwatch: PID {tid} is not a process but a thread of process {pid}: wait for the thread with `--thread {tid}`, or for its whole process with PID {pid}"),
    );
}

#[test]
fn hidepid_kernel_thread_warns() {
    if !kthreadd_visible("hidepid_kernel_thread_warns") {
        return;
    }
    let Some(mut command) = hidepid_pidwatch("hidepid_kernel_thread_warns") else {
        return;
    };
    command.args(["wait", "-t", "0.2", "2"]);
    let Some(output) = spawn_error_skips("hidepid_kernel_thread_warns", command.output()) else {
        return;
    };

    // pidwatch cannot see that PID 2 is a kernel thread, so it warns and
    // waits until the timeout.
    assert_rejected(
        &output,
        3,
        "pidwatch: warning: /proc/2 is hidden (procfs mounted with hidepid), so pidwatch cannot tell whether PID 2 is a kernel thread, which would never exit",
    );
}
