//! Fuzzes the parsers of `pidwatch wait` option values in the binary's
//! `src/cli/parse.rs` (signals, durations, users), compiled here by path:
//! no input may panic, and every signal name that `signal_name` prints
//! must parse back to its number.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/pidwatch/src/cli/parse.rs"]
mod parse;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);

    match parse::parse_signal(&input) {
        Ok(signal) => {
            assert!((1..=64).contains(&signal), "{input:?} -> {signal}");
            let name = parse::signal_name(signal);
            if name.starts_with("SIG") {
                assert_eq!(parse::parse_signal(&name), Ok(signal), "{name}");
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
    if let Ok(duration) = parse::parse_timeout(&input) {
        assert!(duration.as_secs_f64().is_finite());
    }
    let _ = parse::parse_kill_after(&input);
    let _ = parse::parse_user(&input);

    if let Some(&first) = data.first() {
        let signal = i32::from(first as i8);
        let name = parse::signal_name(signal);
        // Signals 32 and 33 have no name and print as "signal N".
        if name.starts_with("SIG") {
            assert_eq!(parse::parse_signal(&name), Ok(signal), "{name}");
        }
    }
});
