//! Outbound and inbound transforms of one connection (DESIGN §4, "Field policy and
//! transforms").
//!
//! *Outbound* turns a canonical product into what it should look like on a connection:
//!
//! * price and compare-at: `canonical × (1 + margin_percent / 100)`, then `× conversion_rate`
//!   when the connection's `currency` differs from the product's, then `+ margin_fixed` (which
//!   is in the target currency), then the [`Rounding`] rule, then the target currency's minor
//!   units. A result below zero is an error, never a silently clamped price;
//! * category: `category_map[category]`, else `default_category`, else unchanged;
//! * options: canonical `color` / `size` are renamed to `color_attribute` / `size_attribute`
//!   when set;
//! * the result is normalised (option names lower-cased, variants re-sorted) so that it can be
//!   diffed against the connection's snapshot, which is normalised too. Connectors spell the
//!   option names with the settings' own case when they write.
//!
//! *Inbound* is the reverse for a scanned record: option names back to `color` / `size`,
//! categories through the reversed map (the first canonical category in name order when
//! several map to one), prices through the inverse margin and conversion rounded to the
//! canonical minor unit.
//!
//! Rounding is not invertible (19.50 and 19.95 both charm to 19.99), so `inbound(outbound(c))`
//! may differ from `c`. Two rules keep that from ping-ponging: when absorbing, a scanned price
//! equal to `outbound(canonical)` is not a change ([`crate::merge`]); when planning, a snapshot
//! price whose inbound value equals the canonical price needs no update ([`crate::plan`]).

use rust_decimal::{Decimal, RoundingStrategy};
use thiserror::Error;

use crate::diff::VariantKey;
use crate::model::{
    ConnectionSettings, Currency, Field, OrderStatus, PaymentStatus, Product, Rounding, SalesOrder,
    Sku, Variant,
};
use crate::normalize::{self, NormalizeError, option_name};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TransformError {
    #[error(
        "prices are in {from} but the connection writes {to}: set the connection setting \
         conversion_rate ({to} per {from})"
    )]
    MissingConversionRate { from: Currency, to: Currency },
    #[error("the connection setting conversion_rate must be above zero, not {rate}")]
    InvalidConversionRate { rate: Decimal },
    #[error("the connection setting price.margin_percent must be above -100, not {percent}")]
    InvalidMargin { percent: Decimal },
    #[error("the connection setting price.rounding step must be above zero, not {step}")]
    InvalidRoundingStep { step: Decimal },
    #[error("the connection setting price.rounding charm ending must be in [0, 1), not {ending}")]
    InvalidCharmEnding { ending: Decimal },
    #[error(
        "the price {price} becomes {result} through the connection's price settings; prices cannot be negative"
    )]
    NegativePrice { price: Decimal, result: Decimal },
    #[error("the price {price} overflows through the connection's price settings")]
    Overflow { price: Decimal },
    #[error("the transformed product is not valid: {0}")]
    Normalize(#[from] NormalizeError),
}

fn margin_factor(settings: &ConnectionSettings) -> Result<Decimal, TransformError> {
    let percent = settings.price.margin_percent;
    match Decimal::ONE.checked_add(percent / Decimal::ONE_HUNDRED) {
        Some(factor) if factor > Decimal::ZERO => Ok(factor),
        _ => Err(TransformError::InvalidMargin { percent }),
    }
}

/// The conversion rate between `from` and `to`, `1` when they are the same.
fn rate(
    settings: &ConnectionSettings,
    from: Currency,
    to: Currency,
) -> Result<Decimal, TransformError> {
    if from == to {
        return Ok(Decimal::ONE);
    }
    match settings.conversion_rate {
        None => Err(TransformError::MissingConversionRate { from, to }),
        Some(rate) if rate <= Decimal::ZERO => Err(TransformError::InvalidConversionRate { rate }),
        Some(rate) => Ok(rate),
    }
}

/// The currency prices are written in on this connection.
pub fn target_currency(canonical: Currency, settings: &ConnectionSettings) -> Currency {
    settings.currency.unwrap_or(canonical)
}

fn round(value: Decimal, rule: &Rounding, minor: u32) -> Option<Decimal> {
    let step_round = |step: Decimal, strategy: RoundingStrategy| {
        value
            .checked_div(step)?
            .round_dp_with_strategy(0, strategy)
            .checked_mul(step)
    };
    match rule {
        Rounding::MinorUnit => {
            Some(value.round_dp_with_strategy(minor, RoundingStrategy::MidpointAwayFromZero))
        }
        Rounding::Nearest { step } => step_round(*step, RoundingStrategy::MidpointAwayFromZero),
        Rounding::Up { step } => step_round(*step, RoundingStrategy::ToPositiveInfinity),
        Rounding::Down { step } => step_round(*step, RoundingStrategy::ToNegativeInfinity),
        // The smallest `n − ending` (n whole) at or above the value: 9.50 → 9.99, 10.00 → 10.99.
        Rounding::Charm { ending } => value.checked_add(*ending)?.ceil().checked_sub(*ending),
    }
}

fn check_rounding(rule: &Rounding) -> Result<(), TransformError> {
    match rule {
        Rounding::Nearest { step } | Rounding::Up { step } | Rounding::Down { step }
            if *step <= Decimal::ZERO =>
        {
            Err(TransformError::InvalidRoundingStep { step: *step })
        }
        Rounding::Charm { ending } if *ending < Decimal::ZERO || *ending >= Decimal::ONE => {
            Err(TransformError::InvalidCharmEnding { ending: *ending })
        }
        _ => Ok(()),
    }
}

fn pin(price: Decimal, value: Decimal, minor: u32) -> Result<Decimal, TransformError> {
    let result = normalize::amount(value, minor, String::new)
        .map_err(|_| TransformError::Overflow { price })?;
    if result.is_sign_negative() {
        return Err(TransformError::NegativePrice { price, result });
    }
    Ok(result)
}

/// A canonical price (in `from`) as written on this connection.
pub fn outbound_price(
    price: Decimal,
    from: Currency,
    settings: &ConnectionSettings,
) -> Result<Decimal, TransformError> {
    let to = target_currency(from, settings);
    let rule = &settings.price.rounding;
    check_rounding(rule)?;
    let factor = margin_factor(settings)?;
    let rate = rate(settings, from, to)?;
    let value = price
        .checked_mul(factor)
        .and_then(|v| v.checked_mul(rate))
        .and_then(|v| v.checked_add(settings.price.margin_fixed))
        .and_then(|v| round(v, rule, to.minor_units()))
        .ok_or(TransformError::Overflow { price })?;
    pin(price, value, to.minor_units())
}

/// A price as read on this connection (in `from`, the connection's currency) back in the
/// canonical currency `to`: the inverse of margin and conversion, rounded to `to`'s minor unit.
pub fn inbound_price(
    price: Decimal,
    from: Currency,
    to: Currency,
    settings: &ConnectionSettings,
) -> Result<Decimal, TransformError> {
    let factor = margin_factor(settings)?;
    let rate = rate(settings, to, from)?;
    let value = price
        .checked_sub(settings.price.margin_fixed)
        .and_then(|v| v.checked_div(rate))
        .and_then(|v| v.checked_div(factor))
        .ok_or(TransformError::Overflow { price })?;
    pin(price, value, to.minor_units())
}

fn map_prices(
    product: &mut Product,
    mut map: impl FnMut(Decimal) -> Result<Decimal, TransformError>,
) -> Result<(), TransformError> {
    for variant in &mut product.variants {
        variant.price = variant.price.map(&mut map).transpose()?;
        variant.compare_at_price = variant.compare_at_price.map(&mut map).transpose()?;
    }
    Ok(())
}

fn same_name(a: &str, setting: Option<&String>) -> bool {
    setting.is_some_and(|s| option_name(s) == option_name(a))
}

/// A platform option name in canonical terms: the connection's colour / size attribute
/// becomes `color` / `size`; anything else is only normalised.
pub fn inbound_option_name(name: &str, settings: &ConnectionSettings) -> String {
    if same_name(name, settings.color_attribute.as_ref()) {
        "color".to_owned()
    } else if same_name(name, settings.size_attribute.as_ref()) {
        "size".to_owned()
    } else {
        option_name(name)
    }
}

fn outbound_option_name(name: &str, settings: &ConnectionSettings) -> String {
    let renamed = match name {
        "color" => settings.color_attribute.as_deref(),
        "size" => settings.size_attribute.as_deref(),
        _ => None,
    };
    option_name(renamed.unwrap_or(name))
}

/// The key a variant scanned on this connection has once brought into canonical terms.
pub fn inbound_variant_key(variant: &Variant, settings: &ConnectionSettings) -> VariantKey {
    match &variant.sku {
        Some(sku) => VariantKey::Sku(normalize::sku_key(sku)),
        None => {
            let mut options: Vec<(String, String)> = variant
                .options
                .iter()
                .map(|(name, value)| (inbound_option_name(name, settings), value.clone()))
                .collect();
            options.sort();
            VariantKey::Options(options)
        }
    }
}

/// The canonical product as it should be on this connection (rules in the module docs).
pub fn outbound_product(
    product: &Product,
    settings: &ConnectionSettings,
) -> Result<Product, TransformError> {
    let mut out = product.clone();
    let from = product.currency;
    map_prices(&mut out, |price| outbound_price(price, from, settings))?;
    out.currency = target_currency(from, settings);
    out.category = match &product.category {
        Some(category) if settings.category_map.contains_key(category) => {
            settings.category_map.get(category).cloned()
        }
        _ => settings
            .default_category
            .clone()
            .or_else(|| product.category.clone()),
    };
    for variant in &mut out.variants {
        variant.options = std::mem::take(&mut variant.options)
            .into_iter()
            .map(|(name, value)| (outbound_option_name(&name, settings), value))
            .collect();
    }
    Ok(normalize::normalize_product(out)?)
}

/// A product scanned on this connection in canonical terms, prices in `canonical_currency`
/// (rules in the module docs). The canonical currency is a parameter because the settings
/// only name the connection's.
pub fn inbound_product(
    product: &Product,
    settings: &ConnectionSettings,
    canonical_currency: Currency,
) -> Result<Product, TransformError> {
    let mut out = product.clone();
    let from = product.currency;
    map_prices(&mut out, |price| {
        inbound_price(price, from, canonical_currency, settings)
    })?;
    out.currency = canonical_currency;
    if let Some(category) = &product.category
        && let Some((canonical, _)) = settings
            .category_map
            .iter()
            .find(|(_, mapped)| *mapped == category)
    {
        out.category = Some(canonical.clone());
    }
    for variant in &mut out.variants {
        variant.options = std::mem::take(&mut variant.options)
            .into_iter()
            .map(|(name, value)| (inbound_option_name(&name, settings), value))
            .collect();
    }
    Ok(normalize::normalize_product(out)?)
}

/// A platform price [`inbound_product_lenient`] could not read back in canonical terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadablePrice {
    /// The variant's key in canonical terms ([`inbound_variant_key`]).
    pub key: VariantKey,
    pub sku: Option<Sku>,
    /// [`Field::Price`] or [`Field::CompareAtPrice`].
    pub field: Field,
    /// As on the platform.
    pub price: Decimal,
    pub reason: TransformError,
}

/// [`inbound_product`], except that a price the inverse margin cannot bring back (it would be
/// negative, or it overflows — a platform price below `margin_fixed`, say) is left out
/// (`None`) and reported instead of failing the whole record: one odd price must not block
/// the record's stock and other fields. Errors of the settings themselves (no conversion
/// rate, a margin at or below −100 %) still fail, since no price could be read.
pub fn inbound_product_lenient(
    product: &Product,
    settings: &ConnectionSettings,
    canonical_currency: Currency,
) -> Result<(Product, Vec<UnreadablePrice>), TransformError> {
    let from = product.currency;
    margin_factor(settings)?;
    rate(settings, canonical_currency, from)?;
    let mut unreadable = Vec::new();
    let mut readable = product.clone();
    for variant in &mut readable.variants {
        let key = inbound_variant_key(variant, settings);
        for (field, slot) in [
            (Field::Price, &mut variant.price),
            (Field::CompareAtPrice, &mut variant.compare_at_price),
        ] {
            let Some(price) = *slot else { continue };
            if let Err(reason) = inbound_price(price, from, canonical_currency, settings) {
                unreadable.push(UnreadablePrice {
                    key: key.clone(),
                    sku: variant.sku.clone(),
                    field,
                    price,
                    reason,
                });
                *slot = None;
            }
        }
    }
    Ok((
        inbound_product(&readable, settings, canonical_currency)?,
        unreadable,
    ))
}

/// A canonical order as created on (and kept up to date on) this connection.
///
/// `order_defaults` stand in for what the origin does not give: the number prefix is added
/// once (an already prefixed number is left alone), the customer email and note fill in only
/// when the order has none, and the default status / payment status replace only the
/// *initial* `pending` state. Once the canonical order moves on (paid, completed,
/// cancelled…), its own state is written, so a status change still propagates and the
/// default never fights it.
pub fn outbound_order(order: &SalesOrder, settings: &ConnectionSettings) -> SalesOrder {
    let defaults = &settings.order_defaults;
    let mut out = order.clone();
    if let Some(prefix) = defaults.number_prefix.as_deref().filter(|p| !p.is_empty())
        && !out.number.starts_with(prefix)
    {
        out.number = format!("{prefix}{}", out.number);
    }
    if out.status == OrderStatus::Pending
        && let Some(status) = defaults.status
    {
        out.status = status;
    }
    if out.payment_status == PaymentStatus::Pending
        && let Some(status) = defaults.payment_status
    {
        out.payment_status = status;
    }
    if out.buyer.email.is_none() {
        out.buyer.email.clone_from(&defaults.customer_email);
    }
    if out.note.is_none() {
        out.note.clone_from(&defaults.note);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::model::PriceRule;
    use crate::sample;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap_or_default()
    }

    fn settings(percent: &str, fixed: &str, rounding: Rounding) -> ConnectionSettings {
        ConnectionSettings {
            price: PriceRule {
                margin_percent: dec(percent),
                margin_fixed: dec(fixed),
                rounding,
            },
            ..ConnectionSettings::default()
        }
    }

    #[test]
    fn outbound_prices() {
        let usd = Currency::USD;
        let step = |s: &str| dec(s);
        let cases = [
            ("10", "0", "0", Rounding::MinorUnit, "10.00"),
            ("10", "15", "0", Rounding::MinorUnit, "11.50"),
            ("10", "15", "0.99", Rounding::MinorUnit, "12.49"),
            (
                "10.33",
                "0",
                "0",
                Rounding::Nearest { step: step("0.05") },
                "10.35",
            ),
            (
                "10.32",
                "0",
                "0",
                Rounding::Nearest { step: step("0.05") },
                "10.30",
            ),
            ("10.01", "0", "0", Rounding::Up { step: step("1") }, "11.00"),
            (
                "10.99",
                "0",
                "0",
                Rounding::Down { step: step("1") },
                "10.00",
            ),
            (
                "9.50",
                "0",
                "0",
                Rounding::Charm {
                    ending: step("0.01"),
                },
                "9.99",
            ),
            (
                "10.00",
                "0",
                "0",
                Rounding::Charm {
                    ending: step("0.01"),
                },
                "10.99",
            ),
            (
                "19.99",
                "0",
                "0",
                Rounding::Charm {
                    ending: step("0.01"),
                },
                "19.99",
            ),
            (
                "18.2",
                "10",
                "0",
                Rounding::Charm {
                    ending: step("0.05"),
                },
                "20.95",
            ),
        ];
        for (price, percent, fixed, rounding, expected) in cases {
            let s = settings(percent, fixed, rounding.clone());
            let out = outbound_price(dec(price), usd, &s);
            assert_eq!(
                out.map(|d| d.to_string()),
                Ok(expected.to_owned()),
                "{price} +{percent}% +{fixed} {rounding:?}"
            );
        }
    }

    #[test]
    fn conversion_needs_a_rate_and_takes_the_target_scale() {
        let jpy = Currency::parse("JPY").unwrap_or_default();
        let mut s = settings("0", "0", Rounding::MinorUnit);
        s.currency = Some(jpy);
        let err = outbound_price(dec("10"), Currency::USD, &s).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some(
                "prices are in USD but the connection writes JPY: set the connection setting \
                 conversion_rate (JPY per USD)"
                    .to_owned()
            )
        );
        s.conversion_rate = Some(dec("151.37"));
        assert_eq!(
            outbound_price(dec("10.00"), Currency::USD, &s).map(|d| d.to_string()),
            Ok("1514".to_owned())
        );
        assert_eq!(
            inbound_price(dec("1514"), jpy, Currency::USD, &s).map(|d| d.to_string()),
            Ok("10.00".to_owned())
        );
    }

    #[test]
    fn invalid_settings_are_errors_not_panics() {
        let bad = [
            settings("-100", "0", Rounding::MinorUnit),
            settings(
                "0",
                "0",
                Rounding::Nearest {
                    step: Decimal::ZERO,
                },
            ),
            settings(
                "0",
                "0",
                Rounding::Charm {
                    ending: Decimal::ONE,
                },
            ),
            settings("0", "-20", Rounding::MinorUnit),
        ];
        for s in bad {
            assert!(
                outbound_price(dec("10"), Currency::USD, &s).is_err(),
                "{s:?}"
            );
        }
        assert!(
            outbound_price(
                Decimal::MAX,
                Currency::USD,
                &settings("50", "0", Rounding::MinorUnit)
            )
            .is_err()
        );
    }

    #[test]
    fn products_round_trip_names_and_categories() {
        let mut s = settings("20", "0", Rounding::MinorUnit);
        s.color_attribute = Some("Colour".into());
        s.size_attribute = Some("pa_size".into());
        s.category_map
            .insert("Footwear".into(), "Shoes > All".into());
        let mut canonical = sample::product(4);
        canonical.category = Some("Footwear".into());
        let out = outbound_product(&canonical, &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.category.as_deref(), Some("Shoes > All"));
        assert!(
            out.variants
                .iter()
                .all(|v| v.options.contains_key("colour") && v.options.contains_key("pa_size"))
        );
        let back = inbound_product(&out, &s, canonical.currency).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.category, canonical.category);
        assert_eq!(
            back.variants.iter().map(|v| &v.options).collect::<Vec<_>>(),
            canonical
                .variants
                .iter()
                .map(|v| &v.options)
                .collect::<Vec<_>>()
        );
        assert_eq!(back.variants[0].price, canonical.variants[0].price);

        s.default_category = Some("Misc".into());
        canonical.category = Some("Unmapped".into());
        let out = outbound_product(&canonical, &s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.category.as_deref(), Some("Misc"));
    }

    #[test]
    fn order_defaults_fill_in_and_replace_only_the_initial_state() {
        let mut s = ConnectionSettings::default();
        s.order_defaults.number_prefix = Some("ML-".into());
        s.order_defaults.status = Some(OrderStatus::Processing);
        s.order_defaults.customer_email = Some("orders@shop.example".into());
        s.order_defaults.note = Some("from MercadoLibre".into());
        let mut order = sample::order(3);
        order.status = OrderStatus::Pending;
        order.buyer.email = None;
        order.note = None;
        let out = outbound_order(&order, &s);
        assert_eq!(out.number, format!("ML-{}", order.number));
        assert_eq!(out.status, OrderStatus::Processing);
        assert_eq!(out.buyer.email.as_deref(), Some("orders@shop.example"));
        assert_eq!(out.note.as_deref(), Some("from MercadoLibre"));
        assert_eq!(
            outbound_order(&out, &s).number,
            out.number,
            "prefix added once"
        );
        order.status = OrderStatus::Cancelled;
        assert_eq!(outbound_order(&order, &s).status, OrderStatus::Cancelled);
    }
}
