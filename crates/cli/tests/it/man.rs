//! `mtasts man` and `mtasts completions`: generated from the clap definitions.

use std::process::Command;

fn mtasts(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mtasts")).args(args).output().unwrap()
}

#[test]
fn man_pages_cover_every_command() {
    let out = mtasts(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH mtasts 1"), "{page}");
    for command in ["check", "lint", "generate", "scan", "resolver"] {
        assert!(page.contains(command), "mtasts.1 does not mention {command}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = mtasts(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lint = std::fs::read_to_string(dir.path().join("mtasts-lint.1")).unwrap();
    assert!(lint.contains("\\-\\-mx") && lint.contains("standard input"), "{lint}");
    assert!(dir.path().join("mtasts-scan-diff.1").exists(), "one page per subcommand");
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = mtasts(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("generate") && script.contains("max-age"), "{shell}: {script}");
    }
    let out = mtasts(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

/// Issue 10: `check` and `scan` take both --dane and --no-dane (defaults differ and are said),
/// and scan's exit status is documented where administrators look.
#[test]
fn dane_flags_and_scan_exit_status_are_documented() {
    for command in ["check", "scan"] {
        let out = mtasts(&[command, "--help"]);
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("--dane") && help.contains("--no-dane"), "{command}: {help}");
        assert!(help.contains("Exit status: 0"), "{command}: {help}");
    }
    let out = mtasts(&["scan", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("130 interrupted"));
}
