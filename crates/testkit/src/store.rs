//! The dual-database harness: a test body runs on a fresh SQLite file and, when
//! `TIDEMARK_TEST_DATABASE_URL` is set, on a fresh PostgreSQL schema of that server. Without
//! the variable the PostgreSQL run prints "skipped: TIDEMARK_TEST_DATABASE_URL unset" and
//! passes; with it set but the server unreachable, it fails.

#![allow(clippy::expect_used)]

use std::future::Future;
use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tidemark_store::Store;

pub const DATABASE_URL_VAR: &str = "TIDEMARK_TEST_DATABASE_URL";

/// Runs `body` on a migrated store in a temporary SQLite file.
pub async fn run_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("tidemark.db").display()
    );
    let store = Store::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    let outcome = tokio::spawn(body(store.clone())).await;
    store.close().await;
    drop(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `body` on a migrated store in a fresh schema of the PostgreSQL server named by
/// `TIDEMARK_TEST_DATABASE_URL`, dropped afterwards (also when the body panics).
pub async fn run_postgres<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(url) = std::env::var(DATABASE_URL_VAR) else {
        println!("skipped: {DATABASE_URL_VAR} unset");
        return;
    };
    let options = PgConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is not a PostgreSQL URL: {e}"));
    let mut admin = PgConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is set but PostgreSQL is unreachable: {e}"));
    let schema = format!("tm_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    // The name is generated here from hex digits only; identifiers cannot be bound.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .expect("create test schema");
    let store = Store::connect_postgres(options.options([("search_path", schema.as_str())]), 8)
        .await
        .expect("connect to the test schema");
    let outcome = match store.migrate().await {
        Ok(()) => tokio::spawn(body(store.clone())).await,
        Err(e) => {
            store.close().await;
            drop_schema(&mut admin, &schema).await;
            panic!("migrate PostgreSQL: {e}");
        }
    };
    store.close().await;
    drop_schema(&mut admin, &schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn drop_schema(admin: &mut PgConnection, schema: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut *admin)
        .await
        .expect("drop test schema");
}

/// One test body, two tests: `<name>::sqlite` and `<name>::postgres` (see the module docs).
#[macro_export]
macro_rules! store_test {
    ($(#[$meta:meta])* async fn $name:ident($store:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($store: tidemark_store::Store) $body

            // Attributes (docs, `#[ignore]`) go on each test, where the harness reads them.
            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::store::run_sqlite(body).await;
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::store::run_postgres(body).await;
            }
        }
    };
}
