//! A platform's refusal end to end (issue acceptance of the engine, item 9): a write a
//! platform refuses becomes an issue on that record with the platform's code and message,
//! waits (without being repeated) until the record changes, and the issue is resolved once
//! the corrected record is sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tidemark_testkit::store_test;

use crate::shops::{Options, Shops};
use tidemark_core::{Issue, RecordRef, Severity};
use tidemark_sim::woocommerce::Edit;
use tidemark_store::IssueFilter;

async fn issues_of(
    shops: &Shops,
    connection: tidemark_core::ConnectionId,
    record: RecordRef,
) -> Vec<Issue> {
    shops
        .store()
        .list_issues(
            shops.world.account,
            &IssueFilter {
                connection: Some(connection),
                record: Some(record),
                open_only: false,
                before: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
}

store_test! {
    async fn a_refused_write_is_an_issue_with_the_platforms_code_until_the_fixed_record_is_sent(store) {
        let shops = Shops::synced(store, Options::new(20)).await;
        let (woo_id, shape) = shops.woo.shapes().into_iter().next().unwrap();
        let id = shops.canonical_id(&shape.sku).await;
        let record = RecordRef::Product(id);
        let ml_title = shops.on_platform(shops.m, id).await.title;

        // 70 characters: Shopify takes it, MercadoLibre refuses titles over 60.
        let long = "A title far too long for MercadoLibre, which stops at sixty characters";
        assert_eq!(long.chars().count(), 70);
        assert!(shops.woo.edit_product(woo_id, &Edit { title: Some(long.into()), ..Edit::default() }));
        shops.fetch(shops.w).await;
        let sent = shops.send_all().await;
        assert_eq!(sent[&shops.s].counts.updated, 1, "{:?}", sent[&shops.s].counts);
        assert_eq!(sent[&shops.m].counts.send_failed, 1, "{:?}", sent[&shops.m].counts);
        assert_eq!(shops.on_platform(shops.s, id).await.title, long);
        assert_eq!(shops.on_platform(shops.m, id).await.title, ml_title);

        let issues = issues_of(&shops, shops.m, record).await;
        assert_eq!(issues.len(), 1, "{issues:?}");
        let issue = &issues[0];
        assert_eq!(issue.code, "item.title.length.invalid", "{issue:?}");
        assert!(issue.message.contains("between 1 and 60 characters"), "{issue:?}");
        assert_eq!(issue.severity, Severity::Warning);
        assert_eq!(issue.resolved_at, None);
        assert!(issues_of(&shops, shops.s, record).await.is_empty());

        // Not repeated while nothing changed.
        let again = shops.send(shops.m).await;
        assert_eq!(again.counts.updated + again.counts.send_failed, 0, "{:?}", again.counts);
        assert_eq!(issues_of(&shops, shops.m, record).await[0].count, 1);

        // The merchant shortens the title: the waiting write goes at once, and succeeds.
        let short = "A title MercadoLibre takes";
        assert!(shops.woo.edit_product(woo_id, &Edit { title: Some(short.into()), ..Edit::default() }));
        shops.fetch(shops.w).await;
        let sent = shops.send_all().await;
        assert_eq!(sent[&shops.m].counts.updated, 1, "{:?}", sent[&shops.m].counts);
        assert_eq!(sent[&shops.m].counts.send_failed, 0, "{:?}", sent[&shops.m].counts);
        for connection in shops.connections() {
            assert_eq!(shops.on_platform(connection, id).await.title, short, "{}", shops.name(connection));
        }
        let issues = issues_of(&shops, shops.m, record).await;
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].resolved_at.is_some(), "{issues:?}");
        shops.assert_quiet().await;
        shops.stop().await;
    }
}
