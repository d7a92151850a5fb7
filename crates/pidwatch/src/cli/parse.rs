//! Parsers for option values: durations, signals and users.

use std::ffi::CString;
use std::time::Duration;

/// The standard Linux signals (x86, arm and most other architectures), by
/// number and name without the `SIG` prefix.
const SIGNALS: &[(i32, &str)] = &[
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGILL, "ILL"),
    (libc::SIGTRAP, "TRAP"),
    (libc::SIGABRT, "ABRT"),
    (libc::SIGBUS, "BUS"),
    (libc::SIGFPE, "FPE"),
    (libc::SIGKILL, "KILL"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGSEGV, "SEGV"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGPIPE, "PIPE"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGSTKFLT, "STKFLT"),
    (libc::SIGCHLD, "CHLD"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGSTOP, "STOP"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGTTIN, "TTIN"),
    (libc::SIGTTOU, "TTOU"),
    (libc::SIGURG, "URG"),
    (libc::SIGXCPU, "XCPU"),
    (libc::SIGXFSZ, "XFSZ"),
    (libc::SIGVTALRM, "VTALRM"),
    (libc::SIGPROF, "PROF"),
    (libc::SIGWINCH, "WINCH"),
    (libc::SIGIO, "IO"),
    (libc::SIGPWR, "PWR"),
    (libc::SIGSYS, "SYS"),
];

/// The largest signal number Linux accepts (`_NSIG - 1`).
const SIGNAL_MAX: i32 = 64;

/// The first real-time signal as glibc and musl report it (`SIGRTMIN`),
/// after the two that the C library's threads use.
const SIGRTMIN: i32 = 34;

/// Returns the name of a signal: `SIGTERM`, `SIGRTMIN+2`, or `signal N`
/// for numbers outside `1..=64`.
pub fn signal_name(signal: i32) -> String {
    if let Some((_, name)) = SIGNALS.iter().find(|(number, _)| *number == signal) {
        return format!("SIG{name}");
    }
    match signal {
        SIGRTMIN => "SIGRTMIN".to_owned(),
        n if (SIGRTMIN + 1..=SIGNAL_MAX).contains(&n) => format!("SIGRTMIN+{}", n - SIGRTMIN),
        n => format!("signal {n}"),
    }
}

/// Parses a signal as a name (`TERM`, `SIGTERM`, `sigterm`) or a number
/// from 1 to 64.
pub fn parse_signal(input: &str) -> Result<i32, String> {
    let hint = "give a name such as TERM, SIGINT or KILL, or a number from 1 to 64 (see `kill -l`)";
    if let Ok(number) = input.parse::<i32>() {
        if (1..=SIGNAL_MAX).contains(&number) {
            return Ok(number);
        }
        return Err(format!("invalid signal {input:?}: {hint}"));
    }

    let upper = input.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let alias = match name {
        "IOT" => Some(libc::SIGABRT),
        "POLL" => Some(libc::SIGIO),
        "CLD" => Some(libc::SIGCHLD),
        _ => None,
    };
    alias
        .or_else(|| {
            SIGNALS
                .iter()
                .find(|(_, known)| *known == name)
                .map(|(number, _)| *number)
        })
        .ok_or_else(|| format!("invalid signal {input:?}: {hint}"))
}

/// Parses the value of `--timeout`.
pub fn parse_timeout(input: &str) -> Result<Duration, String> {
    parse_duration(input, "timeout")
}

/// Parses the value of `--kill-after`.
pub fn parse_kill_after(input: &str) -> Result<Duration, String> {
    parse_duration(input, "--kill-after duration")
}

/// Parses a duration: a non-negative decimal number with an optional unit,
/// `ms`, `s` (the default), `m`, `h` or `d`, such as `500ms`, `2s`, `1m` or
/// `1.5`.
pub fn parse_duration(input: &str, value_name: &str) -> Result<Duration, String> {
    let expected = "expected a non-negative number with an optional unit ms, s, m, h or d, such as 1.5, 500ms, 2s or 1m";
    let unit_start = input
        .rfind(|c: char| !c.is_ascii_alphabetic())
        .map_or(0, |i| i + 1);
    let (number, unit) = input.split_at(unit_start);
    let seconds_per_unit = match unit {
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("invalid {value_name} {input:?}: {expected}")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid {value_name} {input:?}: {expected}"))?;
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("invalid {value_name} {input:?}: {expected}"))
}

/// Parses a user as a numeric UID or a name known to the system's user
/// database (`/etc/passwd`, or NSS).
pub fn parse_user(input: &str) -> Result<u32, String> {
    if let Ok(uid) = input.parse::<u32>() {
        return Ok(uid);
    }
    lookup_user(input)?.ok_or_else(|| {
        format!("invalid user {input:?}: no such user; give a user name or a numeric UID")
    })
}

/// Looks a user name up with `getpwnam_r(3)`.
fn lookup_user(name: &str) -> Result<Option<u32>, String> {
    let Ok(c_name) = CString::new(name) else {
        return Err(format!("invalid user {name:?}: it contains a NUL byte"));
    };
    let mut buffer = vec![0u8; 4096];
    loop {
        // SAFETY: an all-zero passwd is a valid value of this plain C struct;
        // getpwnam_r fills it in.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: the name is NUL-terminated, `entry` and `found` are valid
        // for writes, and the buffer pointer and length describe one live
        // allocation that outlives the call. Only `pw_uid`, a plain number,
        // is read afterwards, so no pointer into the buffer escapes.
        let ret = unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        match ret {
            0 if found.is_null() => return Ok(None),
            0 => return Ok(Some(entry.pw_uid)),
            libc::ERANGE if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 4, 0),
            errno => {
                return Err(format!(
                    "cannot look up user {name:?}: {}",
                    std::io::Error::from_raw_os_error(errno)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units() {
        let cases = [
            ("1.5", Duration::from_millis(1500)),
            ("2", Duration::from_secs(2)),
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
            ("0.5h", Duration::from_secs(1800)),
            ("1d", Duration::from_secs(86400)),
            ("0", Duration::ZERO),
            ("1e-3", Duration::from_millis(1)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input, "timeout"), Ok(expected), "{input}");
        }
    }

    #[test]
    fn durations_rejected() {
        for input in [
            "", "soon", "-1", "2x", "ms", "1 m", "inf", "NaN", "1e400", "2ss",
        ] {
            let err = parse_duration(input, "timeout").unwrap_err();
            assert!(
                err.starts_with(&format!("invalid timeout {input:?}: expected")),
                "{input:?}: {err}"
            );
        }
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("sigkill"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("9"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("64"), Ok(64));
        assert_eq!(parse_signal("IOT"), Ok(libc::SIGABRT));
        for bad in ["0", "65", "-1", "TERMINATE", "SIG", ""] {
            let err = parse_signal(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad:?}: {err}");
        }
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(signal_name(99), "signal 99");
    }

    #[test]
    fn users_by_number_and_name() {
        assert_eq!(parse_user("0"), Ok(0));
        assert_eq!(parse_user("root"), Ok(0));
        let err = parse_user("no-such-user-pidwatch").unwrap_err();
        assert!(err.contains("no such user"), "{err}");
    }
}
