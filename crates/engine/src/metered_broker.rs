//! A broker that times every call it passes on (B5): the
//! `tradewarden_broker_request_seconds{broker, operation}` histogram, in one place for every
//! broker kind instead of a timer in each broker.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::metrics as m;
use crate::ports::{
    AcceptsQuotes, AccountSnapshot, Broker, BrokerError, BrokerOrder, BrokerPosition, Holdings,
    OrderRequest,
};

/// The histogram handle of each operation, registered once: building a labelled key on
/// every call would cost more than reading the clock twice.
struct Timers {
    account: metrics::Histogram,
    quotes: metrics::Histogram,
    submit: metrics::Histogram,
    submit_batch: metrics::Histogram,
    lookup: metrics::Histogram,
    lookup_batch: metrics::Histogram,
    cancel: metrics::Histogram,
    replace: metrics::Histogram,
    positions: metrics::Histogram,
    holdings: metrics::Histogram,
}

impl Timers {
    fn of(broker: &'static str) -> Self {
        let h = |operation: &'static str| metrics::histogram!(m::BROKER_REQUEST_SECONDS, "broker" => broker, "operation" => operation);
        Timers {
            account: h("account"),
            quotes: h("quotes"),
            submit: h("submit"),
            submit_batch: h("submit_batch"),
            lookup: h("lookup"),
            lookup_batch: h("lookup_batch"),
            cancel: h("cancel"),
            replace: h("replace"),
            positions: h("positions"),
            holdings: h("holdings"),
        }
    }
}

/// Wraps a broker and records how long each of its calls took, failed ones too, labelled
/// with the broker's kind ([`Broker::kind`]) and the operation.
pub struct MeteredBroker {
    inner: Arc<dyn Broker>,
    timers: Timers,
}

impl MeteredBroker {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn Broker>) -> Arc<dyn Broker> {
        let timers = Timers::of(inner.kind());
        Arc::new(MeteredBroker { inner, timers })
    }
}

/// Awaits `call` and records its duration in `timer`.
async fn timed<T>(timer: &metrics::Histogram, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    timer.record(started.elapsed().as_secs_f64());
    out
}

#[async_trait]
impl Broker for MeteredBroker {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn account(&self) -> Result<AccountSnapshot, BrokerError> {
        timed(&self.timers.account, self.inner.account()).await
    }

    async fn quotes(&self, symbols: &[String]) -> Result<HashMap<String, Decimal>, BrokerError> {
        timed(&self.timers.quotes, self.inner.quotes(symbols)).await
    }

    async fn submit(&self, order: &OrderRequest) -> Result<BrokerOrder, BrokerError> {
        timed(&self.timers.submit, self.inner.submit(order)).await
    }

    async fn submit_batch(&self, orders: &[OrderRequest]) -> Vec<Result<BrokerOrder, BrokerError>> {
        timed(&self.timers.submit_batch, self.inner.submit_batch(orders)).await
    }

    async fn order_by_client_id(
        &self,
        client_order_id: &str,
    ) -> Result<Option<BrokerOrder>, BrokerError> {
        timed(
            &self.timers.lookup,
            self.inner.order_by_client_id(client_order_id),
        )
        .await
    }

    async fn orders_by_client_ids(
        &self,
        client_order_ids: &[String],
    ) -> Vec<Result<Option<BrokerOrder>, BrokerError>> {
        timed(
            &self.timers.lookup_batch,
            self.inner.orders_by_client_ids(client_order_ids),
        )
        .await
    }

    async fn cancel(&self, client_order_id: &str) -> Result<BrokerOrder, BrokerError> {
        timed(&self.timers.cancel, self.inner.cancel(client_order_id)).await
    }

    // The capabilities and the calls with a default in the trait are forwarded too: left
    // to their defaults here, the wrapped broker would lose them (a stop move at Alpaca
    // would go back to cancel-then-place).
    fn attaches_exits(&self) -> bool {
        self.inner.attaches_exits()
    }

    fn can_replace_legs(&self) -> bool {
        self.inner.can_replace_legs()
    }

    async fn replace_order(
        &self,
        resting: &str,
        with: &OrderRequest,
    ) -> Result<BrokerOrder, BrokerError> {
        timed(
            &self.timers.replace,
            self.inner.replace_order(resting, with),
        )
        .await
    }

    async fn positions(&self) -> Result<Vec<BrokerPosition>, BrokerError> {
        timed(&self.timers.positions, self.inner.positions()).await
    }

    async fn holdings(&self) -> Result<Holdings, BrokerError> {
        timed(&self.timers.holdings, self.inner.holdings()).await
    }

    /// Quotes we feed a simulated broker are not a broker request: passed on untimed.
    fn accepts_quotes(&self) -> Option<&dyn AcceptsQuotes> {
        self.inner.accepts_quotes()
    }
}
