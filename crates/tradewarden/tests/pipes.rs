//! A closed stdout or stderr (`| head`, `2>&1 >/dev/null | true`) never panics the binary
//! nor stops its work (I10): results are printed once the work is done, and log lines to a
//! closed stderr are dropped.

mod common;

use std::path::Path;
use std::process::{ExitStatus, Stdio};

use common::*;

/// Runs the binary with stdout and stderr pipes whose read ends are closed at once.
fn run_with_closed_pipes(config: &Path, args: &[&str]) -> ExitStatus {
    let mut child = bin()
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the binary");
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().expect("wait for the binary")
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/recommendations.jsonl")
        .display()
        .to_string()
}

// Catches: print!/eprint! (they panic with "failed printing to stdout/stderr: Broken pipe",
// exit 101) and a logger that fails or stops the work on a closed stderr.
#[test]
fn closed_stdout_and_stderr_neither_panic_nor_stop_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("tw.db").display());
    let config = write_config(dir.path(), &db, 1, 30);
    let status = run_with_closed_pipes(
        &config,
        &["--log-level", "debug", "run", example().as_str()],
    );
    assert_eq!(status.code(), Some(0), "run with closed pipes: {status:?}");
    // The work was done: the confident buys of the example hold positions.
    let (st, out, err) = tw(&config, &["transactions", "--json"], &[]);
    assert!(st.success(), "{err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(!rows.as_array().unwrap().is_empty(), "{out}");
    // Listings and errors too: a closed stdout ends a listing quietly, a closed stderr
    // swallows an error message but keeps its exit status.
    let status = run_with_closed_pipes(&config, &["transactions", "--json"]);
    assert_eq!(status.code(), Some(0), "listing: {status:?}");
    let status = run_with_closed_pipes(&config, &["process", "--expert", "999"]);
    assert_eq!(status.code(), Some(2), "unknown expert: {status:?}");
}
