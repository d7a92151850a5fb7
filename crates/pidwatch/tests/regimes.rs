//! Every kernel regime on the host kernel. Seccomp filters make the newer
//! calls, flags and ioctls fail the way older kernels and sandboxes do, in
//! a forked process that then runs `pidwatch`. A watcher can also be forced
//! into an older regime, and the descriptor limit forces targets onto
//! `/proc` polling.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use pidwatch::sys::seccomp::Sandbox;
use pidwatch::watch::Regime;
use pidwatch::{Error, EventKind, Source, Target, Watcher};

fn pidwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pidwatch"))
}

/// Runs `pidwatch` with `args` in a child that installs `sandbox` first.
fn run_sandboxed(sandbox: &str, args: &[&str]) -> Output {
    let filter = sandbox.parse::<Sandbox>().unwrap().filter();
    let mut command = pidwatch();
    command.args(args);
    // SAFETY: Filter::install makes two system calls and allocates nothing.
    unsafe {
        command.pre_exec(move || filter.install());
    }
    command.output().expect("pidwatch runs")
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Checks a `check --json` document: pidwatch passes every scenario, in
/// the expected regime.
fn assert_check_passes(output: &Output, regime: &str) {
    let document = json(output);
    assert_eq!(
        document["regime"]["watcher"], regime,
        "{:#}",
        document["regime"]
    );
    let scenarios = document["scenarios"].as_array().expect("scenarios");
    assert_eq!(scenarios.len(), 6);
    for scenario in scenarios {
        assert_eq!(scenario["pidwatch"]["verdict"], "pass", "{scenario:#}");
    }
    assert_eq!(output.status.code(), Some(0));
}

/// The check, run under each sandbox through the real seccomp filter that
/// `pidwatch check --sandbox` installs, detects the older regime and still
/// gives the fixed semantics.
#[test]
fn check_passes_under_every_sandbox() {
    let cases = [
        ("no-pidfd-info", "fixed"),
        ("no-thread-pidfd", "no-thread-pidfd"),
        ("linux-5.3", "no-thread-pidfd"),
        ("no-pidfd:ENOSYS", "no-pidfd"),
        ("no-pidfd:EPERM", "no-pidfd"),
        ("no-pidfd:EACCES", "no-pidfd"),
    ];
    for (sandbox, regime) in cases {
        let output = pidwatch()
            .args([
                "check",
                "--json",
                "--quiet-window",
                "100",
                "--sandbox",
                sandbox,
            ])
            .output()
            .unwrap();
        assert_check_passes(&output, regime);
        let document = json(&output);
        assert_eq!(document["regime"]["sandbox"], sandbox);
        if regime != "fixed" {
            // The raw kernel side cannot run the thread scenarios there.
            let skipped = document["summary"]["kernel"]["skip"].as_u64().unwrap();
            assert!(skipped >= 4, "{sandbox}: {:#}", document["summary"]);
        }
    }
}

/// The same, with the watcher forced into each regime on the full kernel.
#[test]
fn check_passes_in_every_forced_regime() {
    for regime in Regime::ALL {
        if regime == Regime::Fixed && Regime::current() != Regime::Fixed {
            eprintln!("skipped: forcing the fixed regime needs the thread-group fix");
            continue;
        }
        let output = pidwatch()
            .args(["check", "--json", "--quiet-window", "100"])
            .args(["--regime", regime.name()])
            .output()
            .unwrap();
        assert_check_passes(&output, regime.name());
    }
}

/// Each errno a sandbox may give for the pidfd calls selects /proc polling
/// for `wait`, which still reports the exit once, marked as polled.
#[test]
fn wait_polls_when_pidfd_calls_fail() {
    for (sandbox, source) in [
        ("no-pidfd:ENOSYS", "polled"),
        ("no-pidfd:EPERM", "polled"),
        ("no-pidfd:EACCES", "polled"),
        ("linux-5.3", "kernel"),
    ] {
        let mut sleeper = Command::new("sleep").arg("0.3").spawn().unwrap();
        let pid = sleeper.id().to_string();
        let waiter = std::thread::spawn(move || sleeper.wait());
        let output = run_sandboxed(sandbox, &["wait", "--json", "--timeout", "10", &pid]);
        waiter.join().unwrap().unwrap();

        assert_eq!(output.status.code(), Some(0), "{sandbox}: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        let exited: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("JSON line"))
            .filter(|event: &serde_json::Value| event["kind"] == "exited")
            .collect();
        assert_eq!(exited.len(), 1, "{sandbox}: {text}");
        assert_eq!(exited[0]["pid"].as_u64(), Some(pid.parse().unwrap()));
        assert_eq!(exited[0]["source"], source, "{sandbox}: {text}");
    }
}

/// A watcher cannot be forced into a regime newer than the kernel offers,
/// and the error names the missing capability.
#[test]
fn forcing_a_newer_regime_fails_clearly() {
    if Regime::current() == Regime::Fixed {
        eprintln!("skipped: this kernel offers every regime");
        return;
    }
    let err = Watcher::builder()
        .regime(Regime::Fixed)
        .build()
        .expect_err("no fixed regime here");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

/// Sources per regime, straight through the library: a thread-group
/// leader watched as a thread goes through a process pidfd on older
/// regimes and through /proc without pidfds.
#[test]
fn forced_regimes_choose_the_documented_source() {
    let me = std::process::id();
    for (regime, source) in [
        (Regime::LegacyThreadPidfd, Source::Verified),
        (Regime::NoThreadPidfd, Source::Verified),
        (Regime::NoPidfd, Source::Polled),
    ] {
        let mut watcher = Watcher::builder().regime(regime).build().unwrap();
        let id = watcher.add(Target::thread(me)).unwrap();
        assert_eq!(watcher.strategy(id).unwrap().0, source, "{regime}");
        assert!(watcher.next_event(Some(Duration::ZERO)).unwrap().is_none());
    }
}

/// Test-only mode of this test binary: the limit test lowers
/// RLIMIT_NOFILE, which is per process, so it runs alone in a child.
const LIMITS_CHILD: &str = "PIDWATCH_TEST_LIMITS_CHILD";

/// When the descriptor limit runs out, the watcher raises the soft limit
/// to the hard one, then watches the rest through /proc. Every exit is
/// still reported once. A strict watcher fails instead and names the limit.
#[test]
fn descriptor_limit_degrades_to_polling() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "limits_child", "--nocapture", "--test-threads=1"])
        .env(LIMITS_CHILD, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("limits_child ... ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn limits_child() {
    if std::env::var_os(LIMITS_CHILD).is_none() {
        // Runs only as the child of descriptor_limit_degrades_to_polling.
        return;
    }
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

    const TARGETS: usize = 60;
    let mut children: Vec<Child> = (0..TARGETS)
        .map(|_| {
            Command::new("sleep")
                .arg("30")
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();

    // Leave room for about 20 pidfds below the soft limit and 20 more
    // below the hard one.
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open + 20),
            maximum: Some(open + 40),
        },
    )
    .unwrap();

    let strict_err = {
        let mut strict = Watcher::builder().strict(true).build().unwrap();
        let mut err = None;
        for child in &children {
            if let Err(e) = strict.add(Target::process(child.id())) {
                err = Some(e);
                break;
            }
        }
        err.expect("a strict watcher runs out of descriptors")
    };
    assert!(
        matches!(strict_err, Error::TooManyOpenFiles { limit } if limit == open + 40),
        "{strict_err}"
    );
    assert_eq!(getrlimit(Resource::Nofile).current, Some(open + 40));

    let mut watcher = Watcher::new().unwrap();
    let ids: Vec<_> = children
        .iter()
        .map(|child| watcher.add(Target::process(child.id())).expect("added"))
        .collect();
    let polled = ids
        .iter()
        .filter(|id| watcher.strategy(**id).unwrap().0 == Source::Polled)
        .count();
    assert!(
        polled > 0 && polled < TARGETS,
        "{polled} of {TARGETS} polled"
    );

    for child in &mut children {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut exited = std::collections::HashMap::new();
    while let Some(event) = watcher.next_event(Some(Duration::from_secs(10))).unwrap() {
        if event.kind == EventKind::Exited {
            *exited.entry(event.target).or_insert(0) += 1;
        }
    }
    assert_eq!(exited.len(), TARGETS, "every target exits");
    assert!(exited.values().all(|count| *count == 1), "{exited:?}");
}
