//! The stable content hash of a normalised record (DESIGN §4, "post-analysis"): equal hash to
//! the snapshot means unchanged, so a scan skips the diff.
//!
//! xxh3-128, fed field by field: every field is preceded by a tag byte, every string and list
//! by its length, every `Option` by a presence byte, so no two different records feed the same
//! bytes (`"ab" + "c"` differs from `"a" + "bc"`). Sets and maps are fed in key order (they are
//! `BTree*`), variants in SKU order (variant order is not content), images in position
//! order. Locators — the `external_id` of variants and images, an image's `src` and
//! `hash_source` — are skipped: they are not content (see [`crate::diff`]).
//!
//! Amounts are fed as `rust_decimal`'s 16-byte form, which includes the scale, so hash only
//! normalised records (scale pinned per currency).
//!
//! No allocation per record once warm: the canonical bytes go into a reused thread-local buffer
//! and are hashed in one call.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::model::{
    ContentHash, Image, OrderStatus, PaymentStatus, Product, ProductStatus, RecordContent,
    SalesOrder, ShipmentStatus, Variant,
};

/// Bumped if the byte layout below changes; part of every hash.
const LAYOUT: u8 = 1;

thread_local! {
    /// The bytes of the record being hashed. Reused across calls, so hashing allocates only
    /// until the buffer has grown to the largest record seen on this thread.
    static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The canonical bytes of one record, hashed in one call at the end: xxh3's one-shot form gives
/// the same digest as its streaming form, without the streaming form's copies into its own
/// block buffer, which cost more than the hashing for records of a few kilobytes.
struct Feed<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> Feed<'b> {
    fn new(buf: &'b mut Vec<u8>, domain: u8) -> Self {
        buf.clear();
        buf.extend_from_slice(&[domain, LAYOUT]);
        Self { buf }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn finish(self) -> ContentHash {
        ContentHash(xxh3_128(self.buf))
    }
}

/// Runs `fill` over a fresh feed in this thread's buffer and hashes what it wrote.
fn hash_with(domain: u8, fill: impl FnOnce(&mut Feed<'_>)) -> ContentHash {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let mut feed = Feed::new(&mut buf, domain);
            fill(&mut feed);
            feed.finish()
        }
        // Only reachable if hashing re-entered itself; a private buffer keeps it correct.
        Err(_) => {
            let mut buf = Vec::new();
            let mut feed = Feed::new(&mut buf, domain);
            fill(&mut feed);
            feed.finish()
        }
    })
}

impl Feed<'_> {
    fn len(&mut self, tag: u8, len: usize) {
        let mut buf = [0u8; 9];
        buf[0] = tag;
        buf[1..].copy_from_slice(&(len as u64).to_le_bytes());
        self.write(&buf);
    }

    fn str(&mut self, tag: u8, text: &str) {
        self.len(tag, text.len());
        self.write(text.as_bytes());
    }

    fn opt_str(&mut self, tag: u8, text: Option<&str>) {
        match text {
            Some(text) => self.str(tag, text),
            None => self.write(&[tag, 0xff]),
        }
    }

    fn u64(&mut self, tag: u8, value: u64) {
        let mut buf = [0u8; 9];
        buf[0] = tag;
        buf[1..].copy_from_slice(&value.to_le_bytes());
        self.write(&buf);
    }

    fn i64(&mut self, tag: u8, value: i64) {
        self.u64(tag, value as u64);
    }

    fn opt_i64(&mut self, tag: u8, value: Option<i64>) {
        match value {
            Some(value) => self.i64(tag, value),
            None => self.write(&[tag, 0xff]),
        }
    }

    fn decimal(&mut self, tag: u8, value: Decimal) {
        let mut buf = [0u8; 17];
        buf[0] = tag;
        buf[1..].copy_from_slice(&value.serialize());
        self.write(&buf);
    }

    fn opt_decimal(&mut self, tag: u8, value: Option<Decimal>) {
        match value {
            Some(value) => self.decimal(tag, value),
            None => self.write(&[tag, 0xff]),
        }
    }

    fn hash(&mut self, tag: u8, hash: ContentHash) {
        let mut buf = [0u8; 17];
        buf[0] = tag;
        buf[1..].copy_from_slice(&hash.0.to_le_bytes());
        self.write(&buf);
    }

    fn pairs<'a>(
        &mut self,
        tag: u8,
        pairs: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
    ) {
        self.len(tag, pairs.len());
        for (name, value) in pairs {
            self.str(b'k', name);
            self.str(b'v', value);
        }
    }
}

fn product_status_byte(status: ProductStatus) -> u8 {
    match status {
        ProductStatus::Active => 0,
        ProductStatus::Paused => 1,
        ProductStatus::Draft => 2,
        ProductStatus::Archived => 3,
    }
}

fn order_status_byte(status: OrderStatus) -> u8 {
    match status {
        OrderStatus::Pending => 0,
        OrderStatus::Processing => 1,
        OrderStatus::OnHold => 2,
        OrderStatus::Completed => 3,
        OrderStatus::Cancelled => 4,
        OrderStatus::Refunded => 5,
        OrderStatus::Failed => 6,
    }
}

fn payment_status_byte(status: PaymentStatus) -> u8 {
    match status {
        PaymentStatus::Pending => 0,
        PaymentStatus::Paid => 1,
        PaymentStatus::PartiallyPaid => 2,
        PaymentStatus::Refunded => 3,
        PaymentStatus::PartiallyRefunded => 4,
        PaymentStatus::Voided => 5,
    }
}

fn shipment_status_byte(status: ShipmentStatus) -> u8 {
    match status {
        ShipmentStatus::Pending => 0,
        ShipmentStatus::Shipped => 1,
        ShipmentStatus::InTransit => 2,
        ShipmentStatus::Delivered => 3,
        ShipmentStatus::Returned => 4,
        ShipmentStatus::Cancelled => 5,
    }
}

/// The content hash of a product (see the module docs).
pub fn product_hash(product: &Product) -> ContentHash {
    hash_with(b'P', |feed| feed_product(feed, product))
}

fn feed_product(feed: &mut Feed<'_>, p: &Product) {
    feed.opt_str(1, p.sku.as_ref().map(|s| s.as_str()));
    feed.str(2, &p.title);
    feed.str(3, &p.description);
    feed.opt_str(4, p.brand.as_deref());
    feed.opt_str(5, p.vendor.as_deref());
    feed.opt_str(6, p.category.as_deref());
    feed.len(7, p.tags.len());
    for tag in &p.tags {
        feed.str(b't', tag);
    }
    feed.opt_str(8, p.barcode.as_ref().map(|b| b.as_str()));
    feed.opt_decimal(9, p.weight_grams);
    feed.u64(10, u64::from(product_status_byte(p.status)));
    feed.pairs(11, p.attributes.iter());
    feed.str(12, p.currency.as_str());

    feed.len(13, p.images.len());
    if p.images.is_sorted_by_key(|image| image.position) {
        p.images.iter().for_each(|image| feed_image(feed, image));
    } else {
        let mut order: Vec<&Image> = p.images.iter().collect();
        order.sort_by_key(|image| image.position);
        order.into_iter().for_each(|image| feed_image(feed, image));
    }

    feed.len(14, p.variants.len());
    if p.variants
        .is_sorted_by(|a, b| cmp_variant_hash_order(a, b) != Ordering::Greater)
    {
        p.variants.iter().for_each(|v| feed_variant(feed, v));
    } else {
        let mut order: Vec<&Variant> = p.variants.iter().collect();
        order.sort_by(|a, b| cmp_variant_hash_order(a, b));
        order.into_iter().for_each(|v| feed_variant(feed, v));
    }
}

/// The order variants are hashed in: any fixed order makes the hash independent of the order a
/// platform lists them in, and raw SKU bytes compare with one `memcmp`, where the case-folded
/// match key ([`crate::diff::cmp_variant_keys`]) costs a fifth of the hash. Normalisation rejects
/// two variants whose SKUs differ only in case or spacing, so this order is total on valid
/// records.
fn cmp_variant_hash_order(a: &Variant, b: &Variant) -> Ordering {
    match (&a.sku, &b.sku) {
        (Some(x), Some(y)) => x.as_str().as_bytes().cmp(y.as_str().as_bytes()),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.options.iter().cmp(b.options.iter()),
    }
}

fn feed_image(feed: &mut Feed<'_>, image: &Image) {
    feed.hash(b'h', image.content_hash);
    feed.u64(b'p', u64::from(image.position));
    feed.opt_str(b'a', image.alt.as_deref());
}

fn feed_variant(feed: &mut Feed<'_>, v: &Variant) {
    feed.opt_str(b's', v.sku.as_ref().map(|s| s.as_str()));
    feed.opt_str(b'b', v.barcode.as_ref().map(|b| b.as_str()));
    feed.pairs(b'o', v.options.iter());
    feed.opt_decimal(b'p', v.price);
    feed.opt_decimal(b'c', v.compare_at_price);
    feed.opt_i64(b'q', v.stock);
    feed.opt_decimal(b'w', v.weight_grams);
    feed.len(b'i', v.image_hashes.len());
    for hash in &v.image_hashes {
        feed.hash(b'h', *hash);
    }
}

/// The content hash of a sales order.
pub fn order_hash(order: &SalesOrder) -> ContentHash {
    hash_with(b'O', |feed| feed_order(feed, order))
}

fn feed_order(feed: &mut Feed<'_>, o: &SalesOrder) {
    feed.str(1, &o.number);
    feed.str(2, &o.buyer.name);
    feed.opt_str(3, o.buyer.email.as_deref());
    feed.opt_str(4, o.buyer.phone.as_deref());
    feed.len(5, o.buyer.address.len());
    for line in &o.buyer.address {
        feed.str(b'a', line);
    }
    feed.len(6, o.lines.len());
    for line in &o.lines {
        feed.opt_str(b's', line.sku.as_ref().map(|s| s.as_str()));
        feed.str(b't', &line.title);
        feed.i64(b'q', line.quantity);
        feed.decimal(b'p', line.unit_price);
    }
    feed.str(7, o.currency.as_str());
    feed.decimal(8, o.subtotal);
    feed.decimal(9, o.shipping_total);
    feed.decimal(10, o.tax_total);
    feed.decimal(11, o.total);
    feed.u64(12, u64::from(order_status_byte(o.status)));
    feed.u64(13, u64::from(payment_status_byte(o.payment_status)));
    feed.len(14, o.shipments.len());
    for shipment in &o.shipments {
        feed.opt_str(b'c', shipment.carrier.as_deref());
        feed.opt_str(b'n', shipment.tracking_number.as_deref());
        feed.u64(b's', u64::from(shipment_status_byte(shipment.status)));
    }
    feed.opt_str(15, o.note.as_deref());
    feed.i64(16, o.placed_at.millis());
}

pub fn record_hash(content: &RecordContent) -> ContentHash {
    match content {
        RecordContent::Product(p) => product_hash(p),
        RecordContent::Order(o) => order_hash(o),
    }
}

/// Content hash of downloaded image bytes ([`crate::model::ImageHashSource::Bytes`]).
pub fn image_hash_bytes(bytes: &[u8]) -> ContentHash {
    // Streamed: image bodies are megabytes and need no copy into the record buffer.
    let mut hasher = Xxh3::new();
    hasher.update(&[b'B', LAYOUT]);
    hasher.update(bytes);
    ContentHash(hasher.digest128())
}

/// Content hash of an image URL until its bytes are downloaded ([`crate::model::ImageHashSource::Url`]).
/// Only surrounding whitespace is ignored: a URL differing in anything else is another image
/// until the bytes say otherwise.
pub fn image_hash_url(url: &str) -> ContentHash {
    hash_with(b'U', |feed| feed.write(url.trim().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sku;
    use crate::sample;

    #[test]
    fn string_boundaries_are_unambiguous() {
        let mut a = sample::product(1);
        let mut b = a.clone();
        a.title = "ab".to_owned();
        a.description = "c".to_owned();
        b.title = "a".to_owned();
        b.description = "bc".to_owned();
        assert_ne!(product_hash(&a), product_hash(&b));
        let mut c = a.clone();
        c.brand = None;
        let mut d = a.clone();
        d.brand = Some(String::new());
        assert_ne!(product_hash(&c), product_hash(&d));
    }

    #[test]
    fn locators_and_variant_order_are_not_content() {
        let p = sample::product(5);
        let mut q = p.clone();
        q.variants.reverse();
        q.variants[0].external_id = Some(crate::model::ExternalId::new("gid://v/1"));
        q.images[0].external_id = Some(crate::model::ExternalId::new("77"));
        q.images[0].src = "https://elsewhere.example/x.jpg".to_owned();
        assert_eq!(product_hash(&p), product_hash(&q));
        q.variants[0].sku = Some(Sku("OTHER".to_owned()));
        assert_ne!(product_hash(&p), product_hash(&q));
    }

    #[test]
    fn scale_is_part_of_the_hash_so_hash_normalised_records() {
        let p = sample::product(2);
        let mut q = p.clone();
        let price = q.variants[0].price.unwrap_or_default();
        q.variants[0].price = Some(price.normalize());
        assert_eq!(p, q, "Decimal equality ignores scale");
        if price.normalize().scale() != price.scale() {
            assert_ne!(product_hash(&p), product_hash(&q));
        }
    }

    #[test]
    fn image_hashes_are_domain_separated_and_pinned() {
        let url = "https://cdn.example.com/a.jpg";
        assert_ne!(image_hash_url(url), image_hash_bytes(url.as_bytes()));
        assert_eq!(
            image_hash_url(url),
            image_hash_url("  https://cdn.example.com/a.jpg\n")
        );
        // Pinned: stored hashes must not move between builds.
        assert_eq!(
            image_hash_url(url).to_hex(),
            "d14e291a2819a315753e27256ea0cbc1"
        );
        assert_eq!(
            product_hash(&sample::product(1)).to_hex(),
            "89bbb21a79b50faa37b7126c9c8dea43"
        );
        assert_eq!(
            order_hash(&sample::order(1)).to_hex(),
            "73a8c1ed4a36af77c55bafceedd423d9"
        );
        assert_ne!(
            record_hash(&RecordContent::Product(sample::product(3))),
            record_hash(&RecordContent::Order(sample::order(3)))
        );
    }
}
