//! The command-line definition, from which help text is generated.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use pidwatch::sys::PidInode;

const AFTER_HELP: &str = "\
Examples:
  sleep 1 & pidwatch wait $!           wait for a process that is not a child
  pidwatch wait --json 1234 5678       one JSON line per exit, with status when known
  pidwatch wait -t 2.5 -c 1 1234 5678  wait until either exits, at most 2.5 s
  pidwatch wait --thread 4321          wait for one thread
  pidwatch id 1234                     print 1234:INODE, a name that survives PID reuse
  pidwatch check                       test this kernel's pidfd semantics

Exit status of `wait`: 0 the targets exited, 1 failure, 2 the kernel lacks
a needed feature, 3 timeout.";

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
    #[command(allow_negative_numbers = true)]
    Wait(WaitArgs),

    /// Run the conformance scenarios on this kernel and print the results.
    Check(CheckArgs),

    /// Print PID:INODE for each PID, a name no reused PID can take.
    Id(IdArgs),

    /// Explore the model of pidfd exit notification and print each rule's
    /// verdicts, with the shortest counterexample for each violation.
    Model(ModelArgs),
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Processes to wait for, as PID or PID:INODE (see `pidwatch id`).
    #[arg(value_name = "PID[:INODE]", value_parser = parse_process)]
    pub pids: Vec<PidInode>,

    /// Threads to wait for, as TID or TID:INODE. A thread-group leader's TID
    /// is its PID; it counts as exited only once its whole process is gone.
    #[arg(long = "thread", value_name = "TID[:INODE]", value_parser = parse_thread, num_args = 1..)]
    pub threads: Vec<PidInode>,

    /// Give up after this many seconds (fractions allowed) and exit with 3.
    #[arg(short, long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<std::time::Duration>,

    /// Count targets that have already exited (no such PID, or a PID:INODE
    /// whose PID was reused) as exited instead of failing.
    #[arg(short, long)]
    pub exited: bool,

    /// Return once this many targets have exited (default: all).
    #[arg(short, long, value_name = "N")]
    pub count: Option<usize>,

    /// Print a line for each target that exits, with its status when known.
    #[arg(short, long)]
    pub verbose: bool,

    /// Print one JSON object per event line (exited, reaped) on stdout.
    #[arg(long)]
    pub json: bool,
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
    #[arg(value_name = "PID", required = true)]
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

/// Parses a timeout in seconds, such as `2`, `0.5` or `1e-3`.
fn parse_seconds(input: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = input.parse().map_err(|_| {
        format!("invalid timeout {input:?}: expected a number of seconds such as 2 or 0.5")
    })?;
    std::time::Duration::try_from_secs_f64(seconds).map_err(|_| {
        format!("invalid timeout {input:?}: expected a non-negative number of seconds")
    })
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
