//! Keyed processing locks: at most one run per (expert, use case) at a time (S1–S4).
//!
//! The registry maps a key (`expert_{id}_usecase_{use_case}`) to a tokio mutex, created on
//! first use under the registry's own lock (the seed's meta-lock). A contender waits at most
//! the configured timeout, then skips. The guard releases on drop, so every exit path
//! releases: return, `?`, panic unwinding, and a cancelled task dropping its future.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use tradewarden_domain::{UseCase, lock_key};

use crate::metrics as m;

/// The registry of processing locks of one process.
#[derive(Debug)]
pub struct ProcessingLocks {
    /// The meta-lock. A std-style (parking_lot) mutex is right here: it is held only for a
    /// hash-map lookup, never across an `.await`, so an async mutex would only add cost.
    registry: parking_lot::Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    timeout: Duration,
}

/// Proof that the holder is the only run of its (expert, use case) in this process.
/// Dropping it releases the lock and logs the release.
#[derive(Debug)]
pub struct ProcessingGuard {
    _guard: OwnedMutexGuard<()>,
    expert_id: i64,
    use_case: UseCase,
}

impl ProcessingGuard {
    /// The lock key held.
    pub fn key(&self) -> String {
        lock_key(self.expert_id, self.use_case)
    }
}

impl Drop for ProcessingGuard {
    fn drop(&mut self) {
        tracing::debug!(
            "Released processing lock for expert {} ({})",
            self.expert_id,
            self.use_case
        );
    }
}

impl ProcessingLocks {
    /// A registry whose contenders wait at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        ProcessingLocks {
            registry: parking_lot::Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// The configured wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn lock_for(&self, key: &str) -> Arc<AsyncMutex<()>> {
        let mut reg = self.registry.lock();
        if let Some(l) = reg.get(key) {
            return l.clone();
        }
        let l = Arc::new(AsyncMutex::new(()));
        reg.insert(key.to_string(), l.clone());
        l
    }

    /// Number of keys created so far (for tests and metrics).
    pub fn len(&self) -> usize {
        self.registry.lock().len()
    }

    /// Whether no lock was created yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the lock of (expert, use case) within the timeout, or logs the seed's INFO line
    /// and returns `None`.
    pub async fn acquire(&self, expert_id: i64, use_case: UseCase) -> Option<ProcessingGuard> {
        let lock = self.lock_for(&lock_key(expert_id, use_case));
        let started = Instant::now();
        // try_lock first: the uncontended path never touches the timer.
        let guard = match lock.clone().try_lock_owned() {
            Ok(g) => Some(g),
            Err(_) => tokio::time::timeout(self.timeout, lock.lock_owned())
                .await
                .ok(),
        };
        let uc = use_case.as_str();
        metrics::histogram!(m::LOCK_WAIT_SECONDS, "use_case" => uc)
            .record(started.elapsed().as_secs_f64());
        match guard {
            Some(g) => {
                metrics::counter!(m::LOCK_ACQUIRED, "use_case" => uc).increment(1);
                tracing::debug!("Acquired processing lock for expert {expert_id} ({use_case})");
                Some(ProcessingGuard {
                    _guard: g,
                    expert_id,
                    use_case,
                })
            }
            None => {
                metrics::counter!(m::LOCK_CONTENDED, "use_case" => uc).increment(1);
                tracing::info!(
                    "Could not acquire lock for expert {expert_id} ({use_case}) - another thread is already processing. Skipping."
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn second_contender_skips_after_timeout_and_lock_is_reusable() {
        let locks = ProcessingLocks::new(Duration::from_millis(500));
        let g = locks
            .acquire(1, UseCase::EnterMarket)
            .await
            .expect("first acquires");
        assert!(
            locks.acquire(1, UseCase::EnterMarket).await.is_none(),
            "second must skip"
        );
        // Other keys are independent.
        assert!(locks.acquire(1, UseCase::OpenPositions).await.is_some());
        assert!(locks.acquire(2, UseCase::EnterMarket).await.is_some());
        drop(g);
        assert!(
            locks.acquire(1, UseCase::EnterMarket).await.is_some(),
            "released on drop"
        );
        assert_eq!(locks.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_contender_that_waits_less_than_the_timeout_gets_the_lock() {
        let locks = Arc::new(ProcessingLocks::new(Duration::from_millis(500)));
        let g = locks.acquire(1, UseCase::EnterMarket).await.unwrap();
        let l2 = locks.clone();
        let waiter =
            tokio::spawn(async move { l2.acquire(1, UseCase::EnterMarket).await.is_some() });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(g);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn a_cancelled_holder_releases() {
        let locks = Arc::new(ProcessingLocks::new(Duration::from_millis(50)));
        let l2 = locks.clone();
        let task = tokio::spawn(async move {
            let _g = l2.acquire(1, UseCase::EnterMarket).await.unwrap();
            std::future::pending::<()>().await;
        });
        tokio::task::yield_now().await;
        while locks.is_empty() {
            tokio::task::yield_now().await;
        }
        task.abort();
        let _ = task.await;
        assert!(locks.acquire(1, UseCase::EnterMarket).await.is_some());
    }
}
