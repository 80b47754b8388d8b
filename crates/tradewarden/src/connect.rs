//! Opening the store a command works on, with the configured connect timeout.

use tradewarden_store::SqlStore;
use tradewarden_store::db::ConnectOptions;

use crate::config::Config;

/// Opens the store `cfg` names, within its connect timeout. The error is one line for the
/// user.
pub async fn open(cfg: &Config) -> Result<SqlStore, String> {
    let opts = ConnectOptions {
        timeout: cfg.connect_timeout,
        read_only: false,
    };
    SqlStore::connect(&opts.apply_to(&cfg.database_url))
        .await
        .map_err(|e| message(&e))
}

/// A store error as the user sees it: `cannot connect to …: connection refused`.
fn message(e: &tradewarden_engine::StoreError) -> String {
    match e {
        tradewarden_engine::StoreError::Database(m) => m.clone(),
        other => other.to_string(),
    }
}
