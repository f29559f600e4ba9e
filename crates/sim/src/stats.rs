//! What a simulator counts, for assertions: requests, requests in flight (and the most at
//! once), faults injected, creates per SKU (a second create of one SKU is a duplicate), and
//! deletes of products or orders (tidemark must never cause one).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    in_flight: AtomicI64,
    max_in_flight: AtomicI64,
    throttled: AtomicU64,
    product_deletes: AtomicU64,
    order_deletes: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    faults: BTreeMap<&'static str, u64>,
    creates_by_sku: BTreeMap<String, u64>,
    creates_without_sku: u64,
}

/// A point-in-time copy of the counters (served by `GET /_sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub in_flight: i64,
    pub max_in_flight: i64,
    /// Rate-limit answers given (injected or earned by exceeding the platform's limit).
    pub throttled: u64,
    pub faults: BTreeMap<String, u64>,
    pub creates: u64,
    /// Creates of a SKU that had already been created: each one is a duplicate product.
    pub duplicate_creates: u64,
    pub product_deletes: u64,
    pub order_deletes: u64,
}

/// Marks one platform request in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Stats);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Stats {
    pub fn begin_request(&self) -> InFlight<'_> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    pub fn record_fault(&self, name: &'static str) {
        *self.lock().faults.entry(name).or_default() += 1;
    }

    pub fn record_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Call on every product created through the platform API (not through admin calls).
    pub fn record_create(&self, sku: Option<&str>) {
        let mut inner = self.lock();
        match sku.map(str::trim).filter(|s| !s.is_empty()) {
            Some(sku) => *inner.creates_by_sku.entry(sku.to_owned()).or_default() += 1,
            None => inner.creates_without_sku += 1,
        }
    }

    pub fn record_product_delete(&self) {
        self.product_deletes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_order_delete(&self) {
        self.order_deletes.fetch_add(1, Ordering::Relaxed);
    }

    /// Restarts the most-in-flight gauge (e.g. between phases of a test).
    pub fn reset_max_in_flight(&self) {
        self.max_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let inner = self.lock();
        let creates = inner.creates_by_sku.values().sum::<u64>() + inner.creates_without_sku;
        let duplicate_creates = inner
            .creates_by_sku
            .values()
            .map(|n| n.saturating_sub(1))
            .sum();
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
            throttled: self.throttled.load(Ordering::Relaxed),
            faults: inner
                .faults
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            creates,
            duplicate_creates,
            product_deletes: self.product_deletes.load(Ordering::Relaxed),
            order_deletes: self.order_deletes.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_duplicates_and_concurrency() {
        let stats = Stats::default();
        {
            let _a = stats.begin_request();
            let _b = stats.begin_request();
            assert_eq!(stats.snapshot().in_flight, 2);
        }
        stats.record_create(Some("A-1"));
        stats.record_create(Some("A-1 "));
        stats.record_create(Some("B-1"));
        stats.record_create(None);
        let snap = stats.snapshot();
        assert_eq!(snap.in_flight, 0);
        assert_eq!(snap.max_in_flight, 2);
        assert_eq!(snap.requests, 2);
        assert_eq!(snap.creates, 4);
        assert_eq!(snap.duplicate_creates, 1);
    }
}
