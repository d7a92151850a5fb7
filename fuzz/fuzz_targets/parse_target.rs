//! Fuzzes the `PID[:INODE]` parser behind every target of `pidwatch wait`
//! and `--thread`. It must never panic, and it must accept only PIDs in
//! `1..=PID_MAX_LIMIT` with a non-zero inode. What it accepts must print in
//! a form that parses back to the same value, and every error must name
//! the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pidwatch::sys::{parse_pid, PidInode, PID_MAX_LIMIT};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    for what in ["PID", "TID"] {
        match PidInode::parse(&input, what) {
            Ok(parsed) => {
                assert!(
                    (1..=PID_MAX_LIMIT).contains(&parsed.pid),
                    "{input:?} -> {parsed:?}"
                );
                assert_ne!(parsed.inode, Some(0), "{input:?}");
                let printed = parsed.to_string();
                assert_eq!(PidInode::parse(&printed, what), Ok(parsed), "{input:?}");
                assert_eq!(input.contains(':'), parsed.inode.is_some(), "{input:?}");
            }
            Err(err) => {
                assert_eq!(err.input(), input.as_ref());
                let message = err.to_string();
                let prefix = format!("invalid {what} {input:?}: ");
                assert!(message.starts_with(&prefix), "{message:?}");
                assert!(message.len() > prefix.len(), "{message:?} gives no reason");
            }
        }

        match parse_pid(&input, what) {
            Ok(pid) => {
                assert!((1..=PID_MAX_LIMIT).contains(&pid));
                assert!(input.bytes().all(|b| b.is_ascii_digit()), "{input:?}");
                assert_eq!(PidInode::parse(&input, what).map(|p| p.pid), Ok(pid));
            }
            Err(err) => assert_eq!(err.input(), input.as_ref()),
        }
    }
});
