//! Client-side pacing: each connection spends from a GCRA bucket (the `governor` crate) before
//! every request, so platform limits are respected before the platform complains.
//!
//! The bucket is adaptive: a connector that learns the real budget from the platform (Shopify's
//! `extensions.cost.throttleStatus`) calls [`Pacer::set_budget`], and any 429 or THROTTLED answer
//! can stop every request of the connection with [`Pacer::pause_until`].

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// A steady rate with a burst allowance, in units of cost (requests, or Shopify query points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// `per_second` units per second, no bursting beyond one unit.
    pub fn per_second(per_second: f64) -> Self {
        Self {
            per_second,
            burst: 1,
        }
    }

    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// The GCRA quota; `None` when the rate is not positive and finite (treated as unlimited)
    /// or so fast that a unit takes no measurable time.
    fn quota(self) -> Option<Quota> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / self.per_second);
        let burst = NonZeroU32::new(self.burst.max(1))?;
        Quota::with_period(period).map(|q| q.allow_burst(burst))
    }
}

/// What a platform says is left of its budget (Shopify `throttleStatus`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// The bucket size (`maximumAvailable`).
    pub maximum: f64,
    /// What is left now (`currentlyAvailable`).
    pub available: f64,
    /// Units restored per second (`restoreRate`).
    pub restore_per_second: f64,
}

#[derive(Debug, Default)]
struct State {
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    burst: u32,
    paused_until: Option<Instant>,
}

/// One connection's pacing, shared by every client and task of that connection.
#[derive(Debug, Default)]
pub struct Pacer {
    state: Mutex<State>,
}

impl Pacer {
    /// No client-side limit (WooCommerce has none by default); pauses still apply.
    pub fn unlimited() -> Self {
        Self::default()
    }

    pub fn new(rate: Rate) -> Self {
        let pacer = Self::default();
        pacer.set_rate(Some(rate));
        pacer
    }

    /// Replaces the rate (a full bucket); `None` removes the limit.
    pub fn set_rate(&self, rate: Option<Rate>) {
        let limiter = rate
            .and_then(Rate::quota)
            .map(|q| Arc::new(RateLimiter::direct(q)));
        let mut state = self.lock();
        state.burst = rate.map_or(0, |r| r.burst.max(1));
        state.limiter = limiter;
    }

    /// Mirrors the platform's own bucket: size `maximum`, refilling at `restore_per_second`,
    /// currently holding `available`. Called after each answer that reports it, so the local
    /// model never drifts far from the platform's.
    pub fn set_budget(&self, budget: Budget) {
        let maximum = clamp_to_u32(budget.maximum).max(1);
        let rate = Rate::per_second(budget.restore_per_second).with_burst(maximum);
        let Some(quota) = rate.quota() else {
            return;
        };
        let limiter = RateLimiter::direct(quota);
        // A fresh bucket is full; spend what the platform says is already used.
        let used = maximum.saturating_sub(clamp_to_u32(budget.available));
        if let Some(used) = NonZeroU32::new(used) {
            let _ = limiter.check_n(used);
        }
        let mut state = self.lock();
        state.burst = maximum;
        state.limiter = Some(Arc::new(limiter));
    }

    /// Holds every request of the connection until `until` (a 429's `Retry-After`, a
    /// THROTTLED answer). An earlier instant than a pause already set does not shorten it.
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.lock();
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }

    pub fn pause_for(&self, duration: Duration) {
        self.pause_until(Instant::now() + duration);
    }

    /// Waits until a request costing `cost` units may be sent, then spends them. A cost above
    /// the bucket size is clamped to it: otherwise it could never be sent.
    pub async fn acquire(&self, cost: u32) {
        loop {
            let (paused_until, limiter, burst) = {
                let state = self.lock();
                (state.paused_until, state.limiter.clone(), state.burst)
            };
            if let Some(until) = paused_until
                && until > Instant::now()
            {
                tokio::time::sleep_until(until).await;
                continue;
            }
            let Some(limiter) = limiter else {
                return;
            };
            let Some(n) = NonZeroU32::new(cost.clamp(1, burst.max(1))) else {
                return;
            };
            match limiter.check_n(n) {
                Ok(Ok(())) | Err(_) => return,
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(limiter.clock().now());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few plain values; a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn clamp_to_u32(value: f64) -> u32 {
    if value.is_nan() || value <= 0.0 {
        0
    } else if value >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        value as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant as StdInstant;

    #[tokio::test]
    async fn unlimited_does_not_wait() {
        let pacer = Pacer::unlimited();
        let start = StdInstant::now();
        for _ in 0..100 {
            pacer.acquire(1).await;
        }
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[tokio::test]
    async fn budget_drained_by_the_platform_makes_us_wait() {
        let pacer = Pacer::unlimited();
        // 100 of 1000 left, restoring 1000/s: a 300-point query waits about 0.2 s.
        pacer.set_budget(Budget {
            maximum: 1000.0,
            available: 100.0,
            restore_per_second: 1000.0,
        });
        let start = StdInstant::now();
        pacer.acquire(300).await;
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    #[tokio::test]
    async fn oversized_cost_is_clamped_not_stuck() {
        let pacer = Pacer::new(Rate::per_second(1000.0).with_burst(10));
        tokio::time::timeout(Duration::from_secs(1), pacer.acquire(5000))
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_requests() {
        let pacer = Pacer::unlimited();
        let start = Instant::now();
        pacer.pause_for(Duration::from_secs(3));
        pacer.pause_until(start + Duration::from_secs(1)); // does not shorten
        pacer.acquire(1).await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }
}
