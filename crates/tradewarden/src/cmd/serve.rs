//! `tradewarden serve`: the HTTP API. At start it settles what a predecessor left in flight
//! (as `reconcile` does), then serves until SIGINT or SIGTERM: it stops accepting, lets the
//! running requests and background rounds finish within `[server] shutdown_grace_seconds`,
//! cancels what is still running after that, gives back every lease and exits 0.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::auth::{ADMIN_TOKEN_ENV, Tokens};
use crate::api::{self, Api};
use crate::app::App;
use crate::background;
use crate::config::Config;
use crate::failure::Failure;
use crate::out;
use crate::shutdown::Interrupt;

/// Arguments of `serve`.
pub use crate::cli::ServeArgs as Args;

/// Serves until a signal; `Ok` after a graceful stop.
pub async fn run(
    args: Args,
    cfg: Config,
    interrupt: impl Future<Output = Interrupt>,
) -> Result<(), Failure> {
    let bind = args.bind.unwrap_or(cfg.server.bind);
    let admin = std::env::var(ADMIN_TOKEN_ENV).ok();
    let tokens = Tokens::new(&cfg.api_tokens, admin.as_deref());
    refuse_open_bind(&tokens, bind)?;
    let metrics = api::metrics::install()
        .map_err(|e| Failure::Runtime(format!("cannot install the metrics recorder: {e}")))?;
    let server = cfg.server.clone();
    let tasks = background::tasks(&cfg.background);
    let app = Arc::new(App::build(cfg, false).await?);
    let result = serve(&app, tokens, metrics, &server, tasks, bind, interrupt).await;
    app.shutdown().await;
    result
}

/// With no token configured at all, anyone who reaches the port acts as admin
/// ([`Tokens::caller`]): only this host may then reach it.
fn refuse_open_bind(tokens: &Tokens, bind: SocketAddr) -> Result<(), Failure> {
    if tokens.is_empty() && !bind.ip().is_loopback() {
        return Err(Failure::Input(format!(
            "serve: refusing to listen on {bind}, which is not a loopback address, with no API token configured — add [[api_tokens]] (\"tradewarden token new\" prints one) or set ${ADMIN_TOKEN_ENV}, or bind 127.0.0.1"
        )));
    }
    Ok(())
}

/// Settles, binds, serves and background-works until `interrupt`, then stops within the
/// grace.
async fn serve(
    app: &Arc<App>,
    tokens: Tokens,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    server: &crate::config::ServerSettings,
    tasks: Vec<background::Periodic>,
    bind: SocketAddr,
    interrupt: impl Future<Output = Interrupt>,
) -> Result<(), Failure> {
    settle(app).await?;
    let listener = TcpListener::bind(bind).await.map_err(|e| {
        Failure::Runtime(format!(
            "cannot listen on {bind}: {e} — pick another address with --bind or [server] bind"
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("cannot read the bound address: {e}")))?;
    let (stop_tx, stop) = watch::channel(false);
    let (abort_tx, aborted) = watch::channel(false);
    let api = Api::new(app.clone(), tokens, Some(metrics.clone()), server, aborted);
    let upkeep = tokio::spawn(upkeep(metrics));
    let mut background = background::start(app, tasks, &stop);
    let mut graceful = stop.clone();
    let http = tokio::spawn(
        axum::serve(listener, api::router(api))
            .with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|s| *s).await;
            })
            .into_future(),
    );
    tracing::info!("listening on http://{addr}");
    out::stdout(&format!("listening on http://{addr}\n"));
    let signal = interrupt.await;
    tracing::info!(
        "{} received: no new requests; waiting up to {} s for the running work",
        signal.name(),
        server.shutdown_grace.as_secs()
    );
    let _ = stop_tx.send(true);
    let drained = async {
        let _ = http.await;
        while background.join_next().await.is_some() {}
    };
    if tokio::time::timeout(server.shutdown_grace, drained)
        .await
        .is_err()
    {
        tracing::warn!("the shutdown grace is over: cancelling the work still running");
        let _ = abort_tx.send(true);
        background.abort_all();
        // The cancelled requests answer 503 at once; give them a moment to be written.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    upkeep.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Settles orders a stopped predecessor left in flight before taking new work.
async fn settle(app: &App) -> Result<(), Failure> {
    let report = app.manager.reconcile().await?;
    if !report.settled.is_empty() || !report.findings.is_empty() {
        tracing::info!(
            settled = report.settled.len(),
            findings = report.findings.len(),
            "reconciled before serving"
        );
    }
    Ok(())
}

/// Drains the recorder's histograms now and then, as its documentation asks of a recorder
/// installed without its own exporter.
async fn upkeep(handle: metrics_exporter_prometheus::PrometheusHandle) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}
