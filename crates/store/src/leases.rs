//! Cross-process lock leases (B2, I3): a row per key with its holder and an expiry.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tradewarden_engine::ports::*;

use crate::SqlStore;
use crate::db::{Kind, Pool, Row, Tx, Val, map_err};
use crate::rows::{chunk_rows, param_list, values_clause};

fn expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

/// The holder columns, in the order [`holder_values`] binds them.
const HOLDER_COLUMNS: &str = "holder_host, holder_boot_id, holder_pid_namespace, holder_pid, \
                              holder_start_time, holder_liveness_key";

/// The holder's identity as the values of [`HOLDER_COLUMNS`]; unknown parts are NULL.
fn holder_values(h: &LeaseHolder) -> [Val; 6] {
    let host = h.host.as_ref();
    [
        host.map(|i| i.host.clone()).into(),
        host.and_then(|i| i.boot_id.clone()).into(),
        host.and_then(|i| i.pid_namespace.clone()).into(),
        h.pid.map(i64::from).into(),
        h.start_time.and_then(|t| i64::try_from(t).ok()).into(),
        h.liveness_key.into(),
    ]
}

/// A stored holder. A value out of range (no writer of ours stores one) reads as unknown,
/// which proves nothing: that holder's lease is taken at expiry.
fn holder_of(row: &Row) -> Result<LeaseHolder, StoreError> {
    let host = match row.opt_text("holder_host")? {
        None => None,
        Some(host) => Some(HostIdentity {
            host,
            boot_id: row.opt_text("holder_boot_id")?,
            pid_namespace: row.opt_text("holder_pid_namespace")?,
        }),
    };
    Ok(LeaseHolder {
        owner: row.text("owner")?,
        host,
        pid: row
            .opt_i64("holder_pid")?
            .and_then(|p| u32::try_from(p).ok()),
        start_time: row
            .opt_i64("holder_start_time")?
            .and_then(|t| u64::try_from(t).ok()),
        liveness_key: row.opt_i64("holder_liveness_key")?,
    })
}

/// Parameters per row of a lease insert: key, owner, expiry and the holder's columns.
const HOLDER_ROW: usize = 9;

/// One statement for `keys` (at most a statement's rows): each is inserted, or taken over
/// where it expired or is already the holder's, exactly as
/// [`LeaseStore::try_acquire_lease`] does for one; returns the keys taken.
async fn acquire_free(
    pool: &Pool,
    keys: &[String],
    holder: &LeaseHolder,
    now: DateTime<Utc>,
    ttl: std::time::Duration,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "INSERT INTO leases (key, owner, expires_at, {HOLDER_COLUMNS}) VALUES {} \
         ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, \
         holder_host = excluded.holder_host, holder_boot_id = excluded.holder_boot_id, \
         holder_pid_namespace = excluded.holder_pid_namespace, holder_pid = excluded.holder_pid, \
         holder_start_time = excluded.holder_start_time, holder_liveness_key = excluded.holder_liveness_key \
         WHERE leases.expires_at <= {} OR leases.owner = excluded.owner RETURNING key",
        values_clause(pool.kind(), keys.len(), HOLDER_ROW),
        param_list(pool.kind(), keys.len() * HOLDER_ROW + 1, 1)
    );
    let expires_at = expiry(now, ttl);
    let mut args: Vec<Val> = Vec::with_capacity(keys.len() * HOLDER_ROW + 1);
    for key in keys {
        args.extend([
            key.as_str().into(),
            holder.owner.as_str().into(),
            expires_at.into(),
        ]);
        args.extend(holder_values(holder));
    }
    args.push(now.into());
    pool.fetch(&sql, &args)
        .await?
        .iter()
        .map(|r| r.text("key"))
        .collect()
}

/// Gives back, inside `tx`, the leases `release` names, each only while its owner still
/// holds it.
pub(crate) async fn release_leases_in(
    tx: &mut Tx,
    release: &LeaseRelease<'_>,
) -> Result<(), StoreError> {
    let kind = tx.kind();
    for chunk in release.keys.chunks(chunk_rows(1)) {
        let sql = format!(
            "DELETE FROM leases WHERE key IN ({}) AND owner = {}",
            param_list(kind, 1, chunk.len()),
            param_list(kind, chunk.len() + 1, 1)
        );
        let mut args: Vec<Val> = chunk.iter().map(|k| k.as_str().into()).collect();
        args.push(release.owner.into());
        tx.execute(&sql, &args).await.map_err(map_err)?;
    }
    Ok(())
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_acquire_lease(
        &self,
        key: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<LeaseAttempt, StoreError> {
        // One statement: insert, or take over a row that expired or is already ours.
        let sql = format!(
            "INSERT INTO leases (key, owner, expires_at, {HOLDER_COLUMNS}) \
             VALUES ($1, $2, $3, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, \
             holder_host = excluded.holder_host, holder_boot_id = excluded.holder_boot_id, \
             holder_pid_namespace = excluded.holder_pid_namespace, holder_pid = excluded.holder_pid, \
             holder_start_time = excluded.holder_start_time, holder_liveness_key = excluded.holder_liveness_key \
             WHERE leases.expires_at <= $4 OR leases.owner = excluded.owner"
        );
        let mut args = vec![
            key.into(),
            holder.owner.as_str().into(),
            expiry(now, ttl).into(),
            now.into(),
        ];
        args.extend(holder_values(holder));
        let n = self.pool.execute(&sql, &args).await.map_err(map_err)?;
        if n == 1 {
            return Ok(LeaseAttempt::Acquired);
        }
        // Held by another: say by whom, so the caller can tell whether it still lives.
        let rows = self
            .pool
            .fetch(
                &format!("SELECT owner, {HOLDER_COLUMNS} FROM leases WHERE key = $1"),
                &[key.into()],
            )
            .await?;
        let holder = rows.first().map(holder_of).transpose()?;
        Ok(LeaseAttempt::Held(holder))
    }

    async fn try_acquire_leases(
        &self,
        keys: &[String],
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<Vec<String>, StoreError> {
        let mut taken = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(chunk_rows(HOLDER_ROW)) {
            taken.extend(acquire_free(&self.pool, chunk, holder, now, ttl).await?);
        }
        Ok(taken)
    }

    async fn take_over_lease(
        &self,
        key: &str,
        dead_owner: &str,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
        ttl: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let mut args = vec![
            key.into(),
            dead_owner.into(),
            holder.owner.as_str().into(),
            expiry(now, ttl).into(),
        ];
        args.extend(holder_values(holder));
        let n = self
            .pool
            .execute(
                "UPDATE leases SET owner = $3, expires_at = $4, holder_host = $5, \
                 holder_boot_id = $6, holder_pid_namespace = $7, holder_pid = $8, \
                 holder_start_time = $9, holder_liveness_key = $10 \
                 WHERE key = $1 AND owner = $2",
                &args,
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

    async fn release_leases_of(&self, owner: &str) -> Result<u64, StoreError> {
        self.pool
            .execute("DELETE FROM leases WHERE owner = $1", &[owner.into()])
            .await
            .map_err(map_err)
    }

    async fn holder_connected(&self, key: i64) -> Result<Option<bool>, StoreError> {
        if self.pool.kind() != Kind::Postgres {
            return Ok(None);
        }
        // A transaction-level try-lock conflicts with the holder's session lock and frees
        // itself when this one-statement transaction ends: no unlock to forget. Two
        // contenders probing at once may see each other's probe and answer "connected";
        // that errs towards waiting, never towards a second holder.
        let rows = self
            .pool
            .fetch(
                "SELECT pg_try_advisory_xact_lock($1) AS free",
                &[key.into()],
            )
            .await?;
        let free = rows
            .first()
            .ok_or_else(|| StoreError::database("pg_try_advisory_xact_lock returned no row"))?
            .i64("free")?;
        Ok(Some(free == 0))
    }
}
