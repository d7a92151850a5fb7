//! Streams the exits of several processes on a tokio runtime.
//!
//!     cargo run --example async_stream --features tokio              # three demo children
//!     cargo run --example async_stream --features tokio -- PID...    # PID or PID:INODE
//!
//! Without arguments it starts three `sh` children that exit with codes 1
//! to 3 after 0.3 to 0.9 seconds. It prints every event until no target is
//! left; a line is printed each second while nothing happens.

use std::process::{Child, Command, ExitCode};
use std::time::Duration;

use pidwatch::tokio::AsyncWatcher;
use pidwatch::{Event, EventKind, Target, TargetId};
use tokio_stream::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("async_stream: {message}");
            ExitCode::from(1)
        }
    }
}

async fn run() -> Result<(), String> {
    let mut watcher = AsyncWatcher::new().map_err(|err| err.to_string())?;
    let mut children: Vec<(TargetId, Child)> = Vec::new();

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        for code in 1..=3 {
            let script = format!("sleep 0.{}; exit {code}", code * 3);
            let child = Command::new("sh")
                .args(["-c", &script])
                .spawn()
                .map_err(|err| format!("cannot start sh: {err}"))?;
            let id = watcher
                .add(Target::child(&child).map_err(|err| err.to_string())?)
                .map_err(|err| err.to_string())?;
            children.push((id, child));
        }
    }
    for arg in &args {
        let target: Target = arg.parse().map_err(|err| format!("{err}"))?;
        watcher.add(target).map_err(|err| err.to_string())?;
    }

    let mut idle = tokio::time::interval(Duration::from_secs(1));
    idle.tick().await;
    loop {
        // `next()` is cancellation safe, so losing the race to the interval
        // drops no event.
        tokio::select! {
            event = watcher.next() => match event {
                Some(event) => {
                    let event = event.map_err(|err| err.to_string())?;
                    print_event(&event);
                    reap_child(&mut children, &event)?;
                }
                None => break,
            },
            _ = idle.tick() => println!("waiting for {} targets", watcher.len()),
        }
    }
    println!("no target left");
    Ok(())
}

fn print_event(event: &Event) {
    let status = event
        .status
        .map_or_else(|| "status unknown".to_owned(), |status| status.to_string());
    println!(
        "{} {:?}: {status} ({})",
        event.identity, event.kind, event.source
    );
}

/// Reaps a demo child once it has exited, so its reaped event follows.
fn reap_child(children: &mut Vec<(TargetId, Child)>, event: &Event) -> Result<(), String> {
    if event.kind != EventKind::Exited {
        return Ok(());
    }
    if let Some(index) = children.iter().position(|(id, _)| *id == event.target) {
        let (_, mut child) = children.swap_remove(index);
        // The child has exited, so this does not block.
        child
            .wait()
            .map_err(|err| format!("cannot reap process {}: {err}", child.id()))?;
    }
    Ok(())
}
