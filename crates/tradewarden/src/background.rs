//! `serve`'s periodic work: the refresh of every account each `[processing]
//! refresh_interval_seconds`, `process --all` each `process_interval_seconds` when set, and
//! the sweep failing analysis jobs pending longer than `job_timeout_seconds` (each
//! `min(job_timeout_seconds, 60 s)`). Every instance runs them; the engine's leases make
//! refresh and runs single-flight across instances (a refresh takes `refresh_account_{name}`
//! leases, a run its expert's lease, and a contender skips), and a job ends once: two
//! instances sweeping at once each fail the jobs they got to first, the other skips them.
//!
//! A periodic task is one [`Periodic`]: a new one is one more entry in [`tasks`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tradewarden_engine::RunTrigger;

use crate::app::App;
use crate::cmd::process::{UseCases, process_all};
use crate::config::Background;

/// The work of one periodic task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `refresh`: every account's working orders asked about.
    Refresh,
    /// `process --all`: every expert's runs, enter_market then open_positions.
    ProcessAll,
    /// Analysis jobs pending longer than `[processing] job_timeout_seconds` failed (the
    /// last of a use case starting its run, trigger `jobs`).
    JobTimeouts,
}

/// A task run every `every`, the first time one period after start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    pub work: Work,
    pub every: Duration,
}

/// The periodic tasks the configuration asks for.
pub fn tasks(cfg: &Background) -> Vec<Periodic> {
    let mut tasks = vec![Periodic {
        work: Work::Refresh,
        every: cfg.refresh_interval,
    }];
    if let Some(every) = cfg.process_interval {
        tasks.push(Periodic {
            work: Work::ProcessAll,
            every,
        });
    }
    tasks.push(Periodic {
        work: Work::JobTimeouts,
        every: cfg.job_sweep_interval,
    });
    tasks
}

/// Starts every task on `app`; each stops before its next round once `stop` turns true (a
/// round under way is finished: `serve` bounds that by its shutdown grace).
pub fn start(app: &Arc<App>, tasks: Vec<Periodic>, stop: &watch::Receiver<bool>) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for task in tasks {
        set.spawn(every(app.clone(), task, stop.clone()));
    }
    set
}

/// Runs `task` every period until `stop`.
async fn every(app: Arc<App>, task: Periodic, mut stop: watch::Receiver<bool>) {
    let start = tokio::time::Instant::now() + task.every;
    let mut tick = tokio::time::interval_at(start, task.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => return,
            _ = tick.tick() => round(&app, task.work).await,
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, never held across an await.
    let _ = stop.wait_for(|s| *s).await;
}

/// One round of `work`; a failure is logged, and the next round tries again.
async fn round(app: &App, work: Work) {
    match work {
        Work::Refresh => match app.manager.refresh().await {
            Ok(r) => tracing::debug!(
                orders_updated = r.orders_updated,
                transactions_opened = r.transactions_opened,
                transactions_closed = r.transactions_closed,
                skipped = r.skipped_accounts.len(),
                "background refresh"
            ),
            Err(e) => tracing::warn!("background refresh failed: {e}"),
        },
        Work::ProcessAll => {
            let reports = process_all(app, None, UseCases::BOTH, RunTrigger::Schedule).await;
            tracing::info!(runs = reports.len(), "background process --all");
        }
        Work::JobTimeouts => fail_timed_out_jobs(app).await,
    }
}

/// Fails the jobs pending past their timeout; the runs their endings start run here too.
async fn fail_timed_out_jobs(app: &App) {
    let now = app.manager.clock().now();
    match app.manager.fail_timed_out_jobs(now).await {
        Ok(ended) if ended.is_empty() => {}
        Ok(ended) => tracing::info!(
            jobs_failed = ended.len(),
            runs_started = ended.iter().filter(|e| e.run.is_some()).count(),
            "background job timeouts"
        ),
        Err(e) => tracing::warn!("background job timeouts failed: {e}"),
    }
}
