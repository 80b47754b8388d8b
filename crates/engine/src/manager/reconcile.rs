//! Startup reconciliation (B3): settle every order left `submitting`, then compare each
//! account's broker positions with what the open transactions hold. A difference is
//! reported (WARNING, a stored finding, a metric) and left for a person to decide.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use tradewarden_domain::{Order, UseCase};

use super::TradeManager;
use crate::error::EngineError;
use crate::locks::LockSubject;
use crate::metrics as m;
use crate::ports::{BrokerPosition, Finding};
use crate::report::{ReconcileReport, Settled, SettledOrder};

impl TradeManager {
    /// Settles every order left `submitting`, under its expert's processing lock, then
    /// compares every account's positions. Differences are never adopted, never deleted.
    pub async fn reconcile(&self) -> Result<ReconcileReport, EngineError> {
        let mut report = ReconcileReport {
            settled: self.settle_all_in_flight().await?,
            findings: Vec::new(),
        };
        let mut accounts: Vec<&String> = self.brokers.keys().collect();
        accounts.sort();
        for account in accounts {
            report
                .findings
                .extend(self.reconcile_account(account).await?);
        }
        Ok(report)
    }

    /// Settles the in-flight orders of every expert, each under that expert's lock; an
    /// expert whose run holds the lock settles its own (`busy`).
    async fn settle_all_in_flight(&self) -> Result<Vec<SettledOrder>, EngineError> {
        let mut by_expert: BTreeMap<i64, Vec<Order>> = BTreeMap::new();
        for o in self.store.orders_in_flight(None).await? {
            by_expert.entry(o.expert_id).or_default().push(o);
        }
        let mut settled = Vec::new();
        for (expert_id, orders) in by_expert {
            let Some(guard) = self.locks.acquire(expert_id, UseCase::EnterMarket).await else {
                settled.extend(
                    orders
                        .into_iter()
                        .map(|o| SettledOrder::of(o, Settled::Busy)),
                );
                continue;
            };
            let result = async {
                let mut done = Vec::with_capacity(orders.len());
                for order in orders {
                    let broker = self.broker(&order.account)?;
                    done.push(self.settle(broker.as_ref(), &guard, order).await?);
                }
                Ok::<_, EngineError>(done)
            }
            .await;
            guard.release().await;
            settled.extend(result?);
        }
        Ok(settled)
    }

    /// Compares one account's broker positions with its open transactions, under the
    /// account's refresh lock; a failed positions fetch is never acted on.
    async fn reconcile_account(&self, account: &str) -> Result<Vec<Finding>, EngineError> {
        let broker = self.broker(account)?;
        let subject = LockSubject::Account {
            account: account.to_string(),
        };
        let Some(guard) = self.locks.acquire_subject(subject).await else {
            return Ok(Vec::new());
        };
        let positions = broker.positions().await;
        let held = self.store.held_quantities(account).await;
        guard.release().await;
        let positions = match positions {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("reconcile {account}: cannot read broker positions: {e}");
                return Ok(Vec::new());
            }
        };
        let found = self.differences(account, positions, held?);
        if !found.is_empty() {
            self.store.record_findings(&found).await?;
        }
        Ok(found)
    }

    /// Every symbol whose broker quantity differs from what the transactions hold.
    fn differences(
        &self,
        account: &str,
        positions: Vec<BrokerPosition>,
        held: HashMap<String, Decimal>,
    ) -> Vec<Finding> {
        let broker_qty: HashMap<String, Decimal> = positions
            .into_iter()
            .map(|p| (p.symbol, p.quantity))
            .collect();
        let symbols: BTreeSet<&String> = held.keys().chain(broker_qty.keys()).collect();
        let mut found = Vec::new();
        for symbol in symbols {
            let b = broker_qty.get(symbol).copied().unwrap_or_default();
            let r = held.get(symbol).copied().unwrap_or_default();
            if b == r {
                continue;
            }
            let detail = format!(
                "broker holds {} {symbol}, open transactions hold {}; left for a person to decide",
                b.normalize(),
                r.normalize()
            );
            tracing::warn!("RECONCILE: account {account}: {detail}");
            metrics::counter!(m::RECONCILE_FINDINGS).increment(1);
            found.push(Finding {
                account: account.to_string(),
                symbol: symbol.clone(),
                broker_quantity: b,
                recorded_quantity: r,
                detail,
                found_at: self.clock.now(),
            });
        }
        found
    }
}
