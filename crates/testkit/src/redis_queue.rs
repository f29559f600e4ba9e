//! Test queues live under fresh key prefixes on the shared Redis server; this removes them.

#![allow(clippy::expect_used)]

/// Deletes every key of the Redis server at `url` that starts with `prefix`.
pub async fn delete_keys(url: &str, prefix: &str) {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("list keys");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .expect("delete keys");
    }
}
