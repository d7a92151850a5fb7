//! Stand-ins for the parts of the `pidwatch` binary's `cli` module that
//! `cli/output.rs` and `cli/parse.rs` name. The binary's modules are not
//! part of the library, so the fuzz targets compile those two source files
//! by path, next to these stand-ins.

/// The binary's exit codes; output.rs names only `Failure`.
#[derive(Copy, Clone, Debug)]
pub enum Code {
    Failure,
}

/// The binary's error type, reduced to what output.rs builds.
#[derive(Debug)]
pub struct Failure;

impl Failure {
    pub fn new(_code: Code, _message: impl Into<String>) -> Self {
        Failure
    }

    pub fn quiet(_code: Code) -> Self {
        Failure
    }
}
