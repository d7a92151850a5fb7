//! The `pidwatch` binary. It also serves as the helper process of the
//! conformance scenarios, selected by a hidden first argument.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == pidwatch::helper::HELPER_ARG)
    {
        pidwatch::helper::run();
    }
    cli::main()
}
