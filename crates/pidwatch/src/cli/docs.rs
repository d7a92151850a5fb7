//! `pidwatch completions` and `pidwatch man`: shell completions and man
//! pages generated from the same clap definitions as `--help`, so they
//! always describe the binary that prints them.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::args::{Cli, CompletionsArgs, ManArgs};
use super::{Code, Failure};

pub fn completions(args: CompletionsArgs) -> Result<Code, Failure> {
    let mut command = Cli::command();
    let mut buffer = Vec::new();
    clap_complete::generate(args.shell, &mut command, "pidwatch", &mut buffer);
    write_stdout(&buffer)?;
    Ok(Code::Success)
}

pub fn man(args: ManArgs) -> Result<Code, Failure> {
    let command = Cli::command();
    match args.dir {
        None => {
            let mut buffer = Vec::new();
            render(command, &mut buffer).map_err(|err| {
                Failure::new(Code::Failure, format!("cannot render the man page: {err}"))
            })?;
            write_stdout(&buffer)?;
        }
        Some(dir) => write_pages(command, &dir)?,
    }
    Ok(Code::Success)
}

fn render(command: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(command).render(out)
}

/// Writes `pidwatch.1` and `pidwatch-SUBCOMMAND.1` for each visible
/// subcommand into `dir`, which must exist.
fn write_pages(mut command: clap::Command, dir: &Path) -> Result<(), Failure> {
    if !dir.is_dir() {
        return Err(Failure::new(
            Code::Failure,
            format!(
                "invalid --dir {}: not a directory; create it first, for example with `mkdir -p {}`",
                dir.display(),
                dir.display()
            ),
        ));
    }
    // Building sets each subcommand's display name (`pidwatch-wait`),
    // which names its page, and its usage line (`pidwatch wait`).
    command.build();
    let mut pages = vec![clap_mangen::Man::new(command.clone())];
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        pages.push(clap_mangen::Man::new(sub.clone()));
    }
    for page in pages {
        let path = dir.join(page.get_filename());
        let mut buffer = Vec::new();
        page.render(&mut buffer)
            .and_then(|()| std::fs::write(&path, &buffer))
            .map_err(|err| {
                Failure::new(
                    Code::Failure,
                    format!("cannot write {}: {err}", path.display()),
                )
            })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            Err(Failure::quiet(Code::Failure))
        }
        Err(err) => Err(Failure::new(
            Code::Failure,
            format!("cannot write to standard output: {err}"),
        )),
    }
}
