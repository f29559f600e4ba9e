//! Canonical sales orders. Orders are never deleted: there is no method for it.

use std::collections::BTreeMap;

use tidemark_core::{
    AccountId, CanonicalOrder, ConnectionId, ContentHash, Field, OrderId, OrderStatus,
    PaymentStatus, RecordKind, SalesOrder, Timestamp,
};

use super::{from_json, to_json, ts};
use crate::error::db_err;
use crate::repo::products::stale_or_missing;
use crate::{ConflictKind, Db, StoreError, Versioned, repository, with_db};

pub(crate) fn order_status_str(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pending",
        OrderStatus::Processing => "processing",
        OrderStatus::OnHold => "on_hold",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Refunded => "refunded",
        OrderStatus::Failed => "failed",
    }
}

pub(crate) fn payment_status_str(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Pending => "pending",
        PaymentStatus::Paid => "paid",
        PaymentStatus::PartiallyPaid => "partially_paid",
        PaymentStatus::Refunded => "refunded",
        PaymentStatus::PartiallyRefunded => "partially_refunded",
        PaymentStatus::Voided => "voided",
    }
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    account_id: i64,
    origin_connection_id: i64,
    content: String,
    field_times: String,
    revision: i64,
    created_at: i64,
    updated_at: i64,
}

impl OrderRow {
    fn into_order(self) -> Result<Versioned<CanonicalOrder>, StoreError> {
        let row = format!("id {}", self.id);
        Ok(Versioned {
            record: CanonicalOrder {
                id: OrderId(self.id),
                account: AccountId(self.account_id),
                origin: ConnectionId(self.origin_connection_id),
                content: from_json("orders", &row, "content", &self.content)?,
                field_times: from_json("orders", &row, "field_times", &self.field_times)?,
                created_at: ts(self.created_at),
                updated_at: ts(self.updated_at),
            },
            revision: self.revision,
        })
    }
}

const SELECT: &str = "SELECT id, account_id, origin_connection_id, content, field_times, \
                      revision, created_at, updated_at FROM orders ";

impl Db<'_> {
    pub(crate) async fn create_order(
        &mut self,
        account: AccountId,
        origin: ConnectionId,
        content: &SalesOrder,
        content_hash: ContentHash,
        field_times: &BTreeMap<Field, Timestamp>,
        now: Timestamp,
    ) -> Result<Versioned<CanonicalOrder>, StoreError> {
        let json = to_json("create order", content)?;
        let times = to_json("create order", field_times)?;
        // ON CONFLICT DO NOTHING: a known number is answered without a database error, so a
        // caller's PostgreSQL transaction stays usable.
        let id: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO orders (account_id, origin_connection_id, number, placed_at, status, \
             payment_status, currency, total, content, content_hash, field_times, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
             ON CONFLICT (account_id, origin_connection_id, number) DO NOTHING RETURNING id"
        )
        .bind(account.0)
        .bind(origin.0)
        .bind(&content.number)
        .bind(content.placed_at.0)
        .bind(order_status_str(content.status))
        .bind(payment_status_str(content.payment_status))
        .bind(content.currency.as_str())
        .bind(content.total.to_string())
        .bind(&json)
        .bind(content_hash.to_hex())
        .bind(&times)
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("orders", "create"))?;
        let Some(id) = id else {
            return Err(StoreError::Conflict {
                table: "orders",
                kind: ConflictKind::Unique {
                    detail: format!(
                        "order number {:?} from connection {origin} is already known",
                        content.number
                    ),
                },
            });
        };
        Ok(Versioned {
            record: CanonicalOrder {
                id: OrderId(id),
                account,
                origin,
                content: content.clone(),
                field_times: field_times.clone(),
                created_at: now,
                updated_at: now,
            },
            revision: 1,
        })
    }

    pub(crate) async fn update_order(
        &mut self,
        order: &CanonicalOrder,
        content_hash: ContentHash,
        expected_revision: i64,
    ) -> Result<i64, StoreError> {
        let content = &order.content;
        let json = to_json("update order", content)?;
        let times = to_json("update order", &order.field_times)?;
        let updated = with_db!(self, |c| sqlx::query(
            "UPDATE orders SET number = $3, placed_at = $4, status = $5, payment_status = $6, \
             currency = $7, total = $8, content = $9, content_hash = $10, field_times = $11, \
             updated_at = $12, revision = revision + 1 \
             WHERE id = $1 AND account_id = $2 AND revision = $13"
        )
        .bind(order.id.0)
        .bind(order.account.0)
        .bind(&content.number)
        .bind(content.placed_at.0)
        .bind(order_status_str(content.status))
        .bind(payment_status_str(content.payment_status))
        .bind(content.currency.as_str())
        .bind(content.total.to_string())
        .bind(&json)
        .bind(content_hash.to_hex())
        .bind(&times)
        .bind(order.updated_at.0)
        .bind(expected_revision)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("orders", "update"))?;
        if updated == 0 {
            let current: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
                "SELECT revision FROM orders WHERE id = $1 AND account_id = $2"
            )
            .bind(order.id.0)
            .bind(order.account.0)
            .fetch_optional(&mut *c)
            .await)
            .map_err(db_err("orders", "update"))?;
            return Err(stale_or_missing(
                "order",
                "orders",
                RecordKind::Order,
                order.id.0,
                expected_revision,
                current,
            ));
        }
        Ok(expected_revision + 1)
    }

    /// The account's order ids in id order after `after` (keyset), for maintenance walks.
    pub(crate) async fn list_order_ids(
        &mut self,
        account: AccountId,
        after: Option<OrderId>,
        limit: i64,
    ) -> Result<Vec<OrderId>, StoreError> {
        let ids: Vec<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT id FROM orders WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )
        .bind(account.0)
        .bind(after.map_or(0, |a| a.0))
        .bind(super::clamp_limit(limit))
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("orders", "list ids"))?;
        Ok(ids.into_iter().map(OrderId).collect())
    }

    pub(crate) async fn get_order(
        &mut self,
        account: AccountId,
        id: OrderId,
    ) -> Result<Option<Versioned<CanonicalOrder>>, StoreError> {
        let mut sql = crate::sql::Sql::new(SELECT);
        sql.push("WHERE id = ")
            .bind_i64(id.0)
            .push(" AND account_id = ")
            .bind_i64(account.0);
        let row: Option<OrderRow> = with_db!(self, |c| {
            let mut qb = crate::sql::query_builder!(sql);
            qb.build_query_as().fetch_optional(&mut *c).await
        })
        .map_err(db_err("orders", "get"))?;
        row.map(OrderRow::into_order).transpose()
    }

    pub(crate) async fn find_order_by_number(
        &mut self,
        account: AccountId,
        origin: ConnectionId,
        number: &str,
    ) -> Result<Option<Versioned<CanonicalOrder>>, StoreError> {
        let mut sql = crate::sql::Sql::new(SELECT);
        sql.push("WHERE account_id = ")
            .bind_i64(account.0)
            .push(" AND origin_connection_id = ")
            .bind_i64(origin.0)
            .push(" AND number = ")
            .bind_text(number);
        let row: Option<OrderRow> = with_db!(self, |c| {
            let mut qb = crate::sql::query_builder!(sql);
            qb.build_query_as().fetch_optional(&mut *c).await
        })
        .map_err(db_err("orders", "find by number"))?;
        row.map(OrderRow::into_order).transpose()
    }
}

repository! {
    /// Creates a canonical order; an order number already known from that origin is a
    /// `Conflict` (answered without a database error: a caller's transaction stays usable).
    write fn create_order(
        account: AccountId,
        origin: ConnectionId,
        content: &SalesOrder,
        content_hash: ContentHash,
        field_times: &BTreeMap<Field, Timestamp>,
        now: Timestamp,
    ) -> Versioned<CanonicalOrder>;
    /// Replaces a canonical order if it is still at `expected_revision`; returns the new
    /// revision. `Conflict { kind: StaleRecord }` when another writer changed it since
    /// (nothing is written; re-read and re-apply), `NotFound` when it does not exist.
    write fn update_order(order: &CanonicalOrder, content_hash: ContentHash, expected_revision: i64) -> i64;
    read fn get_order(account: AccountId, id: OrderId) -> Option<Versioned<CanonicalOrder>>;
    /// Order ids of the account in id order (keyset), for maintenance walks.
    read fn list_order_ids(account: AccountId, after: Option<OrderId>, limit: i64) -> Vec<OrderId>;
    read fn find_order_by_number(account: AccountId, origin: ConnectionId, number: &str) -> Option<Versioned<CanonicalOrder>>;
}
