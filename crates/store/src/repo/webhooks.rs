//! Webhook deliveries already acted on (`webhook_deliveries`), so a repeated delivery causes
//! no second fetch.

use tidemark_core::{ConnectionId, Timestamp};

use crate::error::db_err;
use crate::{Db, StoreError, repository, with_db};

impl Db<'_> {
    pub(crate) async fn webhook_delivery_seen(
        &mut self,
        connection: ConnectionId,
        delivery_id: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT received_at FROM webhook_deliveries WHERE connection_id = $1 \
             AND delivery_id = $2"
        )
        .bind(connection.0)
        .bind(delivery_id)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("webhook_deliveries", "get"))?;
        Ok(found.is_some())
    }

    pub(crate) async fn record_webhook_delivery(
        &mut self,
        connection: ConnectionId,
        delivery_id: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "INSERT INTO webhook_deliveries (connection_id, delivery_id, received_at) \
             VALUES ($1, $2, $3) ON CONFLICT (connection_id, delivery_id) DO NOTHING"
        )
        .bind(connection.0)
        .bind(delivery_id)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("webhook_deliveries", "insert"))?;
        Ok(done > 0)
    }

    pub(crate) async fn prune_webhook_deliveries(
        &mut self,
        before: Timestamp,
    ) -> Result<u64, StoreError> {
        with_db!(self, |c| sqlx::query(
            "DELETE FROM webhook_deliveries WHERE received_at < $1"
        )
        .bind(before.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("webhook_deliveries", "prune"))
    }
}

repository! {
    /// Worker-only (the webhook endpoint, after the delivery's signature verified): whether
    /// this delivery id was already acted on.
    read fn webhook_delivery_seen(connection: ConnectionId, delivery_id: &str) -> bool;
    /// Worker-only: remembers a delivery acted on; whether it was new.
    write fn record_webhook_delivery(connection: ConnectionId, delivery_id: &str, now: Timestamp) -> bool;
    /// Worker-only (the reconciler): forgets deliveries received before `before`.
    write fn prune_webhook_deliveries(before: Timestamp) -> u64;
}
