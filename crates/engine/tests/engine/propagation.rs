//! Propagation end to end over three shops (issue acceptance of the engine, items 2 and 3): an
//! edit on WooCommerce reaches Shopify and MercadoLibre within each one's field policy, and
//! sales on two platforms between syncs both come off every platform's stock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tidemark_testkit::store_test;

use crate::shops::{Options, Shops};
use rust_decimal::Decimal;
use tidemark_core::{Field, FieldPolicy, Product, Sku};
use tidemark_engine::FetchScope;
use tidemark_sim::mercadolibre::{ItemEdit, PlaceOrder};
use tidemark_sim::woocommerce::Edit;

fn variant<'a>(product: &'a Product, sku: &str) -> &'a tidemark_core::Variant {
    product
        .variants
        .iter()
        .find(|v| v.sku.as_ref().map(Sku::as_str) == Some(sku))
        .unwrap_or_else(|| panic!("no variant {sku} in {product:?}"))
}

fn prices(product: &Product) -> Vec<(Option<Sku>, Option<Decimal>)> {
    product
        .variants
        .iter()
        .map(|v| (v.sku.clone(), v.price.map(|p| p.normalize())))
        .collect()
}

store_test! {
    async fn a_woocommerce_title_edit_reaches_shopify_and_mercadolibre_within_their_field_policies(store) {
        let shops = Shops::synced(store, Options::new(20)).await;
        // Set after the first sync, as a merchant would: Shopify's prices are never written
        // (readonly) nor read; MercadoLibre's are read but never written (absorb-only).
        shops
            .set_settings(shops.s, |s| {
                s.field_policies.insert(Field::Price, FieldPolicy::Readonly);
            })
            .await;
        shops
            .set_settings(shops.m, |s| {
                s.field_policies.insert(Field::Price, FieldPolicy::AbsorbOnly);
            })
            .await;

        let (woo_id, shape) = shops
            .woo
            .shapes()
            .into_iter()
            .find(|(_, s)| s.variation_skus.len() >= 2)
            .expect("a variable product");
        let id = shops.canonical_id(&shape.sku).await;
        let edited_sku = shape.variation_skus[0].clone();
        let shopify_before = shops.on_platform(shops.s, id).await;
        let ml_before = shops.on_platform(shops.m, id).await;

        // The merchant renames the product on WooCommerce and reprices one variation.
        assert!(shops.woo.edit_product(woo_id, &Edit {
            title: Some("Renamed on WooCommerce".into()),
            ..Edit::default()
        }));
        assert!(shops.woo.edit_product(woo_id, &Edit {
            variation_sku: Some(edited_sku.clone()),
            price: Some("987.65".into()),
            ..Edit::default()
        }));
        let fetched = shops.fetch(shops.w).await;
        assert_eq!(fetched.counts.changed, 1, "{:?}", fetched.counts);
        let canonical = shops.canonical(id).await;
        assert_eq!(canonical.title, "Renamed on WooCommerce");
        assert_eq!(variant(&canonical, &edited_sku).price.map(|p| p.normalize()), Some(Decimal::new(98765, 2)));

        let sent = shops.send_all().await;
        assert_eq!(sent[&shops.s].counts.updated, 1, "{:?}", sent[&shops.s].counts);
        assert_eq!(sent[&shops.m].counts.updated, 1, "{:?}", sent[&shops.m].counts);
        assert_eq!(sent[&shops.w].counts.updated, 0, "{:?}", sent[&shops.w].counts);

        // The title went everywhere; the price went nowhere.
        let on_shopify = shops.on_platform(shops.s, id).await;
        let on_ml = shops.on_platform(shops.m, id).await;
        assert_eq!(on_shopify.title, "Renamed on WooCommerce");
        assert_eq!(on_ml.title, "Renamed on WooCommerce");
        assert_eq!(prices(&on_shopify), prices(&shopify_before), "readonly price written to Shopify");
        assert_eq!(prices(&on_ml), prices(&ml_before), "absorb-only price sent to MercadoLibre");

        // Absorb-only still absorbs: a price edited on MercadoLibre reaches WooCommerce (and
        // not Shopify, where prices are readonly).
        let ml_item = shops.external(shops.m, id).await.unwrap();
        let ml_variant = variant(&on_ml, &edited_sku).external_id.clone().unwrap();
        shops
            .ml
            .edit_item(ml_item.as_str(), &ItemEdit {
                variation_id: Some(ml_variant.as_str().parse().unwrap()),
                price: Some("55.5".into()),
                ..ItemEdit::default()
            })
            .unwrap();
        let fetched = shops.fetch(shops.m).await;
        assert_eq!(fetched.counts.changed, 1, "{:?}", fetched.counts);
        let canonical = shops.canonical(id).await;
        assert_eq!(variant(&canonical, &edited_sku).price.map(|p| p.normalize()), Some(Decimal::new(555, 1)));
        shops.send_all().await;
        let on_woo = shops.on_platform(shops.w, id).await;
        assert_eq!(variant(&on_woo, &edited_sku).price.map(|p| p.normalize()), Some(Decimal::new(555, 1)));
        assert_eq!(prices(&shops.on_platform(shops.s, id).await), prices(&shopify_before));

        // Readonly is not absorbed either: a price edited on Shopify changes nothing.
        let shopify_product = shops.external(shops.s, id).await.unwrap();
        assert!(shops.shopify.edit_price(shopify_product.as_str(), "1.23"));
        shops.fetch(shops.s).await;
        assert_eq!(shops.canonical(id).await, canonical);

        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn one_sale_on_each_of_two_platforms_lowers_every_stock_by_two(store) {
        let shops = Shops::synced(store, Options::new(20)).await;
        let (_, shape) = shops
            .woo
            .shapes()
            .into_iter()
            .find(|(_, s)| {
                s.variation_skus.len() >= 2
                    && s.variation_skus.iter().all(|sku| shops.woo.stock_of(sku).unwrap_or(0) >= 6)
            })
            .expect("a variable product with stock");
        let id = shops.canonical_id(&shape.sku).await;
        let first = shape.variation_skus[0].clone();
        let second = shape.variation_skus[1].clone();
        let stock = |p: &Product, sku: &str| variant(p, sku).stock.unwrap();
        let start = shops.canonical(id).await;
        let (first_start, second_start) = (stock(&start, &first), stock(&start, &second));

        // Round one: a sale on WooCommerce and one on Shopify of the same variant. Neither
        // platform moves the product's modification time for a sale, so only a full scan
        // sees them.
        assert!(shops.woo.place_order(&first, 1).is_some());
        let on_shopify = shops.on_platform(shops.s, id).await;
        let shopify_variant = variant(&on_shopify, &first).external_id.clone().unwrap();
        assert!(shops.shopify.place_order(&[(shopify_variant.as_str(), 1)]).is_some());
        for connection in [shops.w, shops.s] {
            let fetched = shops.fetch_scope(connection, FetchScope::Full).await;
            assert_eq!(fetched.counts.changed, 1, "{}: {:?}", shops.name(connection), fetched.counts);
        }
        assert_eq!(stock(&shops.canonical(id).await, &first), first_start - 2);
        shops.send_all().await;
        for connection in shops.connections() {
            let on = shops.on_platform(connection, id).await;
            assert_eq!(stock(&on, &first), first_start - 2, "{}", shops.name(connection));
            assert_eq!(stock(&on, &second), second_start, "{}", shops.name(connection));
        }

        // Round two: MercadoLibre and WooCommerce sell the other variant.
        let on_ml = shops.on_platform(shops.m, id).await;
        let item = shops.external(shops.m, id).await.unwrap();
        let ml_variant = variant(&on_ml, &second).external_id.clone().unwrap();
        assert!(shops
            .ml
            .place_order(&PlaceOrder {
                item_id: item.as_str().to_owned(),
                variation_id: Some(ml_variant.as_str().parse().unwrap()),
                quantity: 1,
            })
            .is_some());
        assert!(shops.woo.place_order(&second, 1).is_some());
        for connection in [shops.m, shops.w] {
            shops.fetch_scope(connection, FetchScope::Full).await;
        }
        assert_eq!(stock(&shops.canonical(id).await, &second), second_start - 2);
        shops.send_all().await;
        for connection in shops.connections() {
            let on = shops.on_platform(connection, id).await;
            assert_eq!(stock(&on, &first), first_start - 2, "{}", shops.name(connection));
            assert_eq!(stock(&on, &second), second_start - 2, "{}", shops.name(connection));
        }

        // Round three: a WooCommerce sale is fetched and queued; Shopify sells the same
        // variant before the queued stock is sent there. The send moves Shopify's own
        // quantity, so its sale is kept, and the next fetch brings it home.
        assert!(shops.woo.place_order(&first, 1).is_some());
        shops.fetch_scope(shops.w, FetchScope::Full).await;
        assert!(shops.shopify.place_order(&[(shopify_variant.as_str(), 1)]).is_some());
        shops.send_all().await;
        shops.fetch_scope(shops.s, FetchScope::Full).await;
        assert_eq!(stock(&shops.canonical(id).await, &first), first_start - 4);
        shops.send_all().await;
        for connection in shops.connections() {
            let on = shops.on_platform(connection, id).await;
            assert_eq!(stock(&on, &first), first_start - 4, "{}", shops.name(connection));
        }

        shops.assert_quiet().await;
        shops.stop().await;
    }
}

store_test! {
    async fn the_first_fetch_after_the_first_sync_changes_no_canonical_record(store) {
        let shops = Shops::start(store, Options { around_gaps: false, ..Options::new(20) }).await;
        shops.fetch(shops.w).await;
        for target in [shops.s, shops.m] {
            let sent = shops.send(target).await;
            assert_eq!(sent.counts.inserted, 20, "{:?}", sent.counts);
        }
        let before = shops.all_canonical().await;
        for target in [shops.s, shops.m] {
            shops.fetch(target).await;
        }
        let after = shops.all_canonical().await;
        for (id, product) in &before {
            assert_eq!(
                tidemark_core::diff::diff_products(product, &after[id]).changed_fields(),
                Default::default(),
                "{id}"
            );
        }
        shops.stop().await;
    }
}
