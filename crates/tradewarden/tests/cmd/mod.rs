//! Running the binary in a directory of its own with a configuration file, for the tests of
//! the configuration and connection faults.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::bin;

/// One run of the binary.
pub struct Out {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Out {
    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code and that nothing panicked.
    pub fn expect(&self, code: i32, what: &str) -> &Self {
        assert_eq!(self.code, Some(code), "{what}: {}", self.describe());
        assert!(
            !self.stderr.contains("panicked"),
            "{what}: panicked: {}",
            self.describe()
        );
        self
    }

    /// Standard output and standard error together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn out(o: Output) -> Out {
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The binary run in `dir` with `args` (no `$TRADEWARDEN_CONFIG`, no `$RUST_LOG`).
pub fn run_in(dir: &Path, args: &[&str]) -> Out {
    let mut c: Command = bin();
    c.args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    out(c.output().expect("run the binary"))
}

/// Writes `tradewarden.toml` in `dir` and runs the binary with it.
pub fn with_config(dir: &Path, config: &str, args: &[&str]) -> Out {
    std::fs::write(dir.join("tradewarden.toml"), config).unwrap();
    let mut all = vec!["--config", "tradewarden.toml"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}

/// A small valid configuration on `url` with extra `[processing]` lines.
pub fn config(url: &str, processing: &str) -> String {
    format!(
        r#"[database]
url = "{url}"

[processing]
{processing}

[[accounts]]
name = "paper"
broker = "paper"

[[experts]]
id = 1
account = "paper"
allow_automated_trade_opening = true
enter_market_ruleset = "r"

[[rulesets]]
name = "r"
[[rulesets.rules]]
name = "buy"
triggers = [{{ event = "bullish" }}]
actions = [{{ action = "buy" }}]
"#
    )
}

/// `sqlite://DIR/tw.db`.
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("tw.db").display())
}
