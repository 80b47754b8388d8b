//! Help that teaches: every command's `--help` ends with examples; `process` without
//! arguments names both `--expert ID` and `--all`; `completions` writes a script for bash,
//! zsh and fish; `man` prints the page build.rs rendered.

mod common;

use clap::CommandFactory;
use common::bin;
use tradewarden::cli::Cli;

fn run(args: &[&str]) -> std::process::Output {
    bin().args(args).output().expect("run tradewarden")
}

/// Every command path: `init`, `prices set`, `demo run`, …
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for sub in Cli::command().get_subcommands() {
        let name = sub.get_name().to_string();
        let nested: Vec<String> = sub
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        if nested.is_empty() {
            paths.push(vec![name]);
        } else {
            paths.extend(nested.into_iter().map(|n| vec![name.clone(), n]));
        }
    }
    paths
}

#[test]
fn every_commands_help_ends_with_examples() {
    let paths = command_paths();
    assert!(paths.len() >= 15, "{paths:?}");
    for path in paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = run(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = text.trim_end().lines().rev().take(3).collect();
        assert!(
            tail.iter()
                .any(|l| l.trim_start().starts_with("tradewarden ")),
            "{args:?} does not end with an example:\n{text}"
        );
        assert!(text.contains("Example"), "{args:?}:\n{text}");
    }
}

#[test]
fn process_without_arguments_names_both_ways() {
    let out = run(&["process"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--expert <ID>") && err.contains("--all"),
        "{err}"
    );
}

#[test]
fn completions_generate_for_the_three_shells() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef tradewarden"),
        ("fish", "complete -c tradewarden"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: no {marker:?}");
        for word in ["transactions", "completions", "lookback-days"] {
            assert!(text.contains(word), "{shell}: no {word}");
        }
    }
    // The bash script is valid bash.
    let script = run(&["completions", "bash"]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tw.bash");
    std::fs::write(&file, script).unwrap();
    if let Ok(o) = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
    {
        assert!(o.status.success(), "bash -n: {o:?}");
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn the_man_page_is_built_in() {
    let out = run(&["man"]);
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH tradewarden 1"), "{page}");
    for word in ["process", "transactions", "completions", "demo"] {
        assert!(page.contains(word), "no {word} in the man page");
    }
}
