//! The tradewarden application: configuration, wiring and the commands, as a library the
//! binary and the HTTP API both call.
//!
//! - [`config`]: TOML in, validated [`config::Config`] out.
//! - [`app`]: [`app::App`], wired once from a config.
//! - [`cli`]: the command line (clap), also rendered into the man page by `build.rs`.
//! - [`cmd`]: one module per command, each `run(args, &App)`.
//! - [`workload`]: the deterministic benchmark workload (`demo gen`).
//! - [`host`]: this host's process table (`/proc`), to tell a dead lease holder.
//! - [`api`]: the HTTP API of `serve`; [`background`]: `serve`'s periodic work.
//! - [`shutdown`]: SIGINT and SIGTERM, which cancel the running command.
//! - [`quotes`]: price ingestion; [`output`]: tables and summaries; [`failure`]: exit codes.

pub mod api;
pub mod app;
pub mod background;
pub mod cli;
pub mod cli_values;
pub mod cmd;
pub mod config;
pub mod connect;
pub mod failure;
pub mod host;
pub mod out;
pub mod output;
pub mod progress;
pub mod quotes;
pub mod redact;
pub mod shutdown;
pub mod workload;
