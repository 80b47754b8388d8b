//! Opening the store a command works on: read-write, or read-only for the listings, with the
//! configured connect timeout. Every error names the database without its secrets.

use tradewarden_store::SqlStore;
use tradewarden_store::db::{self, ConnectOptions};

use crate::config::Config;
use crate::redact;

/// What a read-only command reads when its SQLite file does not exist yet: an empty
/// database in memory, so a listing prints its empty table (or `[]`) and no file is created.
const EMPTY_DATABASE: &str = "sqlite::memory:";

/// Opens the store `cfg` names. `read_only` (the listings) opens a SQLite file with
/// `mode=ro`, never creating it; a file that does not exist yet is reported on stderr and
/// read as an empty database. The error is one line for the user, secrets removed.
pub async fn open(cfg: &Config, read_only: bool) -> Result<SqlStore, String> {
    let url = &cfg.database_url;
    if read_only
        && let Some(path) = db::sqlite_file(url)
        && !path.exists()
    {
        tracing::info!(
            "no database yet at {} — run `tradewarden import` or `tradewarden run` first",
            path.display()
        );
        return SqlStore::connect(EMPTY_DATABASE)
            .await
            .map_err(|e| message(&e, url));
    }
    let opts = ConnectOptions {
        timeout: cfg.connect_timeout,
        read_only,
    };
    SqlStore::connect(&opts.apply_to(url))
        .await
        .map_err(|e| message(&e, url))
}

/// A store error as the user sees it: `cannot connect to …: connection refused`, with every
/// secret of `url` scrubbed.
fn message(e: &tradewarden_engine::StoreError, url: &str) -> String {
    let text = match e {
        tradewarden_engine::StoreError::Database { message, .. } => message.clone(),
        other => other.to_string(),
    };
    redact::scrub(&text, url)
}
