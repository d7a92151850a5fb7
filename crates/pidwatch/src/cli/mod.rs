//! The `pidwatch` command line: argument parsing, the subcommands, and the
//! one place where outcomes become exit codes.

pub mod args;
mod check;
mod id;
mod model;
mod output;
mod validate;
mod wait;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// The exit codes, shared with util-linux `waitpid`.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum Code {
    /// Everything waited for happened (`check`: every scenario passed).
    Success = 0,
    /// Bad input, a target that does not exist, or a failed call.
    Failure = 1,
    /// The kernel lacks a feature the request needs.
    Unsupported = 2,
    /// The timeout passed first.
    Timeout = 3,
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

    let result = match cli.command {
        Command::Wait(args) => wait::run(args),
        Command::Check(args) => check::run(args),
        Command::Id(args) => id::run(args),
        Command::Model(args) => model::run(args),
    };
    let code = match result {
        Ok(code) => code,
        Err(failure) => {
            if let Some(message) = failure.message {
                eprintln!("pidwatch: {message}");
            }
            failure.code
        }
    };
    ExitCode::from(code as u8)
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
