//! Startup reconciliation (B3): settle every order left `submitting`, then compare each
//! account's broker positions with what the open transactions hold. A difference is
//! reported (WARNING, a stored finding, a metric) and left for a person to decide.
//!
//! A position that may be changing while reconciliation looks is not compared: a symbol with
//! an order the broker may still be executing, or with an active transaction of an expert
//! whose run holds its lock (the run may be between the broker's fill and storing it). Such
//! a symbol is reported `in_flight`, never as a finding.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;
use tradewarden_domain::{Order, UseCase};

use super::TradeManager;
use crate::error::EngineError;
use crate::locks::{LockSubject, ProcessingGuard};
use crate::metrics as m;
use crate::ports::{BrokerError, BrokerPosition, Finding, InFlightReason};
use crate::report::{InFlight, ReconcileReport, Settled, SettledOrder};

/// One account as reconciliation saw it, all read while its experts' runs were excluded.
struct AccountSnapshot {
    positions: Result<Vec<BrokerPosition>, BrokerError>,
    held: HashMap<String, Decimal>,
    in_flight: BTreeMap<String, InFlightReason>,
}

impl TradeManager {
    /// Settles every order left `submitting`, under its expert's processing lock, then
    /// compares every account's positions. Differences are never adopted, never deleted.
    pub async fn reconcile(&self) -> Result<ReconcileReport, EngineError> {
        let mut report = ReconcileReport {
            settled: self.settle_all_in_flight().await?,
            ..ReconcileReport::default()
        };
        let mut accounts: Vec<&String> = self.brokers.keys().collect();
        accounts.sort();
        for account in accounts {
            let (findings, in_flight) = self.reconcile_account(account).await?;
            report.findings.extend(findings);
            report.in_flight.extend(in_flight);
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
    /// account's refresh lock; a failed positions fetch is never acted on. Symbols whose
    /// positions may be changing are returned apart, uncompared.
    async fn reconcile_account(
        &self,
        account: &str,
    ) -> Result<(Vec<Finding>, Vec<InFlight>), EngineError> {
        let subject = LockSubject::Account {
            account: account.to_string(),
        };
        let Some(guard) = self.locks.acquire_subject(subject).await else {
            return Ok(Default::default());
        };
        let snapshot = self.snapshot(account).await;
        guard.release().await;
        let snapshot = snapshot?;
        let positions = match snapshot.positions {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("reconcile {account}: cannot read broker positions: {e}");
                return Ok(Default::default());
            }
        };
        let found = self.differences(account, positions, snapshot.held, &snapshot.in_flight);
        if !found.is_empty() {
            self.store.record_findings(&found).await?;
        }
        let in_flight = snapshot
            .in_flight
            .into_iter()
            .map(|(symbol, reason)| InFlight {
                account: account.to_string(),
                symbol,
                reason,
            })
            .collect();
        Ok((found, in_flight))
    }

    /// Reads the broker's positions, then what the store holds and what is in flight, while
    /// holding the enter_market lock of every expert of the account that is free: none of
    /// their runs is then between a fill and storing it. An expert whose run holds its lock
    /// is `busy`: its symbols are in flight. (The broker is read first: a fill it shows was
    /// stored as an intent before, so the store read after it knows the symbol.)
    async fn snapshot(&self, account: &str) -> Result<AccountSnapshot, EngineError> {
        let broker = self.broker(account)?;
        let mut guards: Vec<ProcessingGuard> = Vec::new();
        let mut busy: Vec<i64> = Vec::new();
        for e in self
            .settings
            .experts
            .values()
            .filter(|e| e.account == account)
        {
            match self.locks.acquire(e.id, UseCase::EnterMarket).await {
                Some(g) => guards.push(g),
                None => busy.push(e.id),
            }
        }
        let positions = broker.positions().await;
        let read = async {
            let held = self.store.held_quantities(account).await?;
            let in_flight = self.store.symbols_in_flight(account, &busy).await?;
            Ok::<_, EngineError>((held, in_flight))
        }
        .await;
        for g in guards {
            g.release().await;
        }
        let (held, in_flight) = read?;
        Ok(AccountSnapshot {
            positions,
            held,
            in_flight,
        })
    }

    /// Every symbol not in flight whose broker quantity differs from what the transactions
    /// hold.
    fn differences(
        &self,
        account: &str,
        positions: Vec<BrokerPosition>,
        held: HashMap<String, Decimal>,
        in_flight: &BTreeMap<String, InFlightReason>,
    ) -> Vec<Finding> {
        let broker_qty: HashMap<String, Decimal> = positions
            .into_iter()
            .map(|p| (p.symbol, p.quantity))
            .collect();
        let symbols: BTreeSet<&String> = held
            .keys()
            .chain(broker_qty.keys())
            .filter(|s| !in_flight.contains_key(*s))
            .collect();
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
