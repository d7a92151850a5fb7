//! `pidwatch id`: print `PID:INODE` names.

use std::io::Write;

use pidwatch::sys::{self, Feature, Features, PidfdFlags};
use pidwatch::Error;

use super::args::IdArgs;
use super::{Code, Failure};

pub fn run(args: IdArgs) -> Result<Code, Failure> {
    let features = Features::get();
    if !features.has(Feature::PidfsInode) {
        let reason = features
            .probes()
            .iter()
            .find(|probe| probe.feature == Feature::PidfsInode)
            .and_then(|probe| probe.reason.clone())
            .unwrap_or_default();
        return Err(Failure::from_error(Error::Unsupported {
            capability: Feature::PidfsInode.name(),
            since: Feature::PidfsInode.since(),
            reason,
        }));
    }

    let (flags, what) = if args.thread {
        (PidfdFlags::PIDFD_THREAD, "TID")
    } else {
        (PidfdFlags::empty(), "PID")
    };
    let mut failed = false;
    for pid in args.pids {
        let pidfd = sys::pidfd_open(pid, flags)
            .map_err(|err| pidwatch::watch::open_error(err, what, pid, args.thread));
        match pidfd.and_then(|fd| {
            sys::pidfd_inode(&fd)
                .map_err(|err| Error::io(format!("fstat on the pidfd of {what} {pid}"), err))
        }) {
            Ok(Some(inode)) => {
                let mut stdout = std::io::stdout().lock();
                if let Err(err) = writeln!(stdout, "{pid}:{inode}").and_then(|()| stdout.flush()) {
                    if err.kind() == std::io::ErrorKind::BrokenPipe {
                        return Err(Failure::quiet(Code::Failure));
                    }
                    return Err(Failure::new(
                        Code::Failure,
                        format!("cannot write to standard output: {err}"),
                    ));
                }
            }
            Ok(None) => unreachable!("pidfs was probed above"),
            Err(err) => {
                eprintln!("pidwatch: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { Code::Failure } else { Code::Success })
}
