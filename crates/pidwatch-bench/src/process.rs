//! The processes the harness starts: targets, watchers speaking the harness
//! protocol (see `serve.rs`), and the C programs it builds with `cc`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::procfs::monotonic_ns;

/// Paths of the programs the harness runs.
#[derive(Clone, Debug)]
pub struct Tools {
    pub bench: PathBuf,
    pub pidwatch: PathBuf,
    pub limit: PathBuf,
    pub targets: PathBuf,
    pub poll: PathBuf,
}

impl Tools {
    /// Builds the C programs of `bench/` with `cc -O2` next to this binary
    /// and finds the `pidwatch` binary there.
    pub fn build() -> Result<Tools> {
        let bench = std::env::current_exe().context("finding the bench binary")?;
        let dir = bench.parent().context("the bench binary has no folder")?;
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
        let out = dir.join("bench-c");
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

        let compile = |name: &str| -> Result<PathBuf> {
            let source = sources.join(format!("{name}.c"));
            let binary = out.join(name);
            let status = Command::new("cc")
                .args(["-O2", "-Wall", "-pthread", "-o"])
                .arg(&binary)
                .arg(&source)
                .status()
                .context("running cc: install a C compiler (apt-get install gcc)")?;
            if !status.success() {
                bail!("cc failed on {}", source.display());
            }
            Ok(binary)
        };

        let pidwatch = dir.join("pidwatch");
        if !pidwatch.exists() {
            bail!(
                "{} is missing: build it with `cargo build --release -p pidwatch -p pidwatch-bench`",
                pidwatch.display()
            );
        }
        Ok(Tools {
            limit: compile("limit")?,
            targets: compile("targets")?,
            poll: compile("poll")?,
            bench,
            pidwatch,
        })
    }
}

/// Processes or threads to watch.
#[derive(Copy, Clone, Debug, Eq, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Process,
    Thread,
}

/// A `targets` process and the processes or threads it started.
pub struct Targets {
    child: Child,
    pub kind: Kind,
    pub ids: Vec<u32>,
    killed: Vec<bool>,
}

impl Targets {
    /// Starts `count` targets; processes are named `name` (their comm).
    pub fn spawn(tools: &Tools, kind: Kind, count: usize, name: &str) -> Result<Targets> {
        let mut command = Command::new(&tools.targets);
        match kind {
            Kind::Process => command.args(["procs", &count.to_string(), name]),
            Kind::Thread => command.args(["threads", &count.to_string()]),
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the targets program")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut ids = Vec::with_capacity(count);
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if line == "ready" {
                break;
            }
            ids.push(
                line.parse()
                    .with_context(|| format!("targets printed {line:?}"))?,
            );
        }
        if ids.len() != count {
            let _ = child.kill();
            let _ = child.wait();
            bail!("targets started {} of {count} {kind:?} targets", ids.len());
        }
        Ok(Targets {
            child,
            kind,
            killed: vec![false; count],
            ids,
        })
    }

    /// Ends target `index` (SIGKILL for a process, SIGUSR1 for a thread,
    /// which then returns) and returns `CLOCK_MONOTONIC` just before.
    pub fn kill(&mut self, index: usize) -> u64 {
        let id = self.ids[index] as libc::pid_t;
        self.killed[index] = true;
        let t0 = monotonic_ns();
        match self.kind {
            // SAFETY: kill() takes plain integers; the target is our
            // grandchild and its parent reaps it only after this signal.
            Kind::Process => unsafe { libc::kill(id, libc::SIGKILL) },
            // SAFETY: tgkill has no pointer arguments; the TID belongs to the
            // targets process, which is alive until all its threads return.
            Kind::Thread => unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    self.child.id() as libc::pid_t,
                    id,
                    libc::SIGUSR1,
                ) as i32
            },
        };
        t0
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        if self.kind == Kind::Process {
            for index in 0..self.ids.len() {
                if !self.killed[index] {
                    self.kill(index);
                }
            }
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Which watcher a server runs.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash, serde::Serialize)]
pub enum WatcherKind {
    /// pidwatch's Watcher (`bench serve`).
    #[serde(rename = "pidwatch")]
    Pidwatch,
    /// pidwatch's Watcher forced to poll `/proc` (`bench serve --poll`).
    #[serde(rename = "pidwatch_polling")]
    PidwatchPolling,
    /// bench/limit.c.
    #[serde(rename = "limit")]
    Limit,
}

impl WatcherKind {
    pub fn name(self) -> &'static str {
        match self {
            WatcherKind::Pidwatch => "pidwatch",
            WatcherKind::PidwatchPolling => "pidwatch_polling",
            WatcherKind::Limit => "limit",
        }
    }
}

/// A watcher process speaking the harness protocol.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    pub kind: WatcherKind,
}

/// How long the harness waits for any line before it gives up on a watcher.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

impl Server {
    pub fn start(tools: &Tools, kind: WatcherKind) -> Result<Server> {
        let mut command = match kind {
            WatcherKind::Pidwatch => {
                let mut command = Command::new(&tools.bench);
                command.arg("serve");
                command
            }
            WatcherKind::PidwatchPolling => {
                let mut command = Command::new(&tools.bench);
                command.args(["serve", "--poll"]);
                command
            }
            WatcherKind::Limit => {
                let mut command = Command::new(&tools.limit);
                command.arg("serve");
                command
            }
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the {} watcher", kind.name()))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Server {
            child,
            stdin,
            lines,
            kind,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn line(&self) -> Result<String> {
        match self.lines.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => {
                bail!(
                    "the {} watcher printed nothing for {LINE_TIMEOUT:?}",
                    self.kind.name()
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the {} watcher exited early", self.kind.name())
            }
        }
    }

    fn expect(&self, prefix: &str) -> Result<String> {
        let line = self.line()?;
        if !line.starts_with(prefix) {
            bail!(
                "the {} watcher printed {line:?}, expected {prefix:?}",
                self.kind.name()
            );
        }
        Ok(line[prefix.len()..].trim().to_owned())
    }

    /// Sends a batch of IDs and waits until the watcher has read them.
    pub fn load(&mut self, kind: Kind, ids: &[u32]) -> Result<()> {
        let mut text = String::with_capacity(ids.len() * 8 + 16);
        let letter = if kind == Kind::Thread { 't' } else { 'p' };
        text.push_str(&format!("{letter} {}\n", ids.len()));
        for id in ids {
            text.push_str(&format!("{id}\n"));
        }
        self.stdin.write_all(text.as_bytes())?;
        self.stdin.flush()?;
        self.expect("loaded")?;
        Ok(())
    }

    /// Lets the watcher register the batch; returns how long that took.
    pub fn go(&mut self) -> Result<Duration> {
        self.stdin.write_all(b"go\n")?;
        self.stdin.flush()?;
        let ns: u64 = self.expect("ready")?.parse()?;
        Ok(Duration::from_nanos(ns))
    }

    /// Waits for the next exit: the ID and when the watcher delivered it.
    pub fn next_exit(&self) -> Result<(u32, u64)> {
        let line = self.line()?;
        self.parse_exit(&line)
    }

    /// Like [`Server::next_exit`], but returns `None` after `timeout` of
    /// silence.
    pub fn next_exit_within(&self, timeout: Duration) -> Result<Option<(u32, u64)>> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => self.parse_exit(&line).map(Some),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                bail!("the {} watcher exited early", self.kind.name())
            }
        }
    }

    fn parse_exit(&self, line: &str) -> Result<(u32, u64)> {
        let mut fields = line.split(' ');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("E"), Some(id), Some(ns)) => Ok((id.parse()?, ns.parse()?)),
            _ => bail!(
                "the {} watcher printed {line:?}, expected an exit",
                self.kind.name()
            ),
        }
    }

    /// Waits for the end of the batch; returns the exited and reaped counts.
    pub fn done(&self) -> Result<(u64, u64)> {
        let rest = self.expect("done")?;
        let mut counts = [0u64; 2];
        for (slot, field) in counts.iter_mut().zip(rest.split(' ')) {
            *slot = field.split_once('=').map_or("0", |(_, v)| v).parse()?;
        }
        Ok((counts[0], counts[1]))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = monotonic_ns() + timeout.as_nanos() as u64;
    while monotonic_ns() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    check()
}
