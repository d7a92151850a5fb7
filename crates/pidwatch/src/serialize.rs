//! Serde encodings of the std types that events carry.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::Serializer;

/// Encodes an exit status as `{"code": N}` for a normal exit, as
/// `{"signal": N, "core_dumped": B}` for a death by signal, or as `null`
/// when unknown. A raw wait status that is neither (a stop or continue
/// report, which no exit produces) becomes `{"raw": N}`.
pub(crate) fn exit_status<S: Serializer>(
    status: &Option<ExitStatus>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let Some(status) = status else {
        return serializer.serialize_none();
    };
    if let Some(code) = status.code() {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("code", &code)?;
        return map.end();
    }
    if let Some(signal) = status.signal() {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("signal", &signal)?;
        map.serialize_entry("core_dumped", &status.core_dumped())?;
        return map.end();
    }
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry("raw", &status.into_raw())?;
    map.end()
}

/// Encodes a time as seconds since the Unix epoch, with microseconds, the
/// form `pidwatch wait --json` prints. Times before the epoch encode as 0.
pub(crate) fn unix_seconds<S: Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    serializer.serialize_f64(since.as_micros() as f64 / 1e6)
}
