//! A database password never appears in what the binary prints: not in `check`, not in an
//! error that names the database, not in a log line, whatever form it is written in.

mod cmd;
mod common;

use cmd::{config, with_config};

#[test]
fn a_database_password_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let pg = common::pg_admin_url();
    let server = pg
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap()
        .replace("postgres://", "");
    let cases = [
        // Userinfo password; nothing listens on port 1.
        "postgres://postgres:Hunter2Secret@127.0.0.1:1/test".to_string(),
        // URL parameter, on the real server, to a database that does not exist.
        format!("postgres://{server}/tw_no_such_db?password=Hunter2Secret"),
        format!("postgresql://{server}/tw_no_such_db?sslmode=disable&password=Hunter2Secret"),
        format!("postgres://{server}/test?sslpassword=Hunter2Secret"),
        // A libpq key/value string.
        "postgres: host=127.0.0.1 port=1 password=Hunter2Secret dbname=test".to_string(),
        "host=127.0.0.1 password='Hunter2Secret'".to_string(),
    ];
    for url in &cases {
        let text = config(url, "");
        for args in [
            &["check"][..],
            &["--log-level", "trace", "transactions"][..],
            &["--log-level", "trace", "process", "--all"][..],
        ] {
            let o = with_config(dir.path(), &text, args);
            assert!(
                !o.all().contains("Hunter2Secret"),
                "{url} / {args:?}: the secret is printed: {}",
                o.describe()
            );
            assert!(!o.stderr.contains("panicked"), "{}", o.describe());
        }
    }
    // A TOML error quotes the broken line.
    let broken = "[database]\nurl = \"postgres://u:Hunter2Secret@h/db\n";
    let o = with_config(dir.path(), broken, &["check"]);
    o.expect(2, "broken TOML");
    assert!(!o.all().contains("Hunter2Secret"), "{}", o.describe());
}

#[test]
fn check_redacts_but_shows_the_rest_of_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let o = with_config(
        dir.path(),
        &config(
            "postgres://u:Hunter2Secret@db.example:5432/tw?password=Other1Secret&sslmode=require",
            "",
        ),
        &["check"],
    );
    o.expect(0, "check");
    assert!(
        o.stdout
            .contains("database: postgres://u:***@db.example:5432/tw?password=***&sslmode=require"),
        "{}",
        o.describe()
    );
    assert!(!o.all().contains("Secret"), "{}", o.describe());
}
