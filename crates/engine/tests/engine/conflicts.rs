//! Conflicting edits end to end (issue acceptance of the engine, item 4): one field edited on
//! two platforms between syncs ends, everywhere, as the edit with the later platform time,
//! whichever platform is fetched first, and also when the earlier edit is already canonical
//! and waiting to be sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tidemark_testkit::store_test;

use std::time::Duration;

use crate::shops::{Options, Shops};
use tidemark_sim::mercadolibre::ItemEdit;
use tidemark_sim::woocommerce::Edit;

/// Platform times have one-second resolution: edits this far apart are ordered on every one.
const APART: Duration = Duration::from_millis(1_200);

store_test! {
    async fn the_later_platform_time_wins_everywhere_whichever_platform_is_fetched_first(store) {
        let shops = Shops::synced(store, Options::new(20)).await;
        let shapes: Vec<_> = shops.woo.shapes().into_iter().take(4).collect();
        let mut ids = Vec::new();
        for (_, shape) in &shapes {
            ids.push(shops.canonical_id(&shape.sku).await);
        }
        let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
        let (woo_a, woo_b, woo_c, woo_d) = (shapes[0].0, shapes[1].0, shapes[2].0, shapes[3].0);
        let shopify_a = shops.external(shops.s, a).await.unwrap();
        let shopify_b = shops.external(shops.s, b).await.unwrap();
        let shopify_d = shops.external(shops.s, d).await.unwrap();
        let ml_c = shops.external(shops.m, c).await.unwrap();
        let title = |t: &str| Edit { title: Some(t.into()), ..Edit::default() };

        // D's WooCommerce edit is fetched at once: canonical, and queued for Shopify and
        // MercadoLibre, but not sent before Shopify's later edit of it.
        assert!(shops.woo.edit_product(woo_d, &title("D earlier on WooCommerce")));
        let fetched = shops.fetch(shops.w).await;
        assert_eq!(fetched.counts.changed, 1, "{:?}", fetched.counts);
        tokio::time::sleep(APART).await;
        assert!(shops.shopify.edit_title(shopify_d.as_str(), "D later on Shopify"));

        // First round of edits: A on WooCommerce (its title, and the price of a variation
        // that nobody else edits: the title losing must not lose it), B on Shopify, C on
        // WooCommerce.
        assert!(shops.woo.edit_product(woo_a, &title("A earlier on WooCommerce")));
        let a_variation = shapes[0].1.variation_skus[0].clone();
        assert!(shops.woo.edit_product(woo_a, &Edit {
            variation_sku: Some(a_variation.clone()),
            price: Some("432.10".into()),
            ..Edit::default()
        }));
        assert!(shops.shopify.edit_title(shopify_b.as_str(), "B earlier on Shopify"));
        assert!(shops.woo.edit_product(woo_c, &title("C earlier on WooCommerce")));
        tokio::time::sleep(APART).await;
        // Second round, later: A on Shopify, B on WooCommerce, C on MercadoLibre.
        assert!(shops.shopify.edit_title(shopify_a.as_str(), "A later on Shopify"));
        assert!(shops.woo.edit_product(woo_b, &title("B later on WooCommerce")));
        shops
            .ml
            .edit_item(ml_c.as_str(), &ItemEdit {
                title: Some("C later on MercadoLibre".into()),
                ..ItemEdit::default()
            })
            .unwrap();

        // Fetched in an order that meets A's and C's later edits first and B's last.
        for connection in [shops.s, shops.m, shops.w] {
            let fetched = shops.fetch(connection).await;
            assert_eq!(fetched.counts.failed, 0, "{}: {:?}", shops.name(connection), fetched.counts);
        }
        let expected = [
            (a, "A later on Shopify"),
            (b, "B later on WooCommerce"),
            (c, "C later on MercadoLibre"),
            (d, "D later on Shopify"),
        ];
        for (id, title) in expected {
            assert_eq!(shops.canonical(id).await.title, title, "canonical {id}");
        }

        shops.send_all().await;
        for (id, title) in expected {
            for connection in shops.connections() {
                assert_eq!(
                    shops.on_platform(connection, id).await.title,
                    title,
                    "{id} on {}",
                    shops.name(connection)
                );
            }
        }
        for connection in shops.connections() {
            let on = shops.on_platform(connection, a).await;
            let variant = on
                .variants
                .iter()
                .find(|v| v.sku.as_ref().map(|s| s.as_str()) == Some(a_variation.as_str()))
                .unwrap();
            assert_eq!(
                variant.price.map(|p| p.normalize()),
                Some(rust_decimal::Decimal::new(43210, 2)),
                "A's price on {}",
                shops.name(connection)
            );
        }
        shops.assert_quiet().await;
        shops.stop().await;
    }
}
