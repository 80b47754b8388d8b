//! `process --all` keeps going when one expert's run fails: that expert gets a `failed`
//! report naming the error, the others are processed.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use tradewarden_brokers::PaperBroker;
use tradewarden_domain::Action;
use tradewarden_engine::ports::{AccountSnapshot, BrokerPosition};
#[allow(unused_imports)]
use tradewarden_engine::ports::{
    JournalStore, LeaseStore, PaperLedger, PositionStore, QueryStore, RecommendationStore,
};
use tradewarden_engine::{
    AccountSettings, Broker, BrokerError, BrokerOrder, OrderRequest, RunStatus, Store, SystemClock,
    TradeManager,
};

/// A broker that cannot be reached.
struct Down;

#[async_trait]
impl Broker for Down {
    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        Err(BrokerError::Unavailable("connection refused".into()))
    }
    async fn quotes(&self, _: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        Err(BrokerError::Unavailable("connection refused".into()))
    }
    async fn submit(&self, _: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        Err(BrokerError::Unavailable("connection refused".into()))
    }
    async fn order_by_client_id(&self, _: &str) -> Result<Option<BrokerOrder>, BrokerError> {
        Err(BrokerError::Unavailable("connection refused".into()))
    }
    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        Err(BrokerError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn one_failing_expert_does_not_stop_the_others() {
    let db = TestDb::sqlite();
    let store = db.store().await;
    store
        .open_paper_accounts(&[("paper".into(), dec!(100000))])
        .await
        .unwrap();
    let mut s = settings(vec![expert(1), expert(2), expert(3)], dec!(100000));
    s.accounts.insert(
        "down".into(),
        AccountSettings {
            name: "down".into(),
            minimum_equity_threshold_percent: dec!(5),
        },
    );
    s.experts.get_mut(&2).unwrap().account = "down".into();
    let clock = Arc::new(SystemClock);
    let brokers: HashMap<String, Arc<dyn Broker>> = [
        (
            "paper".to_string(),
            Arc::new(PaperBroker::new("paper", store.clone(), clock.clone())) as Arc<dyn Broker>,
        ),
        ("down".to_string(), Arc::new(Down) as Arc<dyn Broker>),
    ]
    .into();
    let manager = TradeManager::new(s.settings, store.clone() as Arc<dyn Store>, brokers, clock);
    manager
        .import(&[
            rec(1, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100)),
            rec(2, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100)),
            rec(3, "AAPL", Action::Buy, dec!(80), dec!(10), dec!(100)),
        ])
        .await
        .unwrap();
    let reports = manager
        .process_all(None, tradewarden_engine::RunTrigger::Cli)
        .await;
    let statuses: Vec<(i64, RunStatus)> = reports.iter().map(|r| (r.expert_id, r.status)).collect();
    assert_eq!(
        statuses,
        [
            (1, RunStatus::Processed),
            (2, RunStatus::Failed),
            (3, RunStatus::Processed)
        ]
    );
    assert!(
        reports[1]
            .error
            .as_deref()
            .unwrap()
            .contains("connection refused"),
        "{:?}",
        reports[1]
    );
    assert_eq!(
        (reports[0].counts.ordered, reports[2].counts.ordered),
        (1, 1)
    );
    // The JSON names the error only where there is one.
    let json = serde_json::to_value(&reports).unwrap();
    assert_eq!(json[1]["status"], "failed");
    assert!(json[0].get("error").is_none());
}
