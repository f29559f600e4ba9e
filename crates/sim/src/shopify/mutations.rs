//! Mutations: whole-product writes (`productSet`, `productCreate`), variants
//! (`productVariantsBulkCreate`, `productVariantsBulkUpdate`), stock (`inventorySetQuantities`,
//! `inventoryAdjustQuantities`) and files (`fileUpdate`, `fileDelete`). Each answers its payload
//! with `userErrors` (field paths into the input, codes) and returns the webhook events it
//! caused, which are sent once the shop is unlocked.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::shop::{LOCATION_GID, SimMedia, SimProduct, SimVariant, gid, iso, parse_gid};
use super::{Event, ShopifySim, admin};

/// Input arrays longer than this are refused (platforms.md §1.4).
pub(super) const MAX_INPUT_ARRAY: usize = 250;

/// A mutation's payload and the webhook events it caused.
pub(super) type Outcome = (Value, Vec<Event>);

/// Runs mutation root field `name`.
pub(super) fn run(
    sim: &ShopifySim,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Outcome, String> {
    Ok(match name {
        "productSet" => product_set(sim, args),
        "productCreate" => product_create(sim, args),
        "productVariantsBulkCreate" => variants_bulk_create(sim, args),
        "productVariantsBulkUpdate" => variants_bulk_update(sim, args),
        "inventorySetQuantities" => inventory_set(sim, args),
        "inventoryAdjustQuantities" => inventory_adjust(sim, args),
        "fileUpdate" => file_update(sim, args),
        "fileDelete" => file_delete(sim, args),
        "bulkOperationRunQuery" => (super::bulk::run(sim, args), Vec::new()),
        other => return Err(format!("Field '{other}' doesn't exist on type 'Mutation'")),
    })
}

/// The path and length of the first array in `args` longer than [`MAX_INPUT_ARRAY`].
pub(super) fn oversized_array(args: &Map<String, Value>) -> Option<(Vec<String>, usize)> {
    fn walk(v: &Value, path: &mut Vec<String>) -> Option<(Vec<String>, usize)> {
        match v {
            Value::Array(items) => {
                if items.len() > MAX_INPUT_ARRAY {
                    return Some((path.clone(), items.len()));
                }
                for (i, item) in items.iter().enumerate() {
                    path.push(i.to_string());
                    let found = walk(item, path);
                    path.pop();
                    if found.is_some() {
                        return found;
                    }
                }
                None
            }
            Value::Object(map) => {
                for (k, item) in map {
                    path.push(k.clone());
                    let found = walk(item, path);
                    path.pop();
                    if found.is_some() {
                        return found;
                    }
                }
                None
            }
            _ => None,
        }
    }
    let mut path = Vec::new();
    for (k, v) in args {
        path.push(k.clone());
        if let Some(found) = walk(v, &mut path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

pub(super) fn user_error(field: &[&str], message: &str, code: &str) -> Value {
    json!({ "field": field, "message": message, "code": code })
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn bad_price(v: &Value) -> bool {
    text(v, "price").is_some_and(|p| p.parse::<f64>().map_or(true, |x| x < 0.0))
}

fn processing(sim: &ShopifySim) -> Duration {
    Duration::from_millis(sim.config.media_processing_ms)
}

/// A new, empty product `id` created now.
fn blank_product(id: u64, handle: String, now: i64) -> SimProduct {
    SimProduct {
        id,
        handle,
        title: String::new(),
        status: "ACTIVE".into(),
        vendor: String::new(),
        product_type: String::new(),
        tags: Vec::new(),
        description_html: String::new(),
        created_at: now,
        updated_at: now,
        options: Vec::new(),
        media: Vec::new(),
        variants: Vec::new(),
    }
}

fn blank_variant(id: u64, item: u64, now: i64) -> SimVariant {
    SimVariant {
        id,
        title: String::new(),
        sku: None,
        barcode: None,
        price: "0.00".into(),
        compare_at_price: None,
        options: Vec::new(),
        inventory_item_id: item,
        available: 0,
        weight_grams: None,
        image_url: None,
        updated_at: now,
    }
}

/// Applies the scalar product fields of a `ProductSetInput` / `ProductCreateInput`.
fn apply_product_fields(p: &mut SimProduct, input: &Value) {
    if let Some(t) = text(input, "title") {
        p.title = t;
    }
    if let Some(t) = text(input, "descriptionHtml") {
        p.description_html = t;
    }
    if let Some(t) = text(input, "vendor") {
        p.vendor = t;
    }
    if let Some(t) = text(input, "productType") {
        p.product_type = t;
    }
    if let Some(t) = text(input, "status") {
        p.status = t;
    }
    if let Some(t) = text(input, "handle") {
        p.handle = t;
    }
    if let Some(tags) = input.get("tags").and_then(Value::as_array) {
        p.tags = tags
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
    }
    if let Some(options) = input.get("productOptions").and_then(Value::as_array) {
        p.options = options.iter().filter_map(|o| text(o, "name")).collect();
    }
}

/// Applies the fields of a variant input (`ProductVariantSetInput`, `ProductVariantsBulkInput`).
fn apply_variant_fields(var: &mut SimVariant, v: &Value) {
    if let Some(s) = text(v, "sku") {
        var.sku = Some(s);
    }
    if let Some(s) = v.pointer("/inventoryItem/sku").and_then(Value::as_str) {
        var.sku = Some(s.to_owned());
    }
    if v.get("barcode").is_some() {
        var.barcode = text(v, "barcode");
    }
    if let Some(s) = text(v, "price") {
        var.price = s;
    }
    if v.get("compareAtPrice").is_some() {
        var.compare_at_price = text(v, "compareAtPrice");
    }
    if let Some(opts) = v.get("optionValues").and_then(Value::as_array) {
        var.options = opts
            .iter()
            .map(|o| {
                (
                    text(o, "optionName").unwrap_or_default(),
                    text(o, "name").unwrap_or_default(),
                )
            })
            .collect();
        var.title = var
            .options
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            .join(" / ");
    }
    if let Some(w) = v
        .pointer("/inventoryItem/measurement/weight/value")
        .and_then(Value::as_f64)
    {
        var.weight_grams = Some(w);
    }
}

/// The initial quantity of a new variant: `ProductSetInventoryInput.quantity` (productSet) or
/// `InventoryLevelInput.availableQuantity` (productVariantsBulkCreate).
fn initial_quantity(v: &Value) -> Option<i64> {
    let first = list(v.get("inventoryQuantities")).first()?;
    first
        .get("quantity")
        .or_else(|| first.get("availableQuantity"))
        .and_then(Value::as_i64)
}

fn record_create(sim: &ShopifySim, p: &SimProduct) {
    let sku = p.variants.first().and_then(|v| v.sku.clone());
    sim.harness.stats.record_create(sku.as_deref());
}

fn product_set(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let input = args.get("input").cloned().unwrap_or(Value::Null);
    let variants_in = input.get("variants").and_then(Value::as_array).cloned();
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    let existing = match text(&input, "id") {
        Some(g) => match parse_gid("Product", &g).filter(|id| shop.products.contains_key(id)) {
            Some(id) => Some(id),
            None => {
                return (
                    json!({ "product": null, "userErrors": [user_error(&["input", "id"],
                        "Product does not exist", "PRODUCT_DOES_NOT_EXIST")] }),
                    Vec::new(),
                );
            }
        },
        None => None,
    };
    if let Some(h) = text(&input, "handle")
        && shop
            .products
            .values()
            .any(|p| p.handle == h && Some(p.id) != existing)
    {
        return (
            json!({ "product": null, "userErrors": [user_error(&["input", "handle"],
                &format!("Handle '{h}' has already been taken"), "HANDLE_NOT_UNIQUE")] }),
            Vec::new(),
        );
    }
    for (i, v) in variants_in.iter().flatten().enumerate() {
        if bad_price(v) {
            return (
                json!({ "product": null, "userErrors": [user_error(
                    &["input", "variants", &i.to_string(), "price"],
                    "Price must be greater than or equal to 0", "INVALID_VARIANT")] }),
                Vec::new(),
            );
        }
    }
    for (i, f) in list(input.get("files")).iter().enumerate() {
        let unknown = text(f, "id").is_some_and(|g| {
            parse_gid("MediaImage", &g).is_none_or(|mid| !shop.files.contains_key(&mid))
        });
        if unknown {
            return (
                json!({ "product": null, "userErrors": [user_error(
                    &["input", "files", &i.to_string(), "id"],
                    "File does not exist", "INVALID_INPUT")] }),
                Vec::new(),
            );
        }
    }
    let now = admin::now();
    let id = match existing {
        Some(id) => id,
        None => {
            let id = shop.next_id();
            let handle = match text(&input, "handle") {
                Some(h) => h,
                None => shop.unique_handle(&text(&input, "title").unwrap_or_default(), id),
            };
            shop.products.insert(id, blank_product(id, handle, now));
            shop.created(id, lag);
            id
        }
    };
    if existing.is_some() {
        shop.before_write(id, lag);
    }
    // New ids and media drawn before the product is borrowed.
    let new_ids: Vec<(u64, u64)> = (0..variants_in.as_ref().map_or(0, Vec::len))
        .map(|_| (shop.next_id(), shop.next_id()))
        .collect();
    let mut files = Vec::new();
    for f in list(input.get("files")) {
        let kept = text(f, "id")
            .and_then(|g| parse_gid("MediaImage", &g))
            .and_then(|mid| shop.files.get(&mid).cloned());
        let media = match kept {
            Some(m) => m,
            None => {
                let media = shop.new_media(
                    &text(f, "originalSource").unwrap_or_default(),
                    &text(f, "alt").unwrap_or_default(),
                    processing(sim),
                );
                media.download();
                media
            }
        };
        files.push(media);
    }
    let base = shop.base_url.clone();
    let Some(p) = shop.products.get_mut(&id) else {
        return (json!({ "product": null, "userErrors": [] }), Vec::new());
    };
    apply_product_fields(p, &input);
    if input.get("files").is_some() {
        // List-replace: files left out are detached (they stay in the shop's files).
        p.media = files;
    }
    if let Some(variants) = variants_in {
        // List-replace: variants left out are deleted.
        let mut out = Vec::new();
        for (v, (new_id, new_item)) in variants.iter().zip(new_ids) {
            let old = text(v, "id")
                .and_then(|g| parse_gid("ProductVariant", &g))
                .and_then(|vid| p.variants.iter().find(|x| x.id == vid).cloned());
            let is_new = old.is_none();
            let mut var = old.unwrap_or_else(|| blank_variant(new_id, new_item, now));
            apply_variant_fields(&mut var, v);
            if is_new && let Some(q) = initial_quantity(v) {
                var.available = q;
            }
            var.updated_at = now;
            out.push(var);
        }
        p.variants = out;
    }
    p.updated_at = now;
    if existing.is_none() {
        record_create(sim, p);
    }
    let node = p.node(&base);
    let event = match existing {
        Some(_) => Event::ProductUpdated(id),
        None => Event::ProductCreated(id),
    };
    (json!({ "product": node, "userErrors": [] }), vec![event])
}

/// `productCreate(product:, media:)`: the product with its options and only the initial
/// variant (the first value of each option, or "Default Title"), plus media from URLs.
fn product_create(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let input = args
        .get("product")
        .or_else(|| args.get("input"))
        .cloned()
        .unwrap_or(Value::Null);
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    if let Some(h) = text(&input, "handle")
        && shop.products.values().any(|p| p.handle == h)
    {
        return (
            json!({ "product": null, "userErrors": [user_error(&["product", "handle"],
                &format!("Handle '{h}' has already been taken"), "TAKEN")] }),
            Vec::new(),
        );
    }
    if text(&input, "title").is_none_or(|t| t.trim().is_empty()) {
        return (
            json!({ "product": null, "userErrors": [user_error(&["product", "title"],
                "Title can't be blank", "BLANK")] }),
            Vec::new(),
        );
    }
    let now = admin::now();
    let id = shop.next_id();
    let handle = match text(&input, "handle") {
        Some(h) => h,
        None => shop.unique_handle(&text(&input, "title").unwrap_or_default(), id),
    };
    let (variant_id, item_id) = (shop.next_id(), shop.next_id());
    let mut media = Vec::new();
    for m in list(args.get("media")) {
        let file = shop.new_media(
            &text(m, "originalSource").unwrap_or_default(),
            &text(m, "alt").unwrap_or_default(),
            processing(sim),
        );
        file.download();
        media.push(file);
    }
    shop.created(id, lag);
    let mut p = blank_product(id, handle, now);
    apply_product_fields(&mut p, &input);
    // The initial variant: the first value of each option.
    let options: Vec<(String, String)> = list(input.get("productOptions"))
        .iter()
        .filter_map(|o| {
            let name = text(o, "name")?;
            let value = list(o.get("values"))
                .first()
                .and_then(|v| text(v, "name"))?;
            Some((name, value))
        })
        .collect();
    let mut variant = blank_variant(variant_id, item_id, now);
    if options.is_empty() {
        p.options = vec!["Title".into()];
        variant.options = vec![("Title".into(), "Default Title".into())];
        variant.title = "Default Title".into();
    } else {
        variant.title = options
            .iter()
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
            .join(" / ");
        variant.options = options;
    }
    p.variants = vec![variant];
    p.media = media;
    record_create(sim, &p);
    let node = p.node(&shop.base_url);
    shop.products.insert(id, p);
    (
        json!({ "product": node, "userErrors": [] }),
        vec![Event::ProductCreated(id)],
    )
}

fn variants_payload_error(field: &[&str], message: &str, code: &str) -> Outcome {
    (
        json!({ "product": null, "productVariants": null,
            "userErrors": [user_error(field, message, code)] }),
        Vec::new(),
    )
}

/// `productVariantsBulkCreate(productId, variants, media, strategy)`: adds variants (with their
/// initial `availableQuantity`); `REMOVE_STANDALONE_VARIANT` deletes the product's standalone
/// variant ("Default Title", or its only variant) first, `DEFAULT` keeps it.
fn variants_bulk_create(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let Some(pid) = args
        .get("productId")
        .and_then(Value::as_str)
        .and_then(|g| parse_gid("Product", g))
    else {
        return variants_payload_error(
            &["productId"],
            "Product does not exist",
            "PRODUCT_DOES_NOT_EXIST",
        );
    };
    let variants = list(args.get("variants")).to_vec();
    let remove_standalone =
        args.get("strategy").and_then(Value::as_str) == Some("REMOVE_STANDALONE_VARIANT");
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    if !shop.products.contains_key(&pid) {
        return variants_payload_error(
            &["productId"],
            "Product does not exist",
            "PRODUCT_DOES_NOT_EXIST",
        );
    }
    for (i, v) in variants.iter().enumerate() {
        let idx = i.to_string();
        if v.get("id").is_some_and(|id| !id.is_null()) {
            return variants_payload_error(
                &["variants", &idx, "id"],
                "Variant ids cannot be given when creating variants",
                "INVALID_INPUT",
            );
        }
        if bad_price(v) {
            return variants_payload_error(
                &["variants", &idx, "price"],
                "Price must be greater than or equal to 0",
                "GREATER_THAN_OR_EQUAL_TO",
            );
        }
    }
    let ids: Vec<(u64, u64)> = variants
        .iter()
        .map(|_| (shop.next_id(), shop.next_id()))
        .collect();
    let mut media = Vec::new();
    for m in list(args.get("media")) {
        let file = shop.new_media(
            &text(m, "originalSource").unwrap_or_default(),
            &text(m, "alt").unwrap_or_default(),
            processing(sim),
        );
        file.download();
        media.push(file);
    }
    shop.before_write(pid, lag);
    let base = shop.base_url.clone();
    let Some(p) = shop.products.get_mut(&pid) else {
        return variants_payload_error(
            &["productId"],
            "Product does not exist",
            "PRODUCT_DOES_NOT_EXIST",
        );
    };
    let now = admin::now();
    let mut created = Vec::new();
    let mut new_variants = Vec::new();
    // The standalone variant goes only when it is the product's only one.
    let drop_standalone = remove_standalone && p.variants.len() == 1;
    for (i, (v, (vid, item))) in variants.iter().zip(ids).enumerate() {
        let mut var = blank_variant(vid, item, now);
        apply_variant_fields(&mut var, v);
        let kept: &[SimVariant] = if drop_standalone { &[] } else { &p.variants };
        let taken = kept
            .iter()
            .chain(&new_variants)
            .any(|x| !var.options.is_empty() && x.options == var.options);
        if taken {
            return variants_payload_error(
                &["variants", &i.to_string()],
                &format!("The variant '{}' already exists.", var.title),
                "VARIANT_ALREADY_EXISTS",
            );
        }
        if let Some(q) = initial_quantity(v) {
            var.available = q;
        }
        new_variants.push(var);
    }
    if drop_standalone {
        p.variants.clear();
        p.options.clear();
    }
    for name in new_variants
        .iter()
        .flat_map(|v| v.options.iter().map(|(n, _)| n.clone()))
    {
        if !p.options.contains(&name) {
            p.options.push(name);
        }
    }
    for var in new_variants {
        created.push(var.node(pid));
        p.variants.push(var);
    }
    p.media.extend(media);
    p.updated_at = now;
    let node = p.node(&base);
    (
        json!({ "product": node, "productVariants": created, "userErrors": [] }),
        vec![Event::ProductUpdated(pid)],
    )
}

fn variants_bulk_update(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let Some(pid) = args
        .get("productId")
        .and_then(Value::as_str)
        .and_then(|g| parse_gid("Product", g))
    else {
        return variants_payload_error(
            &["productId"],
            "Product does not exist",
            "PRODUCT_DOES_NOT_EXIST",
        );
    };
    let variants = list(args.get("variants")).to_vec();
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    if !shop.products.contains_key(&pid) {
        return variants_payload_error(
            &["productId"],
            "Product does not exist",
            "PRODUCT_DOES_NOT_EXIST",
        );
    }
    shop.before_write(pid, lag);
    let base = shop.base_url.clone();
    let Some(p) = shop.products.get_mut(&pid) else {
        return variants_payload_error(
            &["productId"],
            "Product does not exist",
            "PRODUCT_DOES_NOT_EXIST",
        );
    };
    // All or nothing (allowPartialUpdates: false): check first.
    for (i, v) in variants.iter().enumerate() {
        let idx = i.to_string();
        let found = text(v, "id")
            .and_then(|g| parse_gid("ProductVariant", &g))
            .is_some_and(|vid| p.variants.iter().any(|x| x.id == vid));
        if !found {
            return variants_payload_error(
                &["variants", &idx, "id"],
                "Product variant does not exist",
                "PRODUCT_VARIANT_DOES_NOT_EXIST",
            );
        }
        if bad_price(v) {
            return variants_payload_error(
                &["variants", &idx, "price"],
                "Price must be greater than or equal to 0",
                "GREATER_THAN_OR_EQUAL_TO",
            );
        }
    }
    let now = admin::now();
    let mut out = Vec::new();
    for v in &variants {
        let vid = text(v, "id")
            .and_then(|g| parse_gid("ProductVariant", &g))
            .unwrap_or(0);
        if let Some(var) = p.variants.iter_mut().find(|x| x.id == vid) {
            // A variant's SKU here is `inventoryItem.sku` only (no top-level `sku`).
            let mut input = v.clone();
            if let Some(m) = input.as_object_mut() {
                m.remove("sku");
            }
            apply_variant_fields(var, &input);
            var.updated_at = now;
            out.push(var.node(pid));
        }
    }
    p.updated_at = now;
    let node = p.node(&base);
    (
        json!({ "product": node, "productVariants": out, "userErrors": [] }),
        vec![Event::ProductUpdated(pid)],
    )
}

fn inventory_error(field: &[&str], message: &str, code: &str) -> Outcome {
    (
        json!({ "inventoryAdjustmentGroup": null, "userErrors": [user_error(field, message, code)] }),
        Vec::new(),
    )
}

/// `inventorySetQuantities`: absolute quantities, compare-and-set against `compareQuantity`
/// unless `ignoreCompareQuantity`. All or nothing. An inventory change: the product's
/// `updatedAt` does not move and only `inventory_levels/update` is sent.
fn inventory_set(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let input = args.get("input").cloned().unwrap_or(Value::Null);
    let name = text(&input, "name").unwrap_or_default();
    if name != "available" && name != "on_hand" {
        return inventory_error(
            &["input", "name"],
            "The quantity name must be either 'available' or 'on_hand'.",
            "INVALID_NAME",
        );
    }
    if text(&input, "reason").is_none_or(|r| r.is_empty()) {
        return inventory_error(
            &["input", "reason"],
            "The specified reason is invalid.",
            "INVALID_REASON",
        );
    }
    let ignore_compare = input.get("ignoreCompareQuantity").and_then(Value::as_bool) == Some(true);
    let quantities = list(input.get("quantities")).to_vec();
    let mut shop = sim.lock();
    let mut plan = Vec::new();
    for (i, q) in quantities.iter().enumerate() {
        let idx = i.to_string();
        let at = |field: &'static str| ["input", "quantities", idx.as_str(), field];
        let item = text(q, "inventoryItemId").and_then(|g| parse_gid("InventoryItem", &g));
        let Some((_, variant)) = item.and_then(|item| shop.variant_by_inventory_item(item)) else {
            return inventory_error(
                &at("inventoryItemId"),
                "The specified inventory item could not be found.",
                "INVALID_INVENTORY_ITEM",
            );
        };
        if text(q, "locationId").as_deref() != Some(LOCATION_GID) {
            return inventory_error(
                &at("locationId"),
                "The specified location could not be found.",
                "INVALID_LOCATION",
            );
        }
        if plan
            .iter()
            .any(|(item, _, _)| *item == variant.inventory_item_id)
        {
            return inventory_error(
                &at("inventoryItemId"),
                "The combination of inventoryItemId and locationId must be unique.",
                "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR",
            );
        }
        let Some(quantity) = q.get("quantity").and_then(Value::as_i64) else {
            return inventory_error(
                &at("quantity"),
                "The quantity is invalid.",
                "INVALID_QUANTITY_TOO_LOW",
            );
        };
        if quantity.abs() > 1_000_000_000 {
            return inventory_error(
                &at("quantity"),
                "The quantity can't be higher than 1,000,000,000.",
                "INVALID_QUANTITY_TOO_HIGH",
            );
        }
        if !ignore_compare {
            match q.get("compareQuantity").and_then(Value::as_i64) {
                None => {
                    return inventory_error(
                        &at("compareQuantity"),
                        "The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity.",
                        "COMPARE_QUANTITY_REQUIRED",
                    );
                }
                Some(c) if c != variant.available => {
                    return inventory_error(
                        &at("compareQuantity"),
                        "The compareQuantity argument no longer matches the persisted quantity.",
                        "COMPARE_QUANTITY_STALE",
                    );
                }
                Some(_) => {}
            }
        }
        plan.push((variant.inventory_item_id, variant.available, quantity));
    }
    let mut changes = Vec::new();
    let mut moved = Vec::new();
    for (item, before, after) in plan {
        for p in shop.products.values_mut() {
            for v in &mut p.variants {
                if v.inventory_item_id == item {
                    v.available = after;
                }
            }
        }
        moved.push((item, after));
        changes.push(
            json!({ "__typename": "InventoryChange", "name": name, "delta": after - before,
            "quantityAfterChange": after,
            "item": { "__typename": "InventoryItem", "id": gid("InventoryItem", item) },
            "location": { "__typename": "Location", "id": LOCATION_GID } }),
        );
    }
    drop(shop);
    let group = json!({ "__typename": "InventoryAdjustmentGroup",
        "id": gid("InventoryAdjustmentGroup", admin::now().unsigned_abs()),
        "reason": text(&input, "reason"), "createdAt": iso(admin::now()), "changes": changes });
    (
        json!({ "inventoryAdjustmentGroup": group, "userErrors": [] }),
        vec![Event::Inventory(moved)],
    )
}

/// Stock moves (deltas at `gid://shopify/Location/1`): an inventory change, so the product's
/// `updatedAt` does not move.
fn inventory_adjust(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let input = args.get("input").cloned().unwrap_or(Value::Null);
    let changes = list(input.get("changes")).to_vec();
    let mut shop = sim.lock();
    for (i, c) in changes.iter().enumerate() {
        let idx = i.to_string();
        let item = text(c, "inventoryItemId").and_then(|g| parse_gid("InventoryItem", &g));
        if item.is_none_or(|item| shop.variant_by_inventory_item(item).is_none()) {
            return inventory_error(
                &["input", "changes", &idx, "inventoryItemId"],
                "The specified inventory item could not be found.",
                "ITEM_NOT_FOUND",
            );
        }
        if text(c, "locationId").as_deref() != Some(LOCATION_GID) {
            return inventory_error(
                &["input", "changes", &idx, "locationId"],
                "The specified location could not be found.",
                "LOCATION_NOT_FOUND",
            );
        }
    }
    let mut applied = Vec::new();
    let mut moved = Vec::new();
    for c in &changes {
        let item = text(c, "inventoryItemId")
            .and_then(|g| parse_gid("InventoryItem", &g))
            .unwrap_or(0);
        let delta = c.get("delta").and_then(Value::as_i64).unwrap_or(0);
        for p in shop.products.values_mut() {
            for v in &mut p.variants {
                if v.inventory_item_id == item {
                    v.available += delta;
                    moved.push((item, v.available));
                }
            }
        }
        applied.push(json!({ "name": "available", "delta": delta }));
    }
    drop(shop);
    (
        json!({ "inventoryAdjustmentGroup": { "changes": applied, "createdAt": iso(admin::now()) }, "userErrors": [] }),
        vec![Event::Inventory(moved)],
    )
}

fn files_error(key: &str, field: &[&str], message: &str, code: &str) -> Outcome {
    (
        json!({ key: null, "userErrors": [user_error(field, message, code)] }),
        Vec::new(),
    )
}

/// `fileUpdate` `referencesToRemove`: detaches a file from products (the file stays in the
/// shop's files).
fn file_update(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let files = list(args.get("files")).to_vec();
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    // Check every file first: all or nothing.
    for (i, f) in files.iter().enumerate() {
        let idx = i.to_string();
        let Some(mid) = text(f, "id").and_then(|g| parse_gid("MediaImage", &g)) else {
            return files_error(
                "files",
                &["files", &idx, "id"],
                "File id is invalid",
                "INVALID",
            );
        };
        if !shop.files.contains_key(&mid) {
            return files_error(
                "files",
                &["files", &idx, "id"],
                "File does not exist",
                "FILE_DOES_NOT_EXIST",
            );
        }
    }
    let now = admin::now();
    let mut out = Vec::new();
    let mut events = Vec::new();
    for f in &files {
        let mid = text(f, "id")
            .and_then(|g| parse_gid("MediaImage", &g))
            .unwrap_or(0);
        let refs: Vec<u64> = list(f.get("referencesToRemove"))
            .iter()
            .filter_map(|g| g.as_str().and_then(|g| parse_gid("Product", g)))
            .collect();
        for pid in refs {
            shop.before_write(pid, lag);
            if let Some(p) = shop.products.get_mut(&pid)
                && p.media.iter().any(|m| m.id == mid)
            {
                p.media.retain(|m| m.id != mid);
                p.updated_at = now;
                events.push(Event::ProductUpdated(pid));
            }
        }
        if let Some(alt) = text(f, "alt")
            && let Some(file) = shop.files.get_mut(&mid)
        {
            // The alt text is part of every product showing the file: each is changed.
            file.alt = alt.clone();
            let holders: Vec<u64> = shop
                .products
                .values()
                .filter(|p| p.media.iter().any(|m| m.id == mid))
                .map(|p| p.id)
                .collect();
            for pid in holders {
                shop.before_write(pid, lag);
                if let Some(p) = shop.products.get_mut(&pid) {
                    for m in p.media.iter_mut().filter(|m| m.id == mid) {
                        m.alt = alt.clone();
                    }
                    p.updated_at = now;
                    events.push(Event::ProductUpdated(pid));
                }
            }
        }
        let base = shop.base_url.clone();
        out.push(
            shop.files
                .get(&mid)
                .map_or(Value::Null, |m: &SimMedia| m.node(&base)),
        );
    }
    (json!({ "files": out, "userErrors": [] }), events)
}

/// `fileDelete(fileIds:)`: deletes files for good, removing each from every product that
/// references it (the remaining media keep their order).
fn file_delete(sim: &ShopifySim, args: &Map<String, Value>) -> Outcome {
    let ids = list(args.get("fileIds")).to_vec();
    let lag = sim.harness.faults.index_lag();
    let mut shop = sim.lock();
    let mut parsed = Vec::new();
    for (i, g) in ids.iter().enumerate() {
        let idx = i.to_string();
        let mid = g.as_str().and_then(|g| {
            parse_gid("MediaImage", g)
                .or_else(|| parse_gid("GenericFile", g))
                .or_else(|| parse_gid("Video", g))
        });
        match mid {
            Some(mid) if shop.files.contains_key(&mid) => parsed.push(mid),
            _ => {
                return files_error(
                    "deletedFileIds",
                    &["fileIds", &idx],
                    &format!("File id {} does not exist.", g.as_str().unwrap_or("")),
                    "FILE_DOES_NOT_EXIST",
                );
            }
        }
    }
    let now = admin::now();
    let mut events = Vec::new();
    let holders: Vec<u64> = shop
        .products
        .values()
        .filter(|p| p.media.iter().any(|m| parsed.contains(&m.id)))
        .map(|p| p.id)
        .collect();
    for pid in holders {
        shop.before_write(pid, lag);
        if let Some(p) = shop.products.get_mut(&pid) {
            p.media.retain(|m| !parsed.contains(&m.id));
            p.updated_at = now;
            events.push(Event::ProductUpdated(pid));
        }
    }
    for mid in &parsed {
        shop.files.remove(mid);
    }
    let deleted: Vec<String> = parsed.iter().map(|m| gid("MediaImage", *m)).collect();
    (
        json!({ "deletedFileIds": deleted, "userErrors": [] }),
        events,
    )
}
