//! Benchmark: an uncontended `ProcessingLocks::acquire` + release (drop of the guard), the
//! issue's "lock under 0.1 µs" target, with its parts measured alone (key formatting, the
//! registry lookup, the bare tokio mutex, the metrics and tracing calls) so the figure can be
//! explained. Run: `cargo bench -p tradewarden-engine --bench lock`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tradewarden_domain::{UseCase, lock_key};
use tradewarden_engine::ProcessingLocks;
use tradewarden_engine::metrics as m;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Times `iters` awaited calls of `f` inside one `block_on`, so the runtime's entry cost is
/// not part of the figure.
fn timed<F, Fut>(rt: &tokio::runtime::Runtime, iters: u64, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            f().await;
        }
        start.elapsed()
    })
}

fn bench_lock(c: &mut Criterion) {
    let rt = runtime();
    let locks = ProcessingLocks::new(Duration::from_millis(500));
    let mut g = c.benchmark_group("processing_lock");

    // The real thing, as the engine calls it; no tracing subscriber and no metrics recorder
    // installed (the `tradewarden` binary installs a subscriber at `info`, see below).
    g.bench_function("acquire+release uncontended (no subscriber)", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                let guard = locks.acquire(black_box(1), UseCase::EnterMarket).await;
                black_box(guard.is_some());
                drop(guard);
            })
        })
    });

    // The same with a subscriber like the binary's default (`--log-level info`): the two
    // DEBUG lines are filtered out by the callsite's level check.
    {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::io::sink)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        g.bench_function("acquire+release uncontended (info subscriber)", |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    let guard = locks.acquire(black_box(1), UseCase::EnterMarket).await;
                    black_box(guard.is_some());
                    drop(guard);
                })
            })
        });
    }

    // With `--log-level debug` the acquire and release lines are formatted and written.
    {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(std::io::sink)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        g.bench_function("acquire+release uncontended (debug subscriber)", |b| {
            b.iter_custom(|iters| {
                timed(&rt, iters, || async {
                    let guard = locks.acquire(black_box(1), UseCase::EnterMarket).await;
                    black_box(guard.is_some());
                    drop(guard);
                })
            })
        });
    }
    g.finish();

    // The parts of `acquire`, each alone.
    let mut g = c.benchmark_group("processing_lock_parts");
    g.bench_function("lock_key format (String)", |b| {
        b.iter(|| black_box(lock_key(black_box(1), UseCase::EnterMarket)))
    });
    let registry: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>> =
        parking_lot::Mutex::new(HashMap::new());
    let key = lock_key(1, UseCase::EnterMarket);
    registry
        .lock()
        .insert(key.clone(), Arc::new(tokio::sync::Mutex::new(())));
    g.bench_function("registry lookup + Arc clone", |b| {
        b.iter(|| black_box(registry.lock().get(black_box(key.as_str())).cloned()))
    });
    let mutex = Arc::new(tokio::sync::Mutex::new(()));
    g.bench_function("tokio try_lock_owned + drop", |b| {
        b.iter(|| black_box(mutex.clone().try_lock_owned().is_ok()))
    });
    g.bench_function("Instant::now + elapsed", |b| {
        b.iter(|| {
            let s = Instant::now();
            black_box(s.elapsed().as_secs_f64())
        })
    });
    g.bench_function("metrics histogram + counter (no recorder)", |b| {
        b.iter(|| {
            let uc = UseCase::EnterMarket.as_str();
            metrics::histogram!(m::LOCK_WAIT_SECONDS, "use_case" => uc).record(black_box(0.0));
            metrics::counter!(m::LOCK_ACQUISITIONS, "use_case" => uc, "outcome" => "acquired")
                .increment(1);
        })
    });
    g.bench_function("two tracing::debug! (no subscriber)", |b| {
        b.iter(|| {
            let id = black_box(1);
            tracing::debug!("Acquired processing lock for expert {id} (enter_market)");
            tracing::debug!("Released processing lock for expert {id} (enter_market)");
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_lock
}
criterion_main!(benches);
