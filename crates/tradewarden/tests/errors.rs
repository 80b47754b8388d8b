//! Errors in one place: every failure the binary reports starts with what failed and ends,
//! after ` — `, with what to do; its exit code is the README's (2 for usage, configuration
//! and input, 1 for run-time failures).

mod cmd;
mod common;

use cmd::{config, run_in, sqlite_url, with_config};

/// The last line of stderr names what to do.
fn ends_with_advice(stderr: &str) -> bool {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.contains(" — "))
}

#[test]
fn every_error_says_what_failed_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = config(&sqlite_url(d), "");
    std::fs::write(d.join("bad.jsonl"), "{\"expert_id\": 1}\n").unwrap();
    std::fs::write(d.join("bad.csv"), "AAPL,-3\n").unwrap();
    let cases: Vec<(i32, &str, Vec<&str>)> = vec![
        (2, "unknown expert", vec!["process", "--expert", "99"]),
        (2, "unreadable input", vec!["import", "missing.jsonl"]),
        (2, "bad lines", vec!["import", "bad.jsonl"]),
        (2, "bad price lines", vec!["prices", "import", "bad.csv"]),
        (2, "bad quote", vec!["prices", "set", "AAPL", "zero"]),
        (2, "init onto a file", vec!["init", "tradewarden.toml"]),
    ];
    for (code, what, args) in cases {
        let o = with_config(d, &good, &args);
        o.expect(code, what);
        assert!(ends_with_advice(&o.stderr), "{what}: {}", o.describe());
    }
    // A configuration that does not parse.
    let o = with_config(d, "[database]\nurl = 5\n", &["process", "--all"]);
    o.expect(2, "bad configuration");
    assert!(ends_with_advice(&o.stderr), "{}", o.describe());
    // A configuration file that cannot be read.
    let o = run_in(d, &["--config", "nope.toml", "check"]);
    o.expect(2, "missing configuration");
    assert!(
        o.stderr
            .starts_with("cannot read the configuration nope.toml"),
        "{}",
        o.describe()
    );
    assert!(ends_with_advice(&o.stderr), "{}", o.describe());
    // A database that cannot be reached: a run-time failure.
    let text = config("postgres://postgres@127.0.0.1:1/test", "").replace(
        "[processing]",
        "connect_timeout_seconds = 1\n\n[processing]",
    );
    let o = with_config(d, &text, &["process", "--all"]);
    o.expect(1, "unreachable database");
    assert!(
        o.stderr.contains("error: cannot connect to"),
        "{}",
        o.describe()
    );
    assert!(ends_with_advice(&o.stderr), "{}", o.describe());
}
