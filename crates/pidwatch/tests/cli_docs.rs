//! Help, man pages and shell completions of the `pidwatch` binary.

mod cli_support;

use cli_support::*;

#[test]
fn help_shows_examples_and_exit_codes() {
    let output = pidwatch().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    for expected in [
        "Examples:",
        "pidwatch wait -p nginx -x",
        "pidwatch completions bash",
        "130 SIGINT",
        "143 SIGTERM",
    ] {
        assert!(text.contains(expected), "help lacks {expected:?}:\n{text}");
    }
}

#[test]
fn wait_help_lists_every_flag() {
    let output = pidwatch().args(["wait", "--help"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    for flag in [
        "--thread ",
        "--threads",
        "--pattern",
        "--exact",
        "--full",
        "--uid",
        "--euid",
        "--parent",
        "--newest",
        "--oldest",
        "--timeout",
        "--signal",
        "--kill-after",
        "--exited",
        "--count",
        "--exit-status",
        "--verbose",
        "--quiet",
        "--json",
        "500ms, 2s, 1m",
        "Exit status:",
    ] {
        assert!(text.contains(flag), "wait --help lacks {flag:?}:\n{text}");
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_pidwatch()"),
        ("zsh", "#compdef pidwatch"),
        ("fish", "complete -c pidwatch"),
        ("elvish", "pidwatch"),
        ("powershell", "pidwatch"),
    ] {
        let output = pidwatch().args(["completions", shell]).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        let text = stdout(&output);
        assert!(text.contains(marker), "{shell} script lacks {marker:?}");
        assert!(
            text.contains("kill-after"),
            "{shell} script lacks --kill-after"
        );
    }
}

#[test]
fn completions_reject_unknown_shell() {
    let output = pidwatch().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("invalid value 'tcsh'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn man_page_on_stdout() {
    let output = pidwatch().arg("man").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &text[..80.min(text.len())]
    );
    assert!(text.contains(".TH pidwatch 1"), "no title line");
    assert!(text.contains("Examples:"), "no examples");
    assert!(text.contains("completions"), "no completions subcommand");
}

#[test]
fn man_pages_into_directory() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("man-pages");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let output = pidwatch()
        .args(["man", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for page in [
        "pidwatch.1",
        "pidwatch-wait.1",
        "pidwatch-id.1",
        "pidwatch-check.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page))
            .unwrap_or_else(|err| panic!("{page} was not written: {err}"));
        assert!(text.contains(".TH "), "{page} has no title line");
    }
    let wait = std::fs::read_to_string(dir.join("pidwatch-wait.1")).unwrap();
    assert!(
        wait.contains("kill\\-after"),
        "pidwatch-wait.1 lacks --kill-after"
    );

    let missing = dir.join("no-such-dir");
    let output = pidwatch()
        .args(["man", "--dir", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("not a directory"),
        "{}",
        stderr(&output)
    );
}
