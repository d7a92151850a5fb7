//! One wait for everything `pidwatch wait` reacts to: watcher events,
//! SIGINT and SIGTERM, and a reader that closed standard output.
//!
//! SIGINT and SIGTERM are caught with a self-pipe (signal-hook), so the
//! handler only writes a byte and the main loop decides what to do. Output
//! is therefore never cut in the middle of a line.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use rustix::event::epoll;

use pidwatch::{Event, Watcher};

use super::{Code, Failure};

const WATCHER: u64 = 0;
const SIGINT: u64 = 1;
const SIGTERM: u64 = 2;
const STDOUT: u64 = 3;

/// The reason a wait ended.
#[derive(Debug)]
pub enum Step {
    /// The watcher reported an event.
    Event(Event),
    /// The deadline passed, or nothing is left to watch.
    Idle,
    /// SIGINT or SIGTERM arrived: the exit code to end with.
    Interrupted(Code),
    /// The reader of standard output has gone.
    OutputClosed,
}

/// The epoll instance over the watcher, the signal pipes and stdout.
pub struct Waiter {
    epoll: OwnedFd,
    sigint: UnixStream,
    sigterm: UnixStream,
    ready: Vec<epoll::Event>,
}

impl Waiter {
    /// Catches SIGINT and SIGTERM from now on and adds the watcher's epoll
    /// descriptor. With `watch_stdout`, a pipe on standard output whose
    /// reader has closed ends the wait.
    pub fn new(watcher: &Watcher, watch_stdout: bool) -> Result<Self, Failure> {
        let fail = |what: &str, err: io::Error| {
            Failure::new(Code::Failure, format!("{what} failed: {err}"))
        };
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)
            .map_err(|err| fail("epoll_create1", err.into()))?;
        let sigint = catch(libc::SIGINT).map_err(|err| fail("catching SIGINT", err))?;
        let sigterm = catch(libc::SIGTERM).map_err(|err| fail("catching SIGTERM", err))?;

        let readable = epoll::EventFlags::IN;
        for (fd, data) in [
            (watcher.as_fd(), WATCHER),
            (sigint.as_fd(), SIGINT),
            (sigterm.as_fd(), SIGTERM),
        ] {
            epoll::add(&epoll, fd, epoll::EventData::new_u64(data), readable)
                .map_err(|err| fail("epoll_ctl(ADD)", err.into()))?;
        }
        if watch_stdout {
            // With no requested events, epoll reports only EPOLLERR and
            // EPOLLHUP: on a pipe, EPOLLERR means the reader has gone.
            // Terminals and regular files either never report it or cannot
            // be added (EPERM), which is fine.
            let stdout = io::stdout();
            if let Err(err) = epoll::add(
                &epoll,
                stdout.as_fd(),
                epoll::EventData::new_u64(STDOUT),
                epoll::EventFlags::empty(),
            ) {
                tracing::debug!(error = %err, "standard output cannot be watched for a closed reader");
            }
        }

        Ok(Waiter {
            epoll,
            sigint,
            sigterm,
            ready: Vec::with_capacity(8),
        })
    }

    /// Returns the next event, or why there is none, waiting at most until
    /// `until`.
    pub fn next(&mut self, watcher: &mut Watcher, until: Option<Instant>) -> Result<Step, Failure> {
        loop {
            if let Some(step) = self.pending_signal() {
                return Ok(step);
            }
            if let Some(event) = watcher
                .next_event(Some(Duration::ZERO))
                .map_err(Failure::from_error)?
            {
                return Ok(Step::Event(event));
            }
            if watcher.is_empty() {
                return Ok(Step::Idle);
            }

            let now = Instant::now();
            if until.is_some_and(|until| until <= now) {
                return Ok(Step::Idle);
            }
            let mut timeout = until.map(|until| until - now);
            if let Some(poll) = watcher.poll_timeout() {
                timeout = Some(timeout.map_or(poll, |t| t.min(poll)));
            }
            self.wait(timeout)?;
            if self.ready.iter().any(|event| event.data.u64() == STDOUT) {
                return Ok(Step::OutputClosed);
            }
        }
    }

    fn wait(&mut self, timeout: Option<Duration>) -> Result<(), Failure> {
        let timespec = timeout.map(|t| rustix::event::Timespec {
            tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        self.ready.clear();
        match epoll::wait(
            &self.epoll,
            rustix::buffer::spare_capacity(&mut self.ready),
            timespec.as_ref(),
        ) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(err) => Err(Failure::new(
                Code::Failure,
                format!("epoll_wait failed: {err}"),
            )),
        }
    }

    /// Returns the step for a caught SIGINT or SIGTERM, if one arrived.
    fn pending_signal(&mut self) -> Option<Step> {
        if drain(&mut self.sigint) {
            tracing::info!("SIGINT received, stopping");
            return Some(Step::Interrupted(Code::Interrupted));
        }
        if drain(&mut self.sigterm) {
            tracing::info!("SIGTERM received, stopping");
            return Some(Step::Interrupted(Code::Terminated));
        }
        None
    }
}

/// Creates a non-blocking socket pair and makes `signal` write to it.
fn catch(signal: i32) -> io::Result<UnixStream> {
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(signal, write)?;
    Ok(read)
}

/// Reads everything queued on a signal socket and returns true if anything
/// was.
fn drain(socket: &mut UnixStream) -> bool {
    let mut buffer = [0u8; 16];
    let mut any = false;
    loop {
        match socket.read(&mut buffer) {
            Ok(0) => return any,
            Ok(_) => any = true,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return any,
        }
    }
}
