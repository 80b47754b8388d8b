//! What a person at a terminal sees, and what a pipe never does: the progress bars of
//! `import`, `prices import` and `process --all` appear on a pseudo-terminal's stderr (driven
//! with `script` from util-linux) and never in a pipe or with `--quiet`; the listings colour
//! their status words on a terminal, never in a pipe nor with `$NO_COLOR`.
//!
//! `$TRADEWARDEN_PROGRESS_DELAY_MS=0` shows a bar at once instead of after about a second.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::bin;

/// `script` runs a command on a pseudo-terminal; without it these tests cannot run.
fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `tradewarden ARGS` in `dir` on a pseudo-terminal (`script -qec`): everything it
/// wrote (stdout and stderr, as the terminal got them).
fn in_pty(dir: &Path, args: &str, env: &[(&str, &str)]) -> String {
    let bin = env!("CARGO_BIN_EXE_tradewarden");
    let mut c = Command::new("script");
    c.args(["-qec", &format!("{bin} {args}"), "/dev/null"])
        .current_dir(dir)
        .env("TERM", "xterm")
        .env("TRADEWARDEN_PROGRESS_DELAY_MS", "0")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("TRADEWARDEN_CONFIG")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run script");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{args}: {:?}\n{text}", out.status);
    text
}

/// Runs `tradewarden ARGS` in `dir` with stdout and stderr piped: (stdout, stderr).
fn in_pipe(dir: &Path, args: &[&str]) -> (String, String) {
    let out = bin()
        .args(args)
        .current_dir(dir)
        .env("TERM", "xterm")
        .env("TRADEWARDEN_PROGRESS_DELAY_MS", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run tradewarden");
    assert!(out.status.success(), "{args:?}: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory with a configuration of three experts, a workload and a price file.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tw.db").display());
    common::write_config(dir.path(), &url, 3, 30);
    let start = (chrono::Utc::now() - chrono::Duration::minutes(30))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let workload = bin()
        .args([
            "demo",
            "gen",
            "--experts",
            "3",
            "--symbols",
            "50",
            "--start",
            &start,
        ])
        .output()
        .unwrap();
    std::fs::write(dir.path().join("recs.jsonl"), workload.stdout).unwrap();
    std::fs::write(
        dir.path().join("prices.csv"),
        "symbol,price\nSYM0000,10\nSYM0001,20\n",
    )
    .unwrap();
    dir
}

#[test]
fn progress_bars_appear_on_a_terminal_and_never_in_a_pipe() {
    if !script_available() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = workspace();
    let d = dir.path();
    let tty = in_pty(d, "import recs.jsonl", &[]);
    assert!(tty.contains("import ["), "no bar: {tty:?}");
    assert!(tty.contains("lines read"), "no line count: {tty:?}");
    assert!(
        tty.contains('\u{1b}'),
        "a bar redraws with escape codes: {tty:?}"
    );
    let tty = in_pty(d, "prices import prices.csv", &[]);
    assert!(tty.contains("prices import"), "no bar: {tty:?}");
    let tty = in_pty(d, "process --all", &[]);
    assert!(tty.contains("experts processed"), "no bar: {tty:?}");

    // --quiet: the same commands, no bar.
    for args in ["--quiet import recs.jsonl", "-q process --all"] {
        let tty = in_pty(d, args, &[]);
        assert!(
            !tty.contains("lines read") && !tty.contains("experts processed"),
            "{args}: {tty:?}"
        );
    }
    // A pipe: no bar, and not one escape code on either stream.
    for args in [
        &["import", "recs.jsonl"][..],
        &["prices", "import", "prices.csv"],
        &["process", "--all"],
    ] {
        let (stdout, stderr) = in_pipe(d, args);
        for text in [&stdout, &stderr] {
            assert!(
                !text.contains('\u{1b}'),
                "{args:?}: escape code in {text:?}"
            );
            assert!(
                !text.contains("lines read") && !text.contains("experts processed"),
                "{args:?}: {text:?}"
            );
        }
    }
}

#[test]
fn status_words_are_coloured_on_a_terminal_only() {
    if !script_available() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let dir = workspace();
    let d = dir.path();
    in_pipe(d, &["import", "recs.jsonl"]);
    in_pipe(d, &["process", "--all"]);
    let tty = in_pty(d, "transactions", &[]);
    assert!(tty.contains("OPENED") && tty.contains('\u{1b}'), "{tty:?}");
    let plain = in_pty(d, "transactions", &[("NO_COLOR", "1")]);
    assert!(
        plain.contains("OPENED") && !plain.contains('\u{1b}'),
        "NO_COLOR: {plain:?}"
    );
    let (piped, _) = in_pipe(d, &["transactions"]);
    assert!(
        piped.contains("OPENED") && !piped.contains('\u{1b}'),
        "pipe: {piped:?}"
    );
}
