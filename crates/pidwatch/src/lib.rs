//! Watch any Linux process or thread exit through pidfds.
pub mod check;
pub mod error;
pub mod helper;
pub mod sys;
pub mod watch;

pub use error::{Error, Result};
pub use watch::{Event, EventKind, Identity, Source, Target, TargetId, TargetKind, Watcher};
