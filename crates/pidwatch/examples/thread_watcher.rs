//! Reports each thread of a multi-threaded process as it exits, then the
//! process itself.
//!
//!     cargo run --example thread_watcher              # watches a demo process it starts
//!     cargo run --example thread_watcher -- PID       # watches the threads of PID
//!
//! It lists `/proc/PID/task`, adds a thread target for each TID
//! (`Target::thread_of`, which checks that the TID still belongs to PID),
//! and lists again every 500 ms for threads started since. Without a PID it
//! starts a copy of itself whose four threads exit one by one.

use std::collections::HashSet;
use std::process::{Child, Command, ExitCode};
use std::time::Duration;

use pidwatch::sys::procfs;
use pidwatch::{EventKind, Target, TargetKind, Watcher};

/// The hidden argument of the demo process.
const DEMO_ARG: &str = "--demo-threads";

/// How often `/proc/PID/task` is listed again for new threads.
const RESCAN: Duration = Duration::from_millis(500);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(DEMO_ARG) {
        run_demo_threads();
        return ExitCode::SUCCESS;
    }

    let (pid, mut demo) = match args.as_slice() {
        [] => match start_demo() {
            Ok(child) => (child.id(), Some(child)),
            Err(message) => return fail(&message),
        },
        [pid] => match pid.parse::<u32>() {
            Ok(pid) => (pid, None),
            Err(_) => {
                return fail(&format!(
                    "invalid PID {pid:?}: give a positive decimal number"
                ))
            }
        },
        _ => return fail("usage: thread_watcher [PID]"),
    };

    let result = watch(pid);
    if let Some(child) = demo.as_mut() {
        let _ = child.wait();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("thread_watcher: {message}");
    ExitCode::from(1)
}

/// Watches every thread of `pid` and the process, until the process exits.
fn watch(pid: u32) -> Result<(), String> {
    let mut watcher = Watcher::new().map_err(|err| err.to_string())?;
    let process = watcher
        .add(Target::process(pid))
        .map_err(|err| err.to_string())?;
    let mut known = HashSet::new();

    loop {
        add_new_threads(&mut watcher, pid, &mut known)?;
        let Some(event) = watcher
            .next_event(Some(RESCAN))
            .map_err(|err| err.to_string())?
        else {
            continue;
        };
        if event.kind != EventKind::Exited {
            continue;
        }
        if event.target == process {
            println!("{} exited ({})", event.identity, event.source);
            return Ok(());
        }
        if event.identity.kind == TargetKind::Thread {
            println!(
                "{} of process {pid} exited ({})",
                event.identity, event.source
            );
        }
    }
}

/// Adds a thread target for each TID in `/proc/PID/task` not seen before.
fn add_new_threads(
    watcher: &mut Watcher,
    pid: u32,
    known: &mut HashSet<u32>,
) -> Result<(), String> {
    let tids = procfs::threads(pid).map_err(|err| format!("listing /proc/{pid}/task: {err}"))?;
    for tid in tids {
        if !known.insert(tid) {
            continue;
        }
        let added = Target::thread_of(pid, tid).and_then(|target| watcher.add(target));
        match added {
            Ok(_) => println!("watching thread {tid}"),
            // The thread exited between the listing and the open.
            Err(err) if err.is_gone() => {}
            Err(err) => return Err(err.to_string()),
        }
    }
    Ok(())
}

/// Starts this example again as the demo process.
fn start_demo() -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find this program: {err}"))?;
    let child = Command::new(exe)
        .arg(DEMO_ARG)
        .spawn()
        .map_err(|err| format!("cannot start the demo process: {err}"))?;
    println!("started demo process {}", child.id());
    Ok(child)
}

/// Runs the demo process: four threads that end 300 ms apart, then the
/// process.
fn run_demo_threads() {
    let threads: Vec<_> = (1..=4u64)
        .map(|n| {
            std::thread::spawn(move || std::thread::sleep(Duration::from_millis(600 + 300 * n)))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    std::thread::sleep(Duration::from_millis(300));
}
