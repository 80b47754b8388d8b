//! `tradewarden demo run`: the whole system on a throwaway database, with nothing but the
//! binary — no configuration, no file in the working directory, no network.

mod common;

use common::bin;

#[test]
fn demo_run_shows_orders_and_transactions_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // A broken local configuration must not matter: the demo brings its own.
    std::fs::write(dir.path().join("tradewarden.toml"), "not toml [").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["demo", "run"])
        .current_dir(dir.path())
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    for w in [
        "price moves",
        "imported 48 recommendation(s), 0 already present",
        "expert 1 (cautious): processed",
        "expert 3 (bold): processed",
        "== Transactions ==",
        "OPENED",
    ] {
        assert!(stdout.contains(w), "no {w:?}:\n{stdout}");
    }
    let created: usize = stdout
        .lines()
        .find_map(|l| l.strip_suffix(" order(s) created"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no order count:\n{stdout}"));
    assert!(created > 0, "{stdout}");
    assert!(
        stdout.contains(&format!("{created} transaction(s): {created} OPENED")),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the temp dir is removed: {left:?}");
    let here: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(
        here.len(),
        1,
        "nothing written to the working directory: {here:?}"
    );
}

#[test]
fn demo_run_keep_leaves_a_database_to_explore() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["demo", "run", "--keep"])
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let config = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("tradewarden --config "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no config path:\n{stdout}"))
        .to_string();
    let listed = bin()
        .args(["--config", &config, "outcomes", "--json"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(v.as_array().is_some_and(|a| a.len() >= 24), "{v}");
}
