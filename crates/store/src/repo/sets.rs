//! The set filters of DESIGN §4 compiled to parameterised SQL, with keyset pagination.
//! A list of sets means their intersection; connection names resolve within the account.

use std::collections::HashMap;

use tidemark_core::sets::{ConnectionRef, OrderSet, ProductSet, SetContext};
use tidemark_core::{
    AccountId, ConnectionId, Currency, Field, OrderId, OrderStatus, PaymentStatus, ProductId, Sku,
};

use super::{hash_from_hex, ts};
use crate::error::db_err;
use crate::repo::products::{key, parse_status, price_units};
use crate::sql::{Sql, query_builder};
use crate::{
    Db, OrderSummary, Page, ProductSummary, SetVocabulary, StoreError, repository, with_db,
};

type Names = HashMap<String, ConnectionId>;

fn connection_id(names: &Names, connection: &ConnectionRef) -> Result<ConnectionId, StoreError> {
    names
        .get(&connection.0)
        .copied()
        .ok_or_else(|| StoreError::UnknownConnection {
            name: connection.0.clone(),
        })
}

fn product_set_connection(set: &ProductSet) -> Option<&ConnectionRef> {
    match set {
        ProductSet::OnConnection { connection }
        | ProductSet::ActiveOn { connection }
        | ProductSet::PausedOn { connection }
        | ProductSet::PublishedOn { connection }
        | ProductSet::UnpublishedOn { connection }
        | ProductSet::InCategory { connection, .. }
        | ProductSet::WithoutCategory { connection }
        | ProductSet::PendingUpdates { connection }
        | ProductSet::PendingCreates { connection } => Some(connection),
        _ => None,
    }
}

fn order_set_connection(set: &OrderSet) -> Option<&ConnectionRef> {
    match set {
        OrderSet::OnConnection { connection }
        | OrderSet::PendingUpdates { connection }
        | OrderSet::PendingCreates { connection } => Some(connection),
        _ => None,
    }
}

const VARIANT: &str = "EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id AND ";

/// SQL that holds when product `p` has a value for `field`.
fn field_present(field: Field) -> &'static str {
    match field {
        Field::Sku => {
            "(p.sku IS NOT NULL OR EXISTS (SELECT 1 FROM product_variants v \
             WHERE v.product_id = p.id AND v.sku IS NOT NULL))"
        }
        Field::Barcode => {
            "(p.barcode IS NOT NULL OR EXISTS (SELECT 1 FROM product_variants v \
             WHERE v.product_id = p.id AND v.barcode IS NOT NULL))"
        }
        Field::Weight => {
            "(p.has_weight OR EXISTS (SELECT 1 FROM product_variants v \
             WHERE v.product_id = p.id AND v.has_weight))"
        }
        Field::Title => "p.title <> ''",
        Field::Description => "p.has_description",
        Field::Brand => "p.brand IS NOT NULL",
        Field::Vendor => "p.vendor IS NOT NULL",
        Field::Category => "p.category IS NOT NULL",
        Field::Tags => "p.tag_count > 0",
        Field::Attributes => "p.attribute_count > 0",
        Field::Status => "1 = 1",
        Field::Images => "EXISTS (SELECT 1 FROM product_images im WHERE im.product_id = p.id)",
        Field::Variants => "EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id)",
        Field::Price => {
            "EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id \
             AND v.price IS NOT NULL)"
        }
        Field::CompareAtPrice => {
            "EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id \
             AND v.compare_at_price IS NOT NULL)"
        }
        Field::Stock => {
            "EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id \
             AND v.stock IS NOT NULL)"
        }
        // Order fields never describe a product.
        Field::OrderStatus | Field::PaymentStatus | Field::Shipments | Field::OrderNote => "1 = 0",
    }
}

fn snapshot_on(sql: &mut Sql, connection: ConnectionId) -> &mut Sql {
    sql.push(
        "EXISTS (SELECT 1 FROM snapshots s WHERE s.kind = 'product' AND s.internal_id = p.id \
         AND s.connection_id = ",
    )
    .bind_i64(connection.0)
}

fn pending_on<'a>(
    sql: &'a mut Sql,
    kind: &'static str,
    alias: &'static str,
    connection: ConnectionId,
) -> &'a mut Sql {
    sql.push("EXISTS (SELECT 1 FROM pending_changes pc WHERE pc.record_kind = ")
        .bind_text(kind)
        .push(" AND pc.record_id = ")
        .push(alias)
        .push(".id AND pc.connection_id = ")
        .bind_i64(connection.0)
}

/// One product set as a boolean SQL expression over `p`.
fn product_set_sql(set: &ProductSet, ctx: &SetContext, names: &Names) -> Result<Sql, StoreError> {
    let mut sql = Sql::default();
    match set {
        ProductSet::OnConnection { connection } => {
            sql.push(
                "EXISTS (SELECT 1 FROM bindings b WHERE b.kind = 'product' \
                 AND b.internal_id = p.id AND b.connection_id = ",
            )
            .bind_i64(connection_id(names, connection)?.0)
            .push(")");
        }
        ProductSet::WithField { field } => {
            sql.push("(").push(field_present(*field)).push(")");
        }
        ProductSet::WithoutField { field } => {
            sql.push("NOT (").push(field_present(*field)).push(")");
        }
        ProductSet::OfBrand { brand } => {
            sql.push("p.brand_key = ").bind_text(key(brand));
        }
        ProductSet::OfSize { size } => {
            sql.push(VARIANT)
                .push("v.size = ")
                .bind_text(key(size))
                .push(")");
        }
        ProductSet::OfColor { color } => {
            sql.push(VARIANT)
                .push("v.color = ")
                .bind_text(key(color))
                .push(")");
        }
        ProductSet::ActiveOn { connection } | ProductSet::PublishedOn { connection } => {
            snapshot_on(&mut sql, connection_id(names, connection)?)
                .push(" AND s.status = 'active')");
        }
        ProductSet::PausedOn { connection } => {
            snapshot_on(&mut sql, connection_id(names, connection)?)
                .push(" AND s.status = 'paused')");
        }
        ProductSet::UnpublishedOn { connection } => {
            snapshot_on(&mut sql, connection_id(names, connection)?)
                .push(" AND s.status <> 'active')");
        }
        ProductSet::WithIssues => {
            sql.push(
                "EXISTS (SELECT 1 FROM issues i WHERE i.record_kind = 'product' \
                 AND i.record_id = p.id AND i.resolved_at IS NULL)",
            );
        }
        ProductSet::WithoutIssues => {
            sql.push(
                "NOT EXISTS (SELECT 1 FROM issues i WHERE i.record_kind = 'product' \
                 AND i.record_id = p.id AND i.resolved_at IS NULL)",
            );
        }
        ProductSet::LowStock => {
            sql.push(VARIANT)
                .push("v.stock > 0 AND v.stock <= ")
                .bind_i64(ctx.low_stock_threshold)
                .push(")");
        }
        ProductSet::OutOfStock => {
            sql.push(VARIANT)
                .push("v.stock IS NOT NULL) AND NOT ")
                .push(VARIANT)
                .push("v.stock > 0)");
        }
        ProductSet::WithStock => {
            sql.push(VARIANT).push("v.stock > 0)");
        }
        ProductSet::LowPrice => {
            sql.push(VARIANT)
                .push("v.price_units > 0 AND v.price_units < ")
                .bind_i64(price_units(ctx.low_price_threshold))
                .push(")");
        }
        ProductSet::BadPrice => {
            sql.push(VARIANT).push(
                "(v.price_units IS NULL OR v.price_units <= 0 OR \
                 (v.compare_at_units IS NOT NULL AND v.compare_at_units < v.price_units)))",
            );
        }
        ProductSet::InCategory {
            connection,
            category,
        } => {
            snapshot_on(&mut sql, connection_id(names, connection)?)
                .push(" AND s.category_key = ")
                .bind_text(key(category))
                .push(")");
        }
        ProductSet::WithoutCategory { connection } => {
            snapshot_on(&mut sql, connection_id(names, connection)?)
                .push(" AND s.category_key IS NULL)");
        }
        ProductSet::PendingUpdates { connection } => {
            pending_on(&mut sql, "product", "p", connection_id(names, connection)?)
                .push(" AND pc.op IN ('update', 'image_delete'))");
        }
        ProductSet::PendingCreates { connection } => {
            pending_on(&mut sql, "product", "p", connection_id(names, connection)?)
                .push(" AND pc.op = 'insert')");
        }
    }
    Ok(sql)
}

/// One order set as a boolean SQL expression over `o`.
fn order_set_sql(set: &OrderSet, ctx: &SetContext, names: &Names) -> Result<Sql, StoreError> {
    let mut sql = Sql::default();
    match set {
        OrderSet::OnConnection { connection } => {
            let id = connection_id(names, connection)?;
            sql.push("(o.origin_connection_id = ")
                .bind_i64(id.0)
                .push(
                    " OR EXISTS (SELECT 1 FROM bindings b WHERE b.kind = 'order' \
                     AND b.internal_id = o.id AND b.connection_id = ",
                )
                .bind_i64(id.0)
                .push("))");
        }
        OrderSet::PendingUpdates { connection } => {
            pending_on(&mut sql, "order", "o", connection_id(names, connection)?)
                .push(" AND pc.op IN ('update', 'image_delete'))");
        }
        OrderSet::PendingCreates { connection } => {
            pending_on(&mut sql, "order", "o", connection_id(names, connection)?)
                .push(" AND pc.op = 'insert')");
        }
        OrderSet::OfMonth { .. }
        | OrderSet::OfYear { .. }
        | OrderSet::ThisMonth
        | OrderSet::ThisYear
        | OrderSet::LastWeek
        | OrderSet::Yesterday
        | OrderSet::Today => match set.time_range(ctx) {
            Some(range) => {
                sql.push("(o.placed_at >= ")
                    .bind_i64(range.from.0)
                    .push(" AND o.placed_at < ")
                    .bind_i64(range.to.0)
                    .push(")");
            }
            // An impossible date (month 13) selects nothing.
            None => {
                sql.push("1 = 0");
            }
        },
    }
    Ok(sql)
}

#[derive(sqlx::FromRow)]
struct ProductSummaryRow {
    id: i64,
    sku: Option<String>,
    title: String,
    brand: Option<String>,
    category: Option<String>,
    status: String,
    content_hash: String,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct OrderSummaryRow {
    id: i64,
    origin_connection_id: i64,
    number: String,
    placed_at: i64,
    status: String,
    payment_status: String,
    currency: String,
    total: String,
    updated_at: i64,
}

fn parse_enum<T: serde::de::DeserializeOwned>(
    table: &'static str,
    row: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|e| StoreError::corrupt(table, row, format!("{text:?}: {e}")))
}

impl OrderSummaryRow {
    fn into_summary(self) -> Result<OrderSummary, StoreError> {
        let row = format!("id {}", self.id);
        let status: OrderStatus = parse_enum("orders", &row, &self.status)?;
        let payment_status: PaymentStatus = parse_enum("orders", &row, &self.payment_status)?;
        Ok(OrderSummary {
            id: OrderId(self.id),
            origin: ConnectionId(self.origin_connection_id),
            number: self.number,
            placed_at: ts(self.placed_at),
            status,
            payment_status,
            currency: Currency::parse(&self.currency)
                .map_err(|e| StoreError::corrupt("orders", &row, e))?,
            total: self
                .total
                .parse()
                .map_err(|e| StoreError::corrupt("orders", &row, format!("total: {e}")))?,
            updated_at: ts(self.updated_at),
        })
    }
}

impl Db<'_> {
    async fn resolve_names<'a>(
        &mut self,
        account: AccountId,
        refs: impl Iterator<Item = &'a ConnectionRef>,
    ) -> Result<Names, StoreError> {
        let mut names = Names::new();
        for connection in refs {
            if !names.contains_key(&connection.0) {
                let id = self.resolve_connection_name(account, &connection.0).await?;
                names.insert(connection.0.clone(), id);
            }
        }
        Ok(names)
    }

    /// Products of the account in every one of `sets`, by id, after `after`; `limit` per page.
    pub(crate) async fn list_products(
        &mut self,
        account: AccountId,
        sets: &[ProductSet],
        ctx: &SetContext,
        after: Option<ProductId>,
        limit: i64,
    ) -> Result<Page<ProductSummary, ProductId>, StoreError> {
        let names = self
            .resolve_names(account, sets.iter().filter_map(product_set_connection))
            .await?;
        let limit = super::clamp_limit(limit);
        let mut sql = Sql::new(
            "SELECT p.id, p.sku, p.title, p.brand, p.category, p.status, p.content_hash, \
             p.updated_at FROM products p WHERE p.account_id = ",
        );
        sql.bind_i64(account.0);
        for set in sets {
            sql.push(" AND ");
            sql.append(product_set_sql(set, ctx, &names)?);
        }
        if let Some(after) = after {
            sql.push(" AND p.id > ").bind_i64(after.0);
        }
        sql.push(" ORDER BY p.id LIMIT ").bind_i64(limit + 1);
        let mut rows: Vec<ProductSummaryRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("products", "list by sets"))?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let items = rows
            .into_iter()
            .map(|r| {
                let row = format!("id {}", r.id);
                Ok(ProductSummary {
                    id: ProductId(r.id),
                    sku: r.sku.map(Sku),
                    title: r.title,
                    brand: r.brand,
                    category: r.category,
                    status: parse_status(&r.status).ok_or_else(|| {
                        StoreError::corrupt("products", &row, format!("status {:?}", r.status))
                    })?,
                    content_hash: hash_from_hex("products", &row, &r.content_hash)?,
                    updated_at: ts(r.updated_at),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = if more {
            items.last().map(|p| p.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Orders of the account in every one of `sets`, by id, after `after`.
    pub(crate) async fn list_orders(
        &mut self,
        account: AccountId,
        sets: &[OrderSet],
        ctx: &SetContext,
        after: Option<OrderId>,
        limit: i64,
    ) -> Result<Page<OrderSummary, OrderId>, StoreError> {
        let names = self
            .resolve_names(account, sets.iter().filter_map(order_set_connection))
            .await?;
        let limit = super::clamp_limit(limit);
        let mut sql = Sql::new(
            "SELECT o.id, o.origin_connection_id, o.number, o.placed_at, o.status, \
             o.payment_status, o.currency, o.total, o.updated_at FROM orders o \
             WHERE o.account_id = ",
        );
        sql.bind_i64(account.0);
        for set in sets {
            sql.push(" AND ");
            sql.append(order_set_sql(set, ctx, &names)?);
        }
        if let Some(after) = after {
            sql.push(" AND o.id > ").bind_i64(after.0);
        }
        sql.push(" ORDER BY o.id LIMIT ").bind_i64(limit + 1);
        let mut rows: Vec<OrderSummaryRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("orders", "list by sets"))?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let items = rows
            .into_iter()
            .map(OrderSummaryRow::into_summary)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = if more {
            items.last().map(|o| o.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// The values the set search bar completes: the account's distinct brands, categories,
    /// variant colours and sizes, at most `limit` of each, alphabetically.
    pub(crate) async fn set_vocabulary(
        &mut self,
        account: AccountId,
        limit: i64,
    ) -> Result<SetVocabulary, StoreError> {
        let limit = super::clamp_limit(limit);
        let queries: [(&'static str, &'static str); 4] = [
            (
                "brand",
                "SELECT DISTINCT brand FROM products WHERE account_id = $1 AND brand IS NOT NULL \
                 AND brand <> '' ORDER BY brand LIMIT $2",
            ),
            (
                "category",
                "SELECT DISTINCT category FROM products WHERE account_id = $1 \
                 AND category IS NOT NULL AND category <> '' ORDER BY category LIMIT $2",
            ),
            (
                "color",
                "SELECT DISTINCT v.color FROM product_variants v JOIN products p \
                 ON p.id = v.product_id WHERE p.account_id = $1 AND v.color IS NOT NULL \
                 AND v.color <> '' ORDER BY v.color LIMIT $2",
            ),
            (
                "size",
                "SELECT DISTINCT v.size FROM product_variants v JOIN products p \
                 ON p.id = v.product_id WHERE p.account_id = $1 AND v.size IS NOT NULL \
                 AND v.size <> '' ORDER BY v.size LIMIT $2",
            ),
        ];
        let mut lists: Vec<Vec<String>> = Vec::with_capacity(4);
        for (what, query) in queries {
            let values: Vec<String> = with_db!(self, |c| sqlx::query_scalar(query)
                .bind(account.0)
                .bind(limit)
                .fetch_all(&mut *c)
                .await)
            .map_err(db_err("products", what))?;
            lists.push(values);
        }
        let mut lists = lists.into_iter();
        let mut next = || lists.next().unwrap_or_default();
        Ok(SetVocabulary {
            brands: next(),
            categories: next(),
            colors: next(),
            sizes: next(),
        })
    }
}

repository! {
    /// The account's brands, categories, colours and sizes, for autocomplete.
    read fn set_vocabulary(account: AccountId, limit: i64) -> SetVocabulary;
    /// A page of the account's products in the intersection of `sets` (keyset by id).
    read fn list_products(account: AccountId, sets: &[ProductSet], ctx: &SetContext, after: Option<ProductId>, limit: i64) -> Page<ProductSummary, ProductId>;
    /// A page of the account's orders in the intersection of `sets` (keyset by id).
    read fn list_orders(account: AccountId, sets: &[OrderSet], ctx: &SetContext, after: Option<OrderId>, limit: i64) -> Page<OrderSummary, OrderId>;
}
