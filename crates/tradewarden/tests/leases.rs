//! Cross-process processing locks (B2, I2, I3): two managers sharing one database stand in
//! for two processes; leases exclude them, stay held while a long run renews them, and a run
//! that lost its lease stops before its next broker call. A holder provably dead (its pid
//! gone or reused on this host, its host rebooted, its PostgreSQL session ended) loses its
//! lease at once; a live one never; one that cannot be judged (another host on SQLite) at
//! expiry.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SubsecRound, Utc};
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tokio::sync::Notify;
use tradewarden::host::ProcFs;
use tradewarden_domain::Action;
use tradewarden_engine::ports::{AccountSnapshot, BrokerPosition, ListFilter};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::ports::{LeaseAttempt, LeaseHolder, ProcessState, ProcessTable};
use tradewarden_engine::{
    Broker, BrokerError, BrokerOrder, Clock, EngineError, OrderRequest, RunStatus, SystemClock,
};

/// Delegates to the paper broker; the first `account()` call waits until the test opens the
/// gate, after telling the test it got there.
struct Gate {
    inner: Arc<dyn Broker>,
    entered: Arc<Notify>,
    open: Arc<Notify>,
    first: parking_lot::Mutex<bool>,
}

impl Gate {
    fn wrap(
        entered: Arc<Notify>,
        open: Arc<Notify>,
    ) -> impl FnOnce(Arc<dyn Broker>) -> Arc<dyn Broker> {
        move |inner| {
            Arc::new(Gate {
                inner,
                entered,
                open,
                first: parking_lot::Mutex::new(true),
            })
        }
    }
}

#[async_trait]
impl Broker for Gate {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        let first = std::mem::replace(&mut *self.first.lock(), false);
        if first {
            self.entered.notify_one();
            self.open.notified().await;
        }
        self.inner.account().await
    }
    async fn quotes(
        &self,
        symbols: &[String],
    ) -> Result<std::collections::HashMap<String, Decimal>, BrokerError> {
        self.inner.quotes(symbols).await
    }
    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        self.inner.submit(order).await
    }
    async fn order_by_client_id(&self, id: &str) -> Result<Option<BrokerOrder>, BrokerError> {
        self.inner.order_by_client_id(id).await
    }
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        self.inner.positions().await
    }
    fn accepts_quotes(&self) -> Option<&dyn tradewarden_engine::ports::AcceptsQuotes> {
        self.inner.accepts_quotes()
    }
}

fn quick(mut s: TestSettings) -> TestSettings {
    s.lock_timeout = Duration::from_millis(50);
    s
}

/// A holder on another host, with nothing the database can tell about it: only expiry frees
/// its lease.
fn on_another_host(owner: &str) -> LeaseHolder {
    let mut h = LeaseHolder::this_process(owner, &ProcFs::new(), None);
    if let Some(host) = h.host.as_mut() {
        host.host = "another-host".into();
    }
    h.pid = Some(gone_pid());
    h
}

/// The pid of a process that has exited and been reaped.
fn gone_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("run true");
    let pid = child.id();
    child.wait().unwrap();
    pid
}

async fn a_dead_holders_lease_expires(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let clock = ManualClock::at(Utc::now());
    let ttl = Duration::from_secs(30);
    let h = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        plain,
        "survivor",
        ttl,
        clock.clone(),
    )
    .await;
    h.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    // A process on another host that took the lease and died: its row stays, nobody renews
    // it, and nothing proves its death (its pid means nothing here; SQLite has no session
    // signal, and on PostgreSQL it recorded no liveness key).
    let dead = on_another_host("dead");
    assert_eq!(
        h.store
            .try_acquire_lease("expert_1_usecase_enter_market", &dead, clock.now(), ttl)
            .await
            .unwrap(),
        LeaseAttempt::Acquired
    );
    // Removing the lease check, or judging another host's pid by this host's /proc, would
    // let this run proceed.
    assert_eq!(
        h.manager
            .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
            .unwrap()
            .status,
        RunStatus::SkippedLocked
    );
    clock.advance(chrono::Duration::seconds(29));
    assert_eq!(
        h.manager
            .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
            .unwrap()
            .status,
        RunStatus::SkippedLocked
    );
    clock.advance(chrono::Duration::seconds(2));
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(
        r.status,
        RunStatus::Processed,
        "the dead holder's lease expired"
    );
    assert_eq!(r.counts.ordered, 1);
}

#[tokio::test]
async fn sqlite_a_dead_holders_lease_expires() {
    a_dead_holders_lease_expires(DbKind::Sqlite).await;
}
#[tokio::test]
async fn postgres_a_dead_holders_lease_expires() {
    a_dead_holders_lease_expires(DbKind::Postgres).await;
}

/// Waits (bounded, polling the database) until the lease of expert 1 expires exactly `ttl`
/// after `clock`'s now: the renewer has renewed it at the clock's current time.
async fn renewed_at_now(
    store: &tradewarden_store::SqlStore,
    clock: &ManualClock,
    ttl: Duration,
) -> bool {
    let want = clock.now() + chrono::Duration::from_std(ttl).unwrap();
    for _ in 0..1000 {
        let rows = store
            .pool()
            .fetch(
                "SELECT expires_at FROM leases WHERE key = 'expert_1_usecase_enter_market'",
                &[],
            )
            .await
            .unwrap();
        if rows.first().map(|r| r.time("expires_at").unwrap()) == Some(want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

// Catches: a lease that is not renewed while its run lasts (B would take the key over once
// the injected clock passes the first expiry). Time is the injected clock's: the test moves it
// and waits for the renewal it expects, so no outcome depends on how fast anything runs.
async fn renewal_keeps_a_long_runs_lock(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let ttl = Duration::from_millis(300);
    let clock = ManualClock::at(Utc::now().trunc_subsecs(3));
    let (entered, open) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let a = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        Gate::wrap(entered.clone(), open.clone()),
        "process-a",
        ttl,
        clock.clone(),
    )
    .await;
    let b = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        plain,
        "process-b",
        ttl,
        clock.clone(),
    )
    .await;
    a.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let ma = a.manager.clone();
    let long_run = tokio::spawn(async move {
        ma.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    entered.notified().await;
    // Four lease lifetimes on the injected clock: without renewal B would take the key.
    for step in 0..6 {
        clock.advance(chrono::Duration::milliseconds(200));
        assert!(
            renewed_at_now(&a.store, &clock, ttl).await,
            "step {step}: the lease was not renewed"
        );
        assert_eq!(
            b.manager
                .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
                .await
                .unwrap()
                .status,
            RunStatus::SkippedLocked
        );
    }
    open.notify_one();
    let r = long_run.await.unwrap().unwrap();
    assert_eq!((r.status, r.counts.ordered), (RunStatus::Processed, 1));
    // Released at the end: B gets it at once and finds the position taken.
    let r = b
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.counts.duplicate_position),
        (RunStatus::Processed, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_renewal_keeps_a_long_runs_lock() {
    renewal_keeps_a_long_runs_lock(DbKind::Sqlite).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_renewal_keeps_a_long_runs_lock() {
    renewal_keeps_a_long_runs_lock(DbKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lease_stops_before_the_next_broker_call() {
    let db = TestDb::sqlite();
    let ttl = Duration::from_millis(300);
    let clock = ManualClock::at(Utc::now().trunc_subsecs(3));
    let (entered, open) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let a = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        Gate::wrap(entered.clone(), open.clone()),
        "process-a",
        ttl,
        clock.clone(),
    )
    .await;
    a.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let ma = a.manager.clone();
    let run = tokio::spawn(async move {
        ma.process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
    });
    entered.notified().await;
    // Another owner takes the key over (as if A had stalled past its expiry).
    a.store
        .pool()
        .execute(
            "UPDATE leases SET owner = 'thief' WHERE key = 'expert_1_usecase_enter_market'",
            &[],
        )
        .await
        .unwrap();
    // The injected clock passes A's last renewal: whether or not A's renewer has run since
    // (it would find the key taken), A can no longer count on the lease.
    clock.advance(chrono::Duration::from_std(ttl).unwrap() + chrono::Duration::milliseconds(1));
    open.notify_one();
    let err = run.await.unwrap().expect_err("the run must stop");
    assert!(matches!(err, EngineError::LeaseLost(_)), "{err}");
    // Nothing reached the broker or the book: without the check it would have ordered.
    assert!(
        a.store
            .orders(&ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        a.store
            .load_paper_order(
                "paper",
                &format!("tw-{}-1-entry", a.store.installation().as_str())
            )
            .await
            .unwrap()
            .is_none()
    );
    // The thief's lease is untouched by A's exit.
    let rows = a
        .store
        .pool()
        .fetch("SELECT owner FROM leases", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].text("owner").unwrap(), "thief");
}

/// A live process on this host other than the test (a `sleep`), killed and reaped on drop.
struct Sleeper(std::process::Child);

impl Sleeper {
    fn start() -> Sleeper {
        let child = std::process::Command::new("sleep")
            .arg("600")
            .spawn()
            .expect("run sleep");
        Sleeper(child)
    }

    /// The sleeper as a lease holder: its real pid and start time, this host.
    fn holder(&self, owner: &str) -> LeaseHolder {
        let procs = ProcFs::new();
        let pid = self.0.id();
        let ProcessState::Running { start_time } = procs.process(pid) else {
            panic!("the sleeper runs");
        };
        LeaseHolder {
            pid: Some(pid),
            start_time: Some(start_time),
            ..LeaseHolder::this_process(owner, &procs, None)
        }
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lease_key(expert_id: i64) -> String {
    format!("expert_{expert_id}_usecase_enter_market")
}

/// The owner of an expert's lease row, if there is one.
async fn lease_owner(h: &Harness, expert_id: i64) -> Option<String> {
    let rows = h
        .store
        .pool()
        .fetch(
            "SELECT owner FROM leases WHERE key = $1",
            &[lease_key(expert_id).into()],
        )
        .await
        .unwrap();
    rows.first().map(|r| r.text("owner").unwrap())
}

/// A contender on `db` with experts `1..=experts`, each with a confident BUY of its own
/// symbol, and leases far longer than the test: only a take-over lets it run.
async fn contender(db: &TestDb, experts: i64) -> Harness {
    let h = harness_with_leases(
        db,
        quick(settings((1..=experts).map(expert).collect(), dec!(1000000))),
        plain,
        "contender",
        Duration::from_secs(300),
        Arc::new(SystemClock),
    )
    .await;
    let recs: Vec<_> = (1..=experts)
        .map(|id| {
            rec(
                id,
                &format!("S{id}"),
                Action::Buy,
                dec!(80),
                dec!(10),
                dec!(100),
            )
        })
        .collect();
    h.manager.import(&recs).await.unwrap();
    h
}

async fn only_a_provably_dead_holder_is_taken_over(kind: DbKind) {
    let db = TestDb::new(kind).await;
    let me = LeaseHolder::this_process("x", &ProcFs::new(), None);
    let my_start = me.start_time.expect("this process's start time");
    let mut sleeper = Sleeper::start();
    let rebooted = {
        let mut h = LeaseHolder::this_process("rebooted", &ProcFs::new(), None);
        h.host.as_mut().unwrap().boot_id = Some("an-earlier-boot".into());
        h
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, LeaseHolder, RunStatus)> = vec![
        // Catches: taking a same-host lease over without checking that its pid is gone.
        ("this very process, as another owner", LeaseHolder::this_process("twin", &ProcFs::new(), None), RunStatus::SkippedLocked),
        ("a live process on this host", sleeper.holder("sleeper"), RunStatus::SkippedLocked),
        // Catches: comparing pids without their start times.
        ("a pid now reused by a newer process", LeaseHolder { start_time: Some(my_start - 1), ..LeaseHolder::this_process("reused", &ProcFs::new(), None) }, RunStatus::Processed),
        // Catches: no take-over at all (waiting for expiry, 300 s away).
        ("a pid that is gone", LeaseHolder { pid: Some(gone_pid()), ..LeaseHolder::this_process("gone", &ProcFs::new(), None) }, RunStatus::Processed),
        // Catches: ignoring the boot id (the pid would look alive).
        ("a holder from before a reboot", rebooted, RunStatus::Processed),
        // Catches: judging another host's pid by this host's process table.
        ("another host, no liveness key", on_another_host("remote"), RunStatus::SkippedLocked),
    ];
    let h = contender(&db, cases.len() as i64).await;
    let now = Utc::now();
    for (i, (name, holder, want)) in cases.iter().enumerate() {
        let id = i as i64 + 1;
        let key = lease_key(id);
        let got = h
            .store
            .try_acquire_lease(&key, holder, now, Duration::from_secs(300));
        assert_eq!(got.await.unwrap(), LeaseAttempt::Acquired, "{name}");
        let r = h
            .manager
            .process_enter_market(id, None, tradewarden_engine::RunTrigger::Cli)
            .await
            .unwrap();
        assert_eq!(r.status, *want, "{name}");
        if *want == RunStatus::Processed {
            assert_eq!(r.counts.ordered, 1, "{name}");
            assert_eq!(
                lease_owner(&h, id).await,
                None,
                "{name}: released after the run"
            );
        } else {
            assert_eq!(
                lease_owner(&h, id).await.as_deref(),
                Some(holder.owner.as_str()),
                "{name}"
            );
        }
    }
    // The live holder dies: its lease is taken over at once, long before its expiry.
    sleeper.stop();
    let r = h
        .manager
        .process_enter_market(2, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!((r.status, r.counts.ordered), (RunStatus::Processed, 1));
}

#[tokio::test]
async fn sqlite_only_a_provably_dead_holder_is_taken_over() {
    only_a_provably_dead_holder_is_taken_over(DbKind::Sqlite).await;
}
#[tokio::test]
async fn postgres_only_a_provably_dead_holder_is_taken_over() {
    only_a_provably_dead_holder_is_taken_over(DbKind::Postgres).await;
}

/// On PostgreSQL a holder on another host is judged by its liveness lock: held, it lives;
/// its connection ended, it is dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_holder_whose_session_ended_is_taken_over() {
    let db = TestDb::postgres().await;
    let h = contender(&db, 1).await;
    let liveness = h.store.hold_liveness().await.unwrap().expect("PostgreSQL");
    let remote = LeaseHolder {
        liveness_key: Some(liveness.key()),
        ..on_another_host("remote")
    };
    let key = lease_key(1);
    let got = h
        .store
        .try_acquire_lease(&key, &remote, Utc::now(), Duration::from_secs(300));
    assert_eq!(got.await.unwrap(), LeaseAttempt::Acquired);
    // Catches: taking over a holder whose session still holds its lock.
    let r = h
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::SkippedLocked);
    // Its connection ends (as when its process dies). The server frees the lock once it has
    // noticed; wait for that, bounded.
    drop(liveness);
    let mut r = r;
    for _ in 0..100 {
        r = h
            .manager
            .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
            .await
            .unwrap();
        if r.status != RunStatus::SkippedLocked {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Catches: not asking the database (the lease expires only in 300 s).
    assert_eq!((r.status, r.counts.ordered), (RunStatus::Processed, 1));
    assert_eq!(lease_owner(&h, 1).await, None);
}

/// Panics in the broker on submit.
struct Panicking(Arc<dyn Broker>);

#[async_trait]
impl Broker for Panicking {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        self.0.account().await
    }
    async fn quotes(
        &self,
        symbols: &[String],
    ) -> Result<std::collections::HashMap<String, Decimal>, BrokerError> {
        self.0.quotes(symbols).await
    }
    async fn submit(&self, _order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        panic!("broker bug");
    }
    async fn order_by_client_id(&self, id: &str) -> Result<Option<BrokerOrder>, BrokerError> {
        self.0.order_by_client_id(id).await
    }
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        self.0.positions().await
    }
    fn accepts_quotes(&self) -> Option<&dyn tradewarden_engine::ports::AcceptsQuotes> {
        self.0.accepts_quotes()
    }
}

#[tokio::test]
async fn a_panicking_run_gives_its_lease_back_at_once() {
    let db = TestDb::sqlite();
    let a = harness_with_leases(
        &db,
        quick(settings(vec![expert(1)], dec!(100000))),
        |b| Arc::new(Panicking(b)),
        "panicking",
        Duration::from_secs(300),
        Arc::new(SystemClock),
    )
    .await;
    a.manager
        .import(&[rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100))])
        .await
        .unwrap();
    let err = a
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Panicked(_)), "{err}");
    // Catches: a panic path that leaves the row (the next run would be skipped for 300 s).
    assert_eq!(lease_owner(&a, 1).await, None);
    let b = contender(&db, 1).await;
    let r = b
        .manager
        .process_enter_market(1, None, tradewarden_engine::RunTrigger::Cli)
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Processed);
}
