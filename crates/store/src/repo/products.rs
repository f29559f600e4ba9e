//! Canonical products: one `products` row with the content as JSON, plus `product_variants`
//! and `product_images` rows carrying the columns set filters need, all written together.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tidemark_core::{
    AccountId, Barcode, CanonicalProduct, ContentHash, Field, Product, ProductId, ProductStatus,
    RecordKind, Sku, Timestamp, Variant,
};

use super::{from_json, hash_from_hex, to_json, ts};
use crate::error::db_err;
use crate::sql::{Arg, Sql, query_builder};
use crate::{ConflictKind, Db, StoreError, Versioned, repository, with_db};

pub(crate) fn status_str(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "active",
        ProductStatus::Paused => "paused",
        ProductStatus::Draft => "draft",
        ProductStatus::Archived => "archived",
    }
}

pub(crate) fn parse_status(text: &str) -> Option<ProductStatus> {
    [
        ProductStatus::Active,
        ProductStatus::Paused,
        ProductStatus::Draft,
        ProductStatus::Archived,
    ]
    .into_iter()
    .find(|s| status_str(*s) == text)
}

/// The filter key of a text: trimmed and lower-cased in Rust, so both databases compare the
/// same bytes (SQLite's `lower` folds ASCII only).
pub(crate) fn key(text: &str) -> String {
    text.trim().to_lowercase()
}

/// The key SKUs are matched by ([`tidemark_core::normalize::sku_key`]: case-folded,
/// whitespace removed); `None` when nothing is left.
pub(crate) fn sku_match_key(sku: &Sku) -> Option<String> {
    Some(tidemark_core::normalize::sku_key(sku)).filter(|k| !k.is_empty())
}

/// The key barcodes are matched by: the barcode as
/// [`tidemark_core::normalize::normalize_barcode`] keeps it (whitespace, a leading quote and
/// GTIN hyphens removed); `None` when nothing usable is left.
pub(crate) fn barcode_match_key(barcode: &Barcode) -> Option<String> {
    match tidemark_core::normalize::normalize_barcode(barcode.as_str()) {
        tidemark_core::normalize::BarcodeOutcome::Kept(b) => Some(b.0),
        _ => None,
    }
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The value of option `name` (`color`, `size`, matched case-insensitively; `colour` too).
fn option_key(variant: &Variant, names: &[&str]) -> Option<String> {
    variant
        .options
        .iter()
        .find(|(name, _)| names.iter().any(|n| name.trim().eq_ignore_ascii_case(n)))
        .map(|(_, value)| key(value))
        .filter(|value| !value.is_empty())
}

fn decimal_arg(value: Option<Decimal>) -> (Arg, Arg) {
    (
        Arg::Text(value.map(|d| d.to_string())),
        Arg::I64(value.map(price_units)),
    )
}

/// A price as an exact integer count of ten-thousandths, for comparisons in SQL (money never
/// goes through a float). Beyond the BIGINT range it saturates, which keeps every ordering a
/// set filter asks about except between two such absurd prices.
pub(crate) fn price_units(value: Decimal) -> i64 {
    let scaled = value.checked_mul(Decimal::from(10_000)).map(|d| d.round());
    match scaled.and_then(|d| d.to_i64()) {
        Some(units) => units,
        None if value.is_sign_negative() => i64::MIN,
        None => i64::MAX,
    }
}

#[derive(sqlx::FromRow)]
struct ProductRow {
    id: i64,
    account_id: i64,
    content: String,
    field_times: String,
    revision: i64,
    created_at: i64,
    updated_at: i64,
}

impl ProductRow {
    fn into_product(self) -> Result<Versioned<CanonicalProduct>, StoreError> {
        let row = format!("id {}", self.id);
        Ok(Versioned {
            record: CanonicalProduct {
                id: ProductId(self.id),
                account: AccountId(self.account_id),
                content: from_json("products", &row, "content", &self.content)?,
                field_times: from_json("products", &row, "field_times", &self.field_times)?,
                created_at: ts(self.created_at),
                updated_at: ts(self.updated_at),
            },
            revision: self.revision,
        })
    }
}

/// The `Conflict { StaleRecord }` or `NotFound` of an update that changed no row.
pub(crate) fn stale_or_missing(
    entity: &'static str,
    table: &'static str,
    kind: RecordKind,
    id: i64,
    expected_revision: i64,
    current: Option<i64>,
) -> StoreError {
    match current {
        None => StoreError::not_found(entity, id),
        Some(current_revision) => {
            tracing::debug!(
                table,
                id,
                expected_revision,
                current_revision,
                "stale update refused; the caller re-reads and re-applies"
            );
            StoreError::Conflict {
                table,
                kind: ConflictKind::StaleRecord {
                    kind,
                    id,
                    expected_revision,
                    current_revision,
                },
            }
        }
    }
}

/// The product columns both insert and update write, in this order.
fn product_args(
    content: &Product,
    content_hash: ContentHash,
    field_times: &BTreeMap<Field, Timestamp>,
) -> Result<Vec<Arg>, StoreError> {
    let brand = non_empty(content.brand.as_deref());
    let has_weight = content.weight_grams.is_some();
    Ok(vec![
        Arg::Text(content.sku.as_ref().map(|s| s.0.clone())),
        Arg::Text(content.sku.as_ref().and_then(sku_match_key)),
        Arg::Text(Some(content.title.clone())),
        Arg::Text(brand.clone()),
        Arg::Text(brand.as_deref().map(key)),
        Arg::Text(non_empty(content.vendor.as_deref())),
        Arg::Text(non_empty(content.category.as_deref())),
        Arg::Text(content.barcode.as_ref().map(|b| b.0.clone())),
        Arg::Text(content.barcode.as_ref().and_then(barcode_match_key)),
        Arg::Text(Some(status_str(content.status).to_owned())),
        Arg::Bool(!content.description.trim().is_empty()),
        Arg::Bool(has_weight),
        Arg::I64(Some(content.tags.len() as i64)),
        Arg::I64(Some(content.attributes.len() as i64)),
        Arg::Text(Some(content.currency.as_str().to_owned())),
        Arg::Text(Some(to_json("save product", content)?)),
        Arg::Text(Some(content_hash.to_hex())),
        Arg::Text(Some(to_json("save product", field_times)?)),
    ])
}

const PRODUCT_COLUMNS: [&str; 18] = [
    "sku",
    "sku_key",
    "title",
    "brand",
    "brand_key",
    "vendor",
    "category",
    "barcode",
    "barcode_key",
    "status",
    "has_description",
    "has_weight",
    "tag_count",
    "attribute_count",
    "currency",
    "content",
    "content_hash",
    "field_times",
];

impl Db<'_> {
    pub(crate) async fn create_product(
        &mut self,
        account: AccountId,
        content: &Product,
        content_hash: ContentHash,
        field_times: &BTreeMap<Field, Timestamp>,
        now: Timestamp,
    ) -> Result<Versioned<CanonicalProduct>, StoreError> {
        let args = product_args(content, content_hash, field_times)?;
        self.savepoint().await?;
        let result = self.insert_product_rows(account, content, args, now).await;
        let id = self.end_savepoint(result).await?;
        Ok(Versioned {
            record: CanonicalProduct {
                id,
                account,
                content: content.clone(),
                field_times: field_times.clone(),
                created_at: now,
                updated_at: now,
            },
            revision: 1,
        })
    }

    async fn insert_product_rows(
        &mut self,
        account: AccountId,
        content: &Product,
        args: Vec<Arg>,
        now: Timestamp,
    ) -> Result<ProductId, StoreError> {
        let mut sql = Sql::new("INSERT INTO products (account_id, ");
        for (i, column) in PRODUCT_COLUMNS.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push(column);
        }
        sql.push(", created_at, updated_at) VALUES ");
        let mut values = vec![Arg::I64(Some(account.0))];
        values.extend(args);
        values.push(Arg::I64(Some(now.0)));
        values.push(Arg::I64(Some(now.0)));
        sql.bind_list(values).push(" RETURNING id");
        let id: i64 = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_scalar().fetch_one(&mut *c).await
        })
        .map_err(db_err("products", "insert"))?;
        let id = ProductId(id);
        self.insert_child_rows(id, content).await?;
        Ok(id)
    }

    async fn insert_child_rows(
        &mut self,
        id: ProductId,
        content: &Product,
    ) -> Result<(), StoreError> {
        if !content.variants.is_empty() {
            let mut sql = Sql::new(
                "INSERT INTO product_variants (product_id, position, sku, sku_key, barcode, \
                 barcode_key, color, size, price, price_units, compare_at_price, \
                 compare_at_units, stock, has_weight) VALUES ",
            );
            for (position, variant) in content.variants.iter().enumerate() {
                if position > 0 {
                    sql.push(", ");
                }
                let (price, price_units) = decimal_arg(variant.price);
                let (compare, compare_units) = decimal_arg(variant.compare_at_price);
                sql.bind_list([
                    Arg::I64(Some(id.0)),
                    Arg::I64(Some(position as i64)),
                    Arg::Text(variant.sku.as_ref().map(|s| s.0.clone())),
                    Arg::Text(variant.sku.as_ref().and_then(sku_match_key)),
                    Arg::Text(variant.barcode.as_ref().map(|b| b.0.clone())),
                    Arg::Text(variant.barcode.as_ref().and_then(barcode_match_key)),
                    Arg::Text(option_key(variant, &["color", "colour"])),
                    Arg::Text(option_key(variant, &["size"])),
                    price,
                    price_units,
                    compare,
                    compare_units,
                    Arg::I64(variant.stock),
                    Arg::Bool(variant.weight_grams.is_some()),
                ]);
            }
            with_db!(self, |c| {
                let mut qb = query_builder!(sql);
                qb.build().execute(&mut *c).await.map(drop)
            })
            .map_err(db_err("product_variants", "insert"))?;
        }
        if !content.images.is_empty() {
            let mut sql = Sql::new(
                "INSERT INTO product_images (product_id, position, content_hash, src) VALUES ",
            );
            for (index, image) in content.images.iter().enumerate() {
                if index > 0 {
                    sql.push(", ");
                }
                sql.bind_list([
                    Arg::I64(Some(id.0)),
                    Arg::I64(Some(index as i64)),
                    Arg::Text(Some(image.content_hash.to_hex())),
                    Arg::Text(Some(image.src.clone())),
                ]);
            }
            with_db!(self, |c| {
                let mut qb = query_builder!(sql);
                qb.build().execute(&mut *c).await.map(drop)
            })
            .map_err(db_err("product_images", "insert"))?;
        }
        Ok(())
    }

    /// Replaces a canonical product's content, field times and `updated_at` if its revision
    /// is still `expected_revision`; returns the new revision.
    pub(crate) async fn update_product(
        &mut self,
        product: &CanonicalProduct,
        content_hash: ContentHash,
        expected_revision: i64,
    ) -> Result<i64, StoreError> {
        let args = product_args(&product.content, content_hash, &product.field_times)?;
        self.savepoint().await?;
        let result = self
            .update_product_rows(product, args, expected_revision)
            .await;
        self.end_savepoint(result).await
    }

    async fn update_product_rows(
        &mut self,
        product: &CanonicalProduct,
        args: Vec<Arg>,
        expected_revision: i64,
    ) -> Result<i64, StoreError> {
        let mut sql = Sql::new("UPDATE products SET ");
        for (column, arg) in PRODUCT_COLUMNS.iter().zip(args) {
            sql.push(column).push(" = ").bind(arg).push(", ");
        }
        sql.push("revision = revision + 1, updated_at = ")
            .bind_i64(product.updated_at.0)
            .push(" WHERE id = ")
            .bind_i64(product.id.0)
            .push(" AND account_id = ")
            .bind_i64(product.account.0)
            .push(" AND revision = ")
            .bind_i64(expected_revision);
        let updated = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build().execute(&mut *c).await.map(|r| r.rows_affected())
        })
        .map_err(db_err("products", "update"))?;
        if updated == 0 {
            let current: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
                "SELECT revision FROM products WHERE id = $1 AND account_id = $2"
            )
            .bind(product.id.0)
            .bind(product.account.0)
            .fetch_optional(&mut *c)
            .await)
            .map_err(db_err("products", "update"))?;
            return Err(stale_or_missing(
                "product",
                "products",
                RecordKind::Product,
                product.id.0,
                expected_revision,
                current,
            ));
        }
        let id = product.id.0;
        with_db!(self, |c| sqlx::query(
            "DELETE FROM product_variants WHERE product_id = $1"
        )
        .bind(id)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("product_variants", "delete"))?;
        with_db!(self, |c| sqlx::query(
            "DELETE FROM product_images WHERE product_id = $1"
        )
        .bind(id)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("product_images", "delete"))?;
        self.insert_child_rows(product.id, &product.content).await?;
        Ok(expected_revision + 1)
    }

    pub(crate) async fn get_product(
        &mut self,
        account: AccountId,
        id: ProductId,
    ) -> Result<Option<Versioned<CanonicalProduct>>, StoreError> {
        let row: Option<ProductRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT id, account_id, content, field_times, revision, created_at, updated_at \
             FROM products WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("products", "get"))?;
        row.map(ProductRow::into_product).transpose()
    }

    /// Several products at once (missing ids are left out), ordered by id.
    pub(crate) async fn get_products(
        &mut self,
        account: AccountId,
        ids: &[ProductId],
    ) -> Result<Vec<Versioned<CanonicalProduct>>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut sql = Sql::new(
                "SELECT id, account_id, content, field_times, revision, created_at, updated_at \
                 FROM products WHERE account_id = ",
            );
            sql.bind_i64(account.0).push(" AND id IN ");
            sql.bind_list(chunk.iter().map(|id| Arg::I64(Some(id.0))));
            sql.push(" ORDER BY id");
            let rows: Vec<ProductRow> = with_db!(self, |c| {
                let mut qb = query_builder!(sql);
                qb.build_query_as().fetch_all(&mut *c).await
            })
            .map_err(db_err("products", "get many"))?;
            for row in rows {
                out.push(row.into_product()?);
            }
        }
        out.sort_by_key(|p| p.id);
        Ok(out)
    }

    /// The stored content hash of a canonical product.
    pub(crate) async fn product_content_hash(
        &mut self,
        account: AccountId,
        id: ProductId,
    ) -> Result<Option<ContentHash>, StoreError> {
        let text: Option<String> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT content_hash FROM products WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("products", "get hash"))?;
        text.map(|t| hash_from_hex("products", format!("id {id}"), &t))
            .transpose()
    }

    /// Canonical products a new external record may be the same as ("detect coincidences"):
    /// those sharing a SKU key (product or variant level; `sku_key`: case-folded, whitespace
    /// removed, as core matches) with it; only if none, those sharing a barcode key. Ordered
    /// by id.
    pub(crate) async fn match_candidates(
        &mut self,
        account: AccountId,
        skus: &[Sku],
        barcodes: &[Barcode],
    ) -> Result<Vec<ProductId>, StoreError> {
        let by_sku = self
            .products_sharing(
                account,
                "sku_key",
                skus.iter().filter_map(sku_match_key).collect(),
            )
            .await?;
        if !by_sku.is_empty() {
            return Ok(by_sku);
        }
        self.products_sharing(
            account,
            "barcode_key",
            barcodes.iter().filter_map(barcode_match_key).collect(),
        )
        .await
    }

    async fn products_sharing(
        &mut self,
        account: AccountId,
        column: &'static str,
        mut values: Vec<String>,
    ) -> Result<Vec<ProductId>, StoreError> {
        values.retain(|v| !v.trim().is_empty());
        values.sort();
        values.dedup();
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let list = || values.iter().map(|v| Arg::Text(Some(v.clone())));
        // Two indexed look-ups joined by UNION: an OR over the product column and a
        // correlated variant EXISTS makes both databases scan every product of the account,
        // once per record a fetch matches (quadratic in the catalogue). In the variant half,
        // `+p.account_id` keeps SQLite from driving the join by the account index (a scan of
        // the account's products) instead of the variant key index; no ORDER BY for the same
        // reason (a merge by id scans too): the ids are sorted below.
        let mut sql = Sql::new("SELECT p.id FROM products p WHERE p.account_id = ");
        sql.bind_i64(account.0)
            .push(" AND p.")
            .push(column)
            .push(" IN ");
        sql.bind_list(list());
        sql.push(
            " UNION SELECT p.id FROM product_variants v JOIN products p ON p.id = v.product_id \
             WHERE +p.account_id = ",
        )
        .bind_i64(account.0)
        .push(" AND v.")
        .push(column)
        .push(" IN ");
        sql.bind_list(list());
        let ids: Vec<i64> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_scalar().fetch_all(&mut *c).await
        })
        .map_err(db_err("products", "match candidates"))?;
        let mut ids = ids;
        ids.sort_unstable();
        Ok(ids.into_iter().map(ProductId).collect())
    }

    /// Removes a canonical product from tidemark's own database: its variant and image rows,
    /// its bindings and snapshots on every connection, its pending changes; its open issues
    /// are resolved. Returns whether it existed.
    ///
    /// Only for the integrity fix and an explicit operator removal. It is *not* how a
    /// deletion seen on the master platform is handled: that archives the product (status
    /// `Archived`, saved with `update_product` and propagated as an ordinary update). Nothing
    /// here touches any platform, and products are never deleted on a platform.
    pub(crate) async fn delete_product(
        &mut self,
        account: AccountId,
        id: ProductId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.savepoint().await?;
        let result = self.delete_product_rows(account, id, now).await;
        self.end_savepoint(result).await
    }

    async fn delete_product_rows(
        &mut self,
        account: AccountId,
        id: ProductId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let deleted = with_db!(self, |c| sqlx::query(
            "DELETE FROM products WHERE id = $1 AND account_id = $2"
        )
        .bind(id.0)
        .bind(account.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("products", "delete"))?;
        if deleted == 0 {
            return Ok(false);
        }
        with_db!(self, |c| sqlx::query(
            "DELETE FROM bindings WHERE kind IN ('product', 'variant', 'image') \
             AND internal_id = $1"
        )
        .bind(id.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("bindings", "delete product"))?;
        with_db!(self, |c| sqlx::query(
            "DELETE FROM pending_changes WHERE record_kind = 'product' AND record_id = $1"
        )
        .bind(id.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("pending_changes", "delete product"))?;
        with_db!(self, |c| sqlx::query(
            "UPDATE issues SET resolved_at = $2 WHERE record_kind = 'product' \
             AND record_id = $1 AND resolved_at IS NULL"
        )
        .bind(id.0)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(drop))
        .map_err(db_err("issues", "delete product"))?;
        Ok(true)
    }

    /// Products of the account not bound on `connection` (candidates for cloning onto it),
    /// in id order after `after`.
    pub(crate) async fn list_unbound_products(
        &mut self,
        account: AccountId,
        connection: tidemark_core::ConnectionId,
        after: Option<ProductId>,
        limit: i64,
    ) -> Result<Vec<ProductId>, StoreError> {
        let ids: Vec<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT p.id FROM products p WHERE p.account_id = $1 AND p.id > $3 AND NOT EXISTS \
             (SELECT 1 FROM bindings b WHERE b.connection_id = $2 AND b.kind = 'product' \
             AND b.internal_id = p.id) ORDER BY p.id LIMIT $4"
        )
        .bind(account.0)
        .bind(connection.0)
        .bind(after.map_or(0, |a| a.0))
        .bind(super::clamp_limit(limit))
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("products", "list unbound"))?;
        Ok(ids.into_iter().map(ProductId).collect())
    }

    /// The account's product ids in id order after `after` (keyset), for maintenance walks.
    pub(crate) async fn list_product_ids(
        &mut self,
        account: AccountId,
        after: Option<ProductId>,
        limit: i64,
    ) -> Result<Vec<ProductId>, StoreError> {
        let ids: Vec<i64> = with_db!(self, |c| sqlx::query_scalar(
            "SELECT id FROM products WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        )
        .bind(account.0)
        .bind(after.map_or(0, |a| a.0))
        .bind(super::clamp_limit(limit))
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("products", "list ids"))?;
        Ok(ids.into_iter().map(ProductId).collect())
    }

    pub(crate) async fn count_products(&mut self, account: AccountId) -> Result<i64, StoreError> {
        with_db!(self, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM products WHERE account_id = $1"
        )
        .bind(account.0)
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("products", "count"))
    }
}

repository! {
    /// Creates a canonical product: its row, variant rows and image rows, all or nothing.
    write fn create_product(
        account: AccountId,
        content: &Product,
        content_hash: ContentHash,
        field_times: &BTreeMap<Field, Timestamp>,
        now: Timestamp,
    ) -> Versioned<CanonicalProduct>;
    /// Replaces a canonical product (row, variants, images) all or nothing, if it is still at
    /// `expected_revision` (the revision it was read at); returns the new revision.
    /// `Conflict { kind: StaleRecord }` when another writer changed it since (nothing is
    /// written; re-read and re-apply), `NotFound` when it does not exist in its account.
    write fn update_product(product: &CanonicalProduct, content_hash: ContentHash, expected_revision: i64) -> i64;
    /// A product with the revision an update must name.
    read fn get_product(account: AccountId, id: ProductId) -> Option<Versioned<CanonicalProduct>>;
    read fn get_products(account: AccountId, ids: &[ProductId]) -> Vec<Versioned<CanonicalProduct>>;
    read fn product_content_hash(account: AccountId, id: ProductId) -> Option<ContentHash>;
    /// Match candidates for a new external record: by SKU first, then by barcode.
    read fn match_candidates(account: AccountId, skus: &[Sku], barcodes: &[Barcode]) -> Vec<ProductId>;
    read fn count_products(account: AccountId) -> i64;
    /// Product ids of the account in id order (keyset), for maintenance walks.
    read fn list_product_ids(account: AccountId, after: Option<ProductId>, limit: i64) -> Vec<ProductId>;
    /// Products not bound on `connection` (to clone onto it), keyset by id.
    read fn list_unbound_products(account: AccountId, connection: tidemark_core::ConnectionId, after: Option<ProductId>, limit: i64) -> Vec<ProductId>;
    /// Removes a canonical product with its rows, bindings, snapshots and pending changes from
    /// the database, for the integrity fix or an explicit operator removal only (a master
    /// deletion archives instead; no platform is ever asked to delete a product).
    write fn delete_product(account: AccountId, id: ProductId, now: Timestamp) -> bool;
}

#[cfg(test)]
mod price_unit_tests {
    use super::price_units;
    use rust_decimal::Decimal;

    #[test]
    fn price_units_are_exact_and_saturate() {
        let cases = [
            (Decimal::new(999, 2), 99_900),
            (Decimal::new(1, 4), 1),
            (Decimal::ZERO, 0),
            (Decimal::new(-15, 1), -15_000),
            (Decimal::MAX, i64::MAX),
            (Decimal::MIN, i64::MIN),
        ];
        for (price, units) in cases {
            assert_eq!(price_units(price), units, "{price}");
        }
        // 0.1 + 0.2 is exactly 0.3 here, unlike in a float column.
        assert_eq!(
            price_units(Decimal::new(1, 1) + Decimal::new(2, 1)),
            price_units(Decimal::new(3, 1))
        );
    }
}
