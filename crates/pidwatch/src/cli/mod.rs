//! The `pidwatch` command line: argument parsing, the subcommands, and the
//! one place where outcomes become exit codes.

pub mod args;
mod check;
mod docs;
mod id;
mod model;
mod output;
mod parse;
mod select;
mod signals;
mod targets;
mod validate;
mod wait;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// The exit codes. 0 to 3 are the ones of util-linux `waitpid`; 130 and
/// 143 follow the shell's 128 + signal convention.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum Code {
    /// Everything waited for happened (`check`: every scenario passed).
    Success,
    /// Bad input, a target that does not exist, or a failed call.
    Failure,
    /// The kernel lacks a feature the request needs.
    Unsupported,
    /// The timeout passed first.
    Timeout,
    /// SIGINT arrived during the wait.
    Interrupted,
    /// SIGTERM arrived during the wait.
    Terminated,
    /// `wait --exit-status`: the watched target's own status, mapped to
    /// 0 to 255 (128 + signal for a fatal signal, 255 when unknown).
    Target(u8),
}

impl Code {
    /// Returns the process exit status for this code.
    pub fn value(self) -> u8 {
        match self {
            Code::Success => 0,
            Code::Failure => 1,
            Code::Unsupported => 2,
            Code::Timeout => 3,
            Code::Interrupted => 128 + libc::SIGINT as u8,
            Code::Terminated => 128 + libc::SIGTERM as u8,
            Code::Target(status) => status,
        }
    }
}

/// An error that ends the program with a message and an exit code.
#[derive(Debug)]
pub struct Failure {
    code: Code,
    message: Option<String>,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: Some(message.into()),
        }
    }

    /// Creates a failure that prints nothing, such as a closed standard output.
    pub fn quiet(code: Code) -> Self {
        Failure {
            code,
            message: None,
        }
    }

    /// Maps a library error to its exit code.
    pub fn from_error(err: pidwatch::Error) -> Self {
        let code = match err {
            pidwatch::Error::Unsupported { .. } => Code::Unsupported,
            _ => Code::Failure,
        };
        Failure::new(code, err.to_string())
    }
}

/// Parses the arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    init_logging();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0. Usage errors exit
            // with 1, because 2 means "the kernel lacks a feature".
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };

    if matches!(cli.command, Command::Check(_) | Command::Model(_)) {
        // These print their report only after every helper process has been
        // reaped, so a reader that closes the pipe early (`| head`) may end
        // pidwatch with SIGPIPE, as it would end cat, instead of a panic.
        // SAFETY: SIG_DFL is a valid disposition, set before any thread runs.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.command {
        Command::Wait(args) => wait::run(args),
        Command::Check(args) => check::run(args),
        Command::Id(args) => id::run(args),
        Command::Model(args) => model::run(args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(failure) => {
            if let Some(message) = failure.message {
                // Nothing is left to report a failed write to.
                let _ = writeln!(std::io::stderr(), "pidwatch: {message}");
            }
            failure.code
        }
    };
    ExitCode::from(code.value())
}

/// Sends logs to stderr, filtered by `PIDWATCH_LOG` (for example `debug`),
/// warnings only by default.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIDWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
