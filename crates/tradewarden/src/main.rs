//! The `tradewarden` binary: parses the command line, sets up logging and the runtime, and
//! delegates to the library's commands.
//!
//! Exit status: 0 success (a skipped run is a success), 1 a run-time failure, 2 bad usage,
//! configuration or input, 130 / 143 stopped by SIGINT / SIGTERM (after giving its leases
//! back). Logs go to stderr, results to stdout.

use std::process::ExitCode;

use clap::Parser;
use tradewarden::cmd::{Cli, Command, LogFormat};
use tradewarden::out;
use tradewarden::shutdown::Signals;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tradewarden::progress::set_quiet(cli.quiet);
    init_logging(&cli.log_level, cli.log_format);
    let rt = match runtime_for(&cli.command).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            out::stderr_line(&format!(
                "error: cannot start the async runtime: {e} — check the process limits (threads, open files) and run the command again"
            ));
            return ExitCode::from(1);
        }
    };
    let done = rt.block_on(async {
        // Listening from the start: a signal during wiring is kept, not the default death.
        let signals = Signals::install();
        cli.command.apply(cli.config, signals.recv()).await
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            out::stderr_line(&f.message());
            ExitCode::from(f.exit_code())
        }
    }
}

/// `serve` answers requests in parallel on a worker per core. Every other command is one
/// sequence of steps whose concurrency is waiting on the database or a broker: it runs on
/// this thread, no wake-up handed to another (`bench/run.sh` pass 2 on SQLite: 26.6 →
/// 24.9 ms).
fn runtime_for(command: &Command) -> tokio::runtime::Builder {
    match command {
        Command::Serve(_) => tokio::runtime::Builder::new_multi_thread(),
        _ => tokio::runtime::Builder::new_current_thread(),
    }
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| {
        out::stderr_line(&format!("warning: bad --log-level {level:?}, using info"));
        tracing_subscriber::EnvFilter::new("info")
    });
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| out::QuietStderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
