//! The progress line of `pidwatch wait`: drawn and cleared on a terminal,
//! never written to a pipe. The terminal is a real pseudo-terminal.

mod cli_support;

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Stdio};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};

use cli_support::*;

/// `\r` and the ANSI "erase to end of line" sequence that clears it.
const CLEAR_LINE: &str = "\r\x1b[K";

/// Opens a pseudo-terminal pair and returns the master and the terminal
/// device.
fn open_pty() -> (OwnedFd, File) {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .expect("posix_openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(name.to_str().unwrap())
        .expect("open the terminal device");
    (master, terminal)
}

/// Runs `pidwatch wait` on the given sleepers with stderr on `stderr`,
/// reaps the sleepers, and returns pidwatch's exit code.
fn run_wait(sleepers: &mut [Child], stderr: Stdio) -> Option<i32> {
    let mut args = vec!["wait".to_owned(), "-t".to_owned(), "20".to_owned()];
    args.extend(sleepers.iter().map(|child| child.id().to_string()));
    let mut waiter = pidwatch_process()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let pids: Vec<u32> = sleepers.iter().map(Child::id).collect();
    wait_until_watching(waiter.id(), &pids);
    for sleeper in sleepers {
        sleeper.wait().unwrap();
    }
    waiter.wait().unwrap().code()
}

/// Runs `pidwatch wait` with stderr on a pseudo-terminal and returns what
/// the terminal received.
fn terminal_output(sleepers: &mut [Child]) -> String {
    let (master, terminal) = open_pty();
    let code = run_wait(sleepers, Stdio::from(terminal));

    // Every copy of the terminal device is closed now, so reading the master
    // ends with EIO once the buffered output has been read.
    let mut master = File::from(master);
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match master.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(err) if err.raw_os_error() == Some(libc::EIO) => break,
            Err(err) => panic!("reading the pseudo-terminal: {err}"),
        }
    }
    assert_eq!(code, Some(0));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn progress_drawn_and_cleared_on_terminal() {
    let mut sleepers = vec![spawn_sleep("0.2"), spawn_sleep("0.4")];
    let text = terminal_output(&mut sleepers);

    assert!(text.contains("pidwatch: 0/2 exited"), "{text:?}");
    assert!(text.contains("pidwatch: 1/2 exited"), "{text:?}");
    let last_progress = text.rfind("exited").unwrap();
    let last_clear = text.rfind(CLEAR_LINE).expect("the line is cleared");
    assert!(
        last_clear > last_progress,
        "the progress line is left on the terminal: {text:?}"
    );
    assert!(text.ends_with(CLEAR_LINE), "{text:?}");
}

#[test]
fn progress_absent_for_one_target() {
    let mut sleepers = vec![spawn_sleep("0.2")];
    let text = terminal_output(&mut sleepers);
    assert!(!text.contains("exited"), "{text:?}");
    assert!(!text.contains('\x1b'), "{text:?}");
}

#[test]
fn progress_never_written_to_pipe() {
    let mut sleepers = vec![spawn_sleep("0.2"), spawn_sleep("0.4")];
    let mut args = vec!["wait".to_owned(), "-t".to_owned(), "20".to_owned()];
    args.extend(sleepers.iter().map(|child| child.id().to_string()));
    let waiter = pidwatch_process()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pids: Vec<u32> = sleepers.iter().map(Child::id).collect();
    wait_until_watching(waiter.id(), &pids);
    for sleeper in &mut sleepers {
        sleeper.wait().unwrap();
    }
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "", "stderr is a pipe, so no progress line");
}
