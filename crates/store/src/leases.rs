//! Cross-process lock leases (B2): a row per key with an owner and an expiry.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::map_err;

fn expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_acquire_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        // One statement: insert, or take over a row that expired or is already ours.
        let n = self
            .pool
            .execute(
                "INSERT INTO leases (key, owner, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
                 WHERE leases.expires_at <= $4 OR leases.owner = excluded.owner",
                &[key.into(), owner.into(), expiry(now, ttl).into(), now.into()],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn renew_lease(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let n = self
            .pool
            .execute(
                "UPDATE leases SET expires_at = $1 WHERE key = $2 AND owner = $3 AND expires_at > $4",
                &[expiry(now, ttl).into(), key.into(), owner.into(), now.into()],
            )
            .await
            .map_err(map_err)?;
        Ok(n == 1)
    }

    async fn release_lease(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.pool
            .execute(
                "DELETE FROM leases WHERE key = $1 AND owner = $2",
                &[key.into(), owner.into()],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
