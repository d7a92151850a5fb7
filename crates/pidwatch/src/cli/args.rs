//! The command-line definition, from which help text is generated.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};

use pidwatch::sys::PidInode;

use super::parse::{parse_kill_after, parse_signal, parse_timeout, parse_user};

const AFTER_HELP: &str = "\
Examples:
  sleep 1 & pidwatch wait $!            wait for a process that is not a child
  pidwatch wait -p nginx -x             wait for every process named exactly nginx
  pidwatch wait -t 30s -s TERM -k 5s 1234
                                        at most 30 s, then SIGTERM, then SIGKILL 5 s later
  pidwatch wait --json 1234 5678        one JSON line per event, with status when known
  pidwatch wait --threads 4321          each thread's exit, then the process's
  pidwatch id 1234                      print 1234:INODE, a name that survives PID reuse
  pidwatch check                        test this kernel's pidfd semantics
  pidwatch completions bash > pidwatch.bash
  pidwatch man --dir /usr/local/share/man/man1

Exit status of `wait`: 0 the targets exited, 1 failure, 2 the kernel lacks
a needed feature, 3 timeout, 130 SIGINT, 143 SIGTERM; with --exit-status,
the target's own status (255 when unknown).";

const WAIT_AFTER_HELP: &str = "\
Examples:
  sleep 1 & pidwatch wait $!            wait for a process that is not a child
  pidwatch wait -p nginx -x             every process named exactly nginx
  pidwatch wait -f -p 'python3 .*serve' every process whose command line matches
  pidwatch wait -n -u www-data          the newest process of user www-data
  pidwatch wait -P 1234                 every child of process 1234
  pidwatch wait -t 2.5 -c 1 1234 5678   until either exits, at most 2.5 s
  pidwatch wait -t 1m -s TERM -k 10s 1234
                                        SIGTERM after a minute, SIGKILL 10 s later
  pidwatch wait --exit-status 1234; echo $?
                                        exit with the status of process 1234
  pidwatch wait --json 1234             one JSON line per event (docs/json.md)

Durations are seconds, or a number with a unit: 500ms, 2s, 1m, 1h, 1d.

Exit status: 0 the targets (or --count of them) exited, 1 failure (bad
input, a target or pattern that matches nothing, a closed standard output),
2 the kernel lacks a needed feature, 3 timeout (also after --signal and
--kill-after), 130 interrupted by SIGINT, 143 ended by SIGTERM. With
--exit-status, a target's exit code N gives N and a fatal signal S gives
128+S; when the kernel does not provide the status, 255.";

/// Watch processes and threads exit through pidfds, exactly once.
#[derive(Debug, Parser)]
#[command(name = "pidwatch", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Wait for processes or threads to exit (any process, not only children).
    #[command(allow_negative_numbers = true, after_help = WAIT_AFTER_HELP)]
    Wait(WaitArgs),

    /// Run the conformance scenarios on this kernel and print the results.
    Check(CheckArgs),

    /// Print PID:INODE for each PID, a name no reused PID can take.
    Id(IdArgs),

    /// Explore the model of pidfd exit notification and print each rule's
    /// verdicts, with the shortest counterexample for each violation.
    Model(ModelArgs),

    /// Print the shell completion script for SHELL on stdout.
    Completions(CompletionsArgs),

    /// Print the man page (roff) on stdout, or write one page per command
    /// into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
#[command(group = ArgGroup::new("selector").multiple(true).args(["pattern", "uid", "euid", "parent"]))]
pub struct WaitArgs {
    /// Processes to wait for, as PID or PID:INODE (see `pidwatch id`).
    #[arg(value_name = "PID[:INODE]", value_parser = parse_process)]
    pub pids: Vec<PidInode>,

    /// Threads to wait for, as TID or TID:INODE. A thread-group leader's TID
    /// is its PID; it counts as exited only once its whole process is gone.
    #[arg(long = "thread", value_name = "TID[:INODE]", value_parser = parse_thread, num_args = 1..)]
    pub threads: Vec<PidInode>,

    /// Wait for every thread of this process, each reported as it exits,
    /// then for the process itself. Threads started later are not watched.
    #[arg(long = "threads", value_name = "PID[:INODE]", value_parser = parse_process)]
    pub all_threads: Vec<PidInode>,

    /// Select the processes whose name (as in `ps -o comm`, at most 15
    /// bytes) matches this regular expression, as pgrep does.
    #[arg(short, long, value_name = "REGEX", help_heading = "Selection")]
    pub pattern: Option<String>,

    /// Require the pattern to match the whole name (or command line).
    #[arg(short = 'x', long, requires = "pattern", help_heading = "Selection")]
    pub exact: bool,

    /// Match the pattern against the whole command line, arguments
    /// separated by spaces, instead of the name.
    #[arg(short, long, requires = "pattern", help_heading = "Selection")]
    pub full: bool,

    /// Select processes whose real user is one of these (names or UIDs,
    /// comma-separated).
    #[arg(short = 'U', long, value_name = "USER", value_delimiter = ',', value_parser = parse_user, help_heading = "Selection")]
    pub uid: Vec<u32>,

    /// Select processes whose effective user is one of these (names or
    /// UIDs, comma-separated).
    #[arg(short = 'u', long, value_name = "USER", value_delimiter = ',', value_parser = parse_user, help_heading = "Selection")]
    pub euid: Vec<u32>,

    /// Select processes whose parent is one of these PIDs (comma-separated).
    #[arg(short = 'P', long, value_name = "PPID", value_delimiter = ',', value_parser = parse_pid, help_heading = "Selection")]
    pub parent: Vec<u32>,

    /// Keep only the most recently started of the selected processes.
    #[arg(
        short,
        long,
        requires = "selector",
        conflicts_with = "oldest",
        help_heading = "Selection"
    )]
    pub newest: bool,

    /// Keep only the least recently started of the selected processes.
    #[arg(short, long, requires = "selector", help_heading = "Selection")]
    pub oldest: bool,

    /// Give up after this long and exit with 3 (seconds, or a number with
    /// a unit: 500ms, 2s, 1m, 1h, 1d).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_timeout, help_heading = "Timeout")]
    pub timeout: Option<Duration>,

    /// On timeout, send this signal (TERM, SIGINT, 9, ...) to every target
    /// that has not exited, through its pidfd, and wait for them to exit.
    #[arg(short, long, value_name = "SIGNAL", requires = "timeout", value_parser = parse_signal, help_heading = "Timeout")]
    pub signal: Option<i32>,

    /// After the timeout signal, wait this long, then send SIGKILL to the
    /// targets still running. Without --signal, the first signal is TERM.
    #[arg(short, long, value_name = "DURATION", requires = "timeout", value_parser = parse_kill_after, help_heading = "Timeout")]
    pub kill_after: Option<Duration>,

    /// Count targets that have already exited (no such PID, or a PID:INODE
    /// whose PID was reused) as exited instead of failing.
    #[arg(short, long)]
    pub exited: bool,

    /// Return once this many targets have exited (default: all).
    #[arg(short, long, value_name = "N")]
    pub count: Option<usize>,

    /// Exit with the status of the one watched target: its exit code, or
    /// 128 + the signal that killed it (255 when the status is unknown).
    #[arg(long)]
    pub exit_status: bool,

    /// Also print the pidfs inode of each target and how each exit was
    /// observed (kernel, verified or polled).
    #[arg(short, long, help_heading = "Output")]
    pub verbose: bool,

    /// Print nothing: no exit lines, no messages about timeouts or
    /// signals, no progress line. Errors are still printed.
    #[arg(short, long, conflicts_with_all = ["verbose", "json"], help_heading = "Output")]
    pub quiet: bool,

    /// Print one JSON object per event line (exited, reaped, signal_sent)
    /// on stdout; docs/json.md describes the fields.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate the completion script for.
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write pidwatch.1 and one page per command (pidwatch-wait.1, ...)
    /// into this directory instead of printing pidwatch.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print one JSON document with `features` and `scenarios`.
    #[arg(long)]
    pub json: bool,

    /// Run only the scenarios whose name contains this text.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,

    /// How long a pidfd must stay quiet where no exit may be reported, in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub quiet_window: u64,

    /// Print every check of every scenario.
    #[arg(short, long)]
    pub verbose: bool,

    /// Run pidwatch's side as if the kernel were in REGIME: no-pidfd,
    /// no-thread-pidfd, legacy-thread-pidfd or fixed (only older than the
    /// kernel's own).
    #[arg(long, value_name = "REGIME")]
    pub regime: Option<pidwatch::watch::Regime>,

    /// Run the whole check under a seccomp filter that makes pidfd calls
    /// fail as on older kernels or in sandboxes: no-pidfd-info,
    /// no-thread-pidfd, linux-5.3, no-pidfd:ENOSYS, no-pidfd:EPERM or
    /// no-pidfd:EACCES.
    #[arg(long, value_name = "NAME")]
    pub sandbox: Option<pidwatch::sys::seccomp::Sandbox>,

    /// The binary that provides the helper process (default: this one).
    #[arg(long, value_name = "PATH", hide = true)]
    pub helper: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// Processes to name.
    #[arg(value_name = "PID", required = true, value_parser = parse_pid, allow_hyphen_values = true)]
    pub pids: Vec<u32>,

    /// Treat the numbers as TIDs and print TID:INODE for each thread.
    #[arg(long)]
    pub thread: bool,
}

fn parse_process(input: &str) -> Result<PidInode, String> {
    PidInode::parse(input, "PID").map_err(|err| err.to_string())
}

fn parse_thread(input: &str) -> Result<PidInode, String> {
    PidInode::parse(input, "TID").map_err(|err| err.to_string())
}

fn parse_pid(input: &str) -> Result<u32, String> {
    pidwatch::sys::parse_pid(input, "PID").map_err(|err| err.to_string())
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Explore only this rule: no-thread-pidfd, legacy or fixed (default: all).
    #[arg(long, value_name = "RULE")]
    pub rule: Option<pidwatch_model::Rule>,

    /// The maximum number of tasks (threads) in the thread group.
    #[arg(long, value_name = "N", default_value_t = pidwatch_model::Bounds::default().max_tasks)]
    pub max_tasks: usize,

    /// The maximum number of pidfds the watcher opens.
    #[arg(long, value_name = "N", default_value_t = pidwatch_model::Bounds::default().max_pidfds)]
    pub max_pidfds: usize,

    /// The maximum number of steps in one interleaving.
    #[arg(long, value_name = "N", default_value_t = pidwatch_model::Bounds::default().max_steps)]
    pub max_steps: usize,

    /// Print one JSON document (an array with one exploration per rule).
    #[arg(long)]
    pub json: bool,
}
