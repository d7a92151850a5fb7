//! Watch any Linux process or thread exit through pidfds.
pub mod sys;
