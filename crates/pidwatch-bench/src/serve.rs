//! The pidwatch side of the harness protocol: a process that watches the
//! targets the harness names with a [`Watcher`] and prints each exit.
//!
//! `bench/limit.c` implements the same protocol with bare pidfds and epoll,
//! so both are driven, timed and measured (RSS, CPU time, context switches)
//! the same way from outside:
//!
//! ```text
//! stdin:  "p N" or "t N" (processes or threads), then N lines of IDs
//! stdout: "loaded"                     IDs read, nothing registered yet
//! stdin:  "go"
//! stdout: "ready NS"                   registration took NS nanoseconds
//! stdout: "E ID NS"                    one per exit, NS = CLOCK_MONOTONIC
//! stdout: "done exited=N reaped=M"     every target is finished
//! ```

use std::io::{BufRead, BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pidwatch::watch::Regime;
use pidwatch::{Event, EventKind, Target, TargetKind, Watcher};

use crate::procfs::monotonic_ns;

/// Serves batches until the end of stdin.
/// With `poll`, the Watcher is forced into [`Regime::NoPidfd`], its `/proc`
/// polling fallback.
pub fn serve(poll: bool) -> Result<()> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());

    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (thread, count) = parse_header(line.trim())?;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            line.clear();
            input.read_line(&mut line)?;
            let id: u32 = line
                .trim()
                .parse()
                .with_context(|| format!("invalid ID {:?} in the batch", line.trim()))?;
            ids.push(id);
        }
        writeln!(out, "loaded")?;
        out.flush()?;

        line.clear();
        input.read_line(&mut line)?;
        if line.trim() != "go" {
            bail!("expected \"go\", got {:?}", line.trim());
        }

        // The Watcher raises the soft RLIMIT_NOFILE to the hard limit by
        // itself, and polls the targets beyond it in /proc.
        let mut watcher = if poll {
            Watcher::builder().regime(Regime::NoPidfd).build()?
        } else {
            Watcher::new()?
        };
        let start = Instant::now();
        for &id in &ids {
            let target = if thread {
                Target::thread(id)
            } else {
                Target::process(id)
            };
            watcher.add(target)?;
        }
        writeln!(out, "ready {}", start.elapsed().as_nanos())?;
        out.flush()?;

        let mut counts = Counts::default();
        while let Some(event) = watcher.next_event(None)? {
            counts.report(&mut out, &event)?;
            // Drain what is already queued, then flush once per wakeup, as
            // limit.c does once per epoll_wait.
            while let Some(event) = watcher.next_event(Some(Duration::ZERO))? {
                counts.report(&mut out, &event)?;
            }
            out.flush()?;
        }
        writeln!(
            out,
            "done exited={} reaped={}",
            counts.exited, counts.reaped
        )?;
        out.flush()?;
    }
}

#[derive(Default)]
struct Counts {
    exited: u64,
    reaped: u64,
}

impl Counts {
    fn report(&mut self, out: &mut impl Write, event: &Event) -> Result<()> {
        match event.kind {
            EventKind::Exited => {
                let now = monotonic_ns();
                self.exited += 1;
                let id = match event.identity.kind {
                    TargetKind::Thread => event.identity.tid,
                    TargetKind::Process => event.identity.pid,
                };
                writeln!(out, "E {} {now}", id.unwrap_or(0))?;
            }
            EventKind::Reaped => self.reaped += 1,
            _ => {}
        }
        Ok(())
    }
}

fn parse_header(header: &str) -> Result<(bool, usize)> {
    let (kind, count) = header
        .split_once(' ')
        .with_context(|| format!("invalid batch header {header:?}: expected \"p N\" or \"t N\""))?;
    let thread = match kind {
        "p" => false,
        "t" => true,
        _ => bail!("invalid target kind {kind:?} in the batch header: expected p or t"),
    };
    let count = count
        .parse()
        .with_context(|| format!("invalid count {count:?} in the batch header"))?;
    Ok((thread, count))
}
