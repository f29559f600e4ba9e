//! Deterministic, realistic sample records for benchmarks, store tests and simulators.
//!
//! `product(seed)` and `order(seed)` are pure functions of the seed, with their own tiny
//! SplitMix64 generator so that no RNG crate (and no crate version bump) can change them. The
//! output is already normalised (`normalize_product(product(s)) == product(s)`, with equal
//! hashes; a test checks it). Changing what a seed produces breaks every stored fixture and
//! benchmark baseline that uses it: add a new function instead.
//!
//! Shape of `product(seed)`:
//! * parent SKU `TM-{seed in hex}`, unique per seed; variant SKUs `TM-{hex}-{COLOR}-{SIZE}`;
//! * 3–10 variants over the `color` × `size` options, each with an EAN-13 barcode (valid check
//!   digit, `20…` in-store range, unique per seed and variant for seeds below 10^8), a price,
//!   sometimes a compare-at price, a stock of 0–120 (about one in ten out of stock) and a weight;
//! * 2–8 images hashed by URL (`https://cdn.example.com/tm/{hex}/{n}.jpg`), each variant
//!   pointing at the image of its colour;
//! * a 1–4 KB HTML description, 1–5 tags, 2–3 attributes, a brand, vendor and category;
//! * currency USD, except EUR when `seed % 10 == 7` and JPY when `seed % 10 == 9`;
//! * status active, except draft when `seed % 20 == 3` and paused when `seed % 20 == 13`.
//!
//! `order(seed)` is a USD order whose 1–4 lines name variants of `product(k)` for some `k`
//! below 1000, with consistent totals.

use rust_decimal::Decimal;

use crate::diff::cmp_variant_keys;
use crate::hash::image_hash_url;
use crate::model::{
    Barcode, Buyer, Currency, Image, ImageHashSource, OrderLine, OrderStatus, PaymentStatus,
    Product, ProductStatus, SalesOrder, Shipment, ShipmentStatus, Sku, Timestamp, Variant,
};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and good enough for fixtures.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `lo..=hi` for fixtures.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const ADJECTIVES: &[&str] = &[
    "Classic",
    "Everyday",
    "Vintage",
    "Urban",
    "Essential",
    "Premium",
    "Coastal",
    "Alpine",
    "Heritage",
    "Minimal",
    "Rugged",
    "Soft",
];
const MATERIALS: &[&str] = &[
    "Cotton", "Linen", "Wool", "Denim", "Leather", "Canvas", "Merino", "Bamboo", "Fleece",
];
const NOUNS: &[&str] = &[
    "T-Shirt", "Hoodie", "Jacket", "Tote Bag", "Cap", "Scarf", "Sneakers", "Backpack", "Shorts",
    "Sweater", "Socks", "Apron",
];
const BRANDS: &[&str] = &[
    "Tidewear",
    "Northloom",
    "Ría",
    "Brisa & Co",
    "Kōbō",
    "Salt Line",
];
const VENDORS: &[&str] = &[
    "Acme Textiles",
    "Buenos Aires Supply",
    "Nordic Goods",
    "Osaka Trading",
];
const CATEGORIES: &[&str] = &[
    "Apparel > Tops",
    "Apparel > Outerwear",
    "Accessories > Bags",
    "Accessories > Hats",
    "Footwear",
    "Home > Kitchen",
];
const TAGS: &[&str] = &[
    "summer",
    "winter",
    "new",
    "sale",
    "organic",
    "gift",
    "bestseller",
    "limited",
    "unisex",
    "eco",
];
const COLORS: &[&str] = &[
    "Black", "White", "Navy", "Red", "Olive", "Sand", "Grey", "Teal", "Mustard", "Rosé",
];
const SIZES: &[&str] = &["XS", "S", "M", "L", "XL"];
const CARE: &[&str] = &[
    "machine wash cold",
    "hand wash",
    "dry clean only",
    "wipe clean",
];
const ORIGINS: &[&str] = &[
    "Portugal",
    "Argentina",
    "Japan",
    "Peru",
    "Vietnam",
    "Türkiye",
];
const SENTENCES: &[&str] = &[
    "Made to last, and to be worn every day of the year.",
    "Cut from a soft, breathable fabric that gets better with every wash.",
    "A relaxed fit that layers easily over or under anything else you own.",
    "Reinforced seams and double stitching where it matters most.",
    "Dyed with low-impact dyes and finished without harsh chemicals.",
    "Designed in our studio and produced in small batches by a family-run workshop.",
    "Pairs well with denim, chinos or your favourite pair of shorts.",
    "Pre-shrunk, so the size you order is the size you keep.",
    "Packed in recycled paper with no single-use plastic.",
    "Each piece is inspected by hand before it leaves the workshop.",
];
const FEATURES: &[&str] = &[
    "Breathable weave",
    "Pre-washed for softness",
    "Tagless neck label",
    "Reinforced shoulder seams",
    "Recycled packaging",
    "Fair-trade certified",
    "Colour-fast dye",
    "Ribbed cuffs",
];
const FIRST_NAMES: &[&str] = &[
    "Ana", "Lucas", "Sofía", "Kenji", "Marta", "Oliver", "Chloé", "Iván",
];
const LAST_NAMES: &[&str] = &[
    "García", "Smith", "Tanaka", "Rossi", "Müller", "Pereira", "Novak",
];
const CARRIERS: &[&str] = &["UPS", "DHL", "Correo Argentino", "FedEx", "Yamato"];

fn currency_for(seed: u64) -> Currency {
    match seed % 10 {
        7 => Currency::parse("EUR").unwrap_or_default(),
        9 => Currency::parse("JPY").unwrap_or_default(),
        _ => Currency::USD,
    }
}

/// An amount given in cents, at the currency's scale (yen: whole units, ×100 the value).
fn money(cents: u64, currency: Currency) -> Decimal {
    let cents = i64::try_from(cents).unwrap_or(i64::MAX);
    match currency.minor_units() {
        0 => Decimal::new(cents, 0),
        units => {
            let mut amount = Decimal::new(cents, 2);
            amount.rescale(units);
            amount
        }
    }
}

fn ean13(body: u64) -> Barcode {
    // "20" + 10 digits: the in-store range, never a real manufacturer's GTIN.
    let digits = format!("20{:010}", body % 10_000_000_000);
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    Barcode(format!("{digits}{}", (10 - sum % 10) % 10))
}

fn description(rng: &mut Rng, title: &str) -> String {
    let target = rng.range(1024, 4000) as usize;
    let mut html = format!("<h2>{title}</h2>");
    while html.len() < target {
        match rng.next() % 4 {
            0 => {
                html.push_str("<ul>");
                for _ in 0..rng.range(2, 4) {
                    html.push_str("<li>");
                    html.push_str(rng.pick(FEATURES));
                    html.push_str("</li>");
                }
                html.push_str("</ul>");
            }
            1 => {
                html.push_str("<p>");
                html.push_str(rng.pick(SENTENCES));
                html.push_str(" <strong>");
                html.push_str(rng.pick(FEATURES));
                html.push_str("</strong> ");
                html.push_str(rng.pick(SENTENCES));
                html.push_str("</p>");
            }
            _ => {
                html.push_str("<p>");
                for index in 0..rng.range(2, 4) {
                    if index > 0 {
                        html.push(' ');
                    }
                    html.push_str(rng.pick(SENTENCES));
                }
                html.push_str("</p>");
            }
        }
    }
    html
}

/// A realistic product for `seed` (shape in the module docs).
pub fn product(seed: u64) -> Product {
    let mut rng = Rng::new(seed, 1);
    let currency = currency_for(seed);
    let title = format!(
        "{} {} {}",
        rng.pick(ADJECTIVES),
        rng.pick(MATERIALS),
        rng.pick(NOUNS)
    );
    let parent = format!("TM-{seed:x}");

    let image_count = rng.range(2, 8);
    let images: Vec<Image> = (0..image_count)
        .map(|n| {
            let src = format!("https://cdn.example.com/tm/{seed:x}/{n}.jpg");
            Image {
                external_id: None,
                content_hash: image_hash_url(&src),
                src,
                hash_source: ImageHashSource::Url,
                position: n as u32,
                alt: (n % 2 == 0).then(|| format!("{title}, view {}", n + 1)),
            }
        })
        .collect();

    let variant_count = rng.range(3, 10);
    let size_count = rng.range(1, SIZES.len() as u64);
    let color_offset = rng.range(0, COLORS.len() as u64 - 1);
    let base_cents = rng.range(5, 200) * 100 + [0, 50, 95, 99][rng.range(0, 3) as usize];
    let on_sale = rng.chance(30);
    let mut variants: Vec<Variant> = (0..variant_count)
        .map(|index| {
            let color_index = ((color_offset + index / size_count) % COLORS.len() as u64) as usize;
            let size_index = (index % size_count) as usize;
            let color = COLORS[color_index];
            let size = SIZES[size_index];
            let code: String = color
                .chars()
                .filter(char::is_ascii_alphabetic)
                .take(3)
                .collect::<String>()
                .to_uppercase();
            let price_cents = base_cents + size_index as u64 * 100;
            let stock = if rng.chance(10) {
                0
            } else {
                rng.range(1, 120) as i64
            };
            let image = &images[color_index % images.len()];
            Variant {
                external_id: None,
                sku: Some(Sku(format!("{parent}-{code}-{size}"))),
                barcode: Some(ean13(seed.wrapping_mul(16).wrapping_add(index))),
                options: [
                    ("color".to_owned(), color.to_owned()),
                    ("size".to_owned(), size.to_owned()),
                ]
                .into(),
                price: Some(money(price_cents, currency)),
                compare_at_price: on_sale.then(|| money(price_cents / 4 * 5, currency)),
                stock: Some(stock),
                weight_grams: Some(Decimal::new(rng.range(80, 2500) as i64 * 1000, 3)),
                image_hashes: vec![image.content_hash],
            }
        })
        .collect();
    variants.sort_by(cmp_variant_keys);

    let tags = (0..rng.range(1, 5))
        .map(|_| rng.pick(TAGS).to_owned())
        .collect();
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("material".to_owned(), rng.pick(MATERIALS).to_lowercase());
    attributes.insert("care".to_owned(), rng.pick(CARE).to_owned());
    if rng.chance(50) {
        attributes.insert("origin".to_owned(), rng.pick(ORIGINS).to_owned());
    }

    Product {
        sku: Some(Sku(parent)),
        description: description(&mut rng, &title),
        title,
        brand: Some(rng.pick(BRANDS).to_owned()),
        vendor: Some(rng.pick(VENDORS).to_owned()),
        category: Some(rng.pick(CATEGORIES).to_owned()),
        tags,
        barcode: None,
        weight_grams: None,
        status: match seed % 20 {
            3 => ProductStatus::Draft,
            13 => ProductStatus::Paused,
            _ => ProductStatus::Active,
        },
        attributes,
        currency,
        images,
        variants,
    }
}

/// A realistic USD order for `seed` (see the module docs).
pub fn order(seed: u64) -> SalesOrder {
    let mut rng = Rng::new(seed, 2);
    let currency = Currency::USD;
    let mut lines = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let mut k = rng.range(0, 999);
        while currency_for(k) != currency {
            k = (k + 1) % 1000;
        }
        let product = product(k);
        let variant = &product.variants[(rng.next() % product.variants.len() as u64) as usize];
        lines.push(OrderLine {
            sku: variant.sku.clone(),
            title: product.title.clone(),
            quantity: rng.range(1, 3) as i64,
            unit_price: variant.price.unwrap_or_default(),
        });
    }
    let subtotal: Decimal = lines
        .iter()
        .map(|line| line.unit_price * Decimal::from(line.quantity))
        .sum();
    let shipping_total = if rng.chance(40) {
        money(0, currency)
    } else {
        money(599, currency)
    };
    let mut tax_total = (subtotal * Decimal::new(1, 1))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    tax_total.rescale(2);
    let mut total = subtotal + shipping_total + tax_total;
    total.rescale(2);

    let (status, payment_status) = match rng.next() % 6 {
        0 => (OrderStatus::Pending, PaymentStatus::Pending),
        1 | 2 => (OrderStatus::Processing, PaymentStatus::Paid),
        3 | 4 => (OrderStatus::Completed, PaymentStatus::Paid),
        _ => (OrderStatus::Cancelled, PaymentStatus::Voided),
    };
    let shipments = if status == OrderStatus::Completed {
        vec![Shipment {
            carrier: Some(rng.pick(CARRIERS).to_owned()),
            tracking_number: Some(format!("TRK{:012}", rng.next() % 1_000_000_000_000)),
            status: ShipmentStatus::Delivered,
        }]
    } else {
        Vec::new()
    };
    let first = rng.pick(FIRST_NAMES);
    let last = rng.pick(LAST_NAMES);
    let email_user: String = format!("{first}.{last}{}", seed % 100)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_lowercase();

    SalesOrder {
        number: format!("{}", 100_000 + seed),
        buyer: Buyer {
            name: format!("{first} {last}"),
            email: Some(format!("{email_user}@example.com")),
            phone: rng.chance(60).then(|| {
                format!(
                    "+54 11 {:04} {:04}",
                    rng.next() % 10_000,
                    rng.next() % 10_000
                )
            }),
            address: vec![
                format!("{} Calle Falsa", rng.range(1, 9999)),
                rng.pick(&["Buenos Aires", "Madrid", "Osaka", "Lisboa"])
                    .to_owned(),
            ],
        },
        lines,
        currency,
        subtotal,
        shipping_total,
        tax_total,
        total,
        status,
        payment_status,
        shipments,
        note: rng.chance(20).then(|| "Please gift wrap".to_owned()),
        // 2025-01-01T00:00:00Z plus 37 minutes per seed.
        placed_at: Timestamp::from_millis(
            1_735_689_600_000 + (seed as i64 % 1_000_000) * 2_220_000,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{order_hash, product_hash};
    use crate::normalize::{normalize_order, normalize_product};

    #[test]
    fn samples_are_normalised_and_in_range() {
        for seed in 0..300 {
            let p = product(seed);
            let normalised = normalize_product(p.clone()).unwrap_or_else(|e| panic!("{seed}: {e}"));
            assert_eq!(normalised, p, "seed {seed}");
            assert_eq!(product_hash(&normalised), product_hash(&p), "seed {seed}");
            assert!((3..=10).contains(&p.variants.len()), "seed {seed}");
            assert!((2..=8).contains(&p.images.len()), "seed {seed}");
            assert!((1024..=4200).contains(&p.description.len()), "seed {seed}");

            let o = order(seed);
            let normalised = normalize_order(o.clone()).unwrap_or_else(|e| panic!("{seed}: {e}"));
            assert_eq!(order_hash(&normalised), order_hash(&o), "seed {seed}");
            assert_eq!(o.total, o.subtotal + o.shipping_total + o.tax_total);
        }
    }

    #[test]
    fn samples_are_stable() {
        // Pinned: a change here breaks stored fixtures and benchmark baselines.
        let p = product(42);
        assert_eq!(p.sku, Some(Sku("TM-2a".to_owned())));
        assert_eq!(product(42), p);
        assert_ne!(product(43).title.len() + product(43).variants.len(), 0);
        assert_eq!(order(7), order(7));
        let ean = ean13(123);
        assert_eq!(ean.as_str().len(), 13);
        assert_eq!(ean.as_str(), "2000000001234");
    }
}
