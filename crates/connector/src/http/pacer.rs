//! Client-side pacing: each connection spends from a GCRA bucket (the `governor` crate) before
//! every request, so platform limits are respected before the platform complains.
//!
//! The bucket is adaptive: a connector that learns the real budget from the platform (Shopify's
//! `extensions.cost.throttleStatus`) calls [`Pacer::set_budget`], and any 429 or THROTTLED answer
//! can stop every request of the connection with [`Pacer::pause_until`].
//!
//! Numbers the platform supplies (a restore rate, a bucket size, a query cost) are untrusted:
//! a rate that is not a finite positive number is refused with [`InvalidRate`] and leaves the
//! pacer as it was; a finite positive rate is clamped into [`MIN_PER_SECOND`]..=
//! [`MAX_PER_SECOND`] and a bucket to at most [`MAX_BURST`], so no value can make the pacer
//! panic or overflow its clock arithmetic.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use thiserror::Error;
use tokio::time::Instant;

/// The slowest rate a pacer models: one unit an hour. A slower positive rate (a platform
/// reporting a restore rate of `1e-300`) is raised to it.
pub const MIN_PER_SECOND: f64 = 1.0 / 3600.0;

/// The fastest rate a pacer models: a million units a second; a faster one is lowered to it
/// (which no connection reaches, so it is as good as no limit).
pub const MAX_PER_SECOND: f64 = 1e6;

/// The largest bucket a pacer models; larger bursts and budgets are lowered to it. With
/// [`MIN_PER_SECOND`] it bounds a bucket's refill time to about 114 years, within the
/// limiter's nanosecond clock.
pub const MAX_BURST: u32 = 1_000_000;

/// A rate that is not a finite positive number of units per second (zero, negative, NaN,
/// infinite). Refused rather than guessed at: read as "unlimited" it would ignore the
/// platform's limit, and read as "pause until told otherwise" it would never be lifted, since
/// what tells is an answer to a request the pause holds back.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
#[error("a rate of {0} units per second is not a finite positive number")]
pub struct InvalidRate(pub f64);

/// A platform-supplied amount of units (a bucket size, a query cost) as a whole number:
/// truncated, negative and NaN as 0, anything above `u32::MAX` (infinity included) as
/// `u32::MAX`. Never panics.
pub fn cost_units(value: f64) -> u32 {
    clamp_to_u32(value)
}

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

    /// This rate clamped into the modelled range (see the module docs); `InvalidRate` when
    /// `per_second` is not a finite positive number.
    pub fn checked(self) -> Result<Self, InvalidRate> {
        if !(self.per_second.is_finite() && self.per_second > 0.0) {
            return Err(InvalidRate(self.per_second));
        }
        Ok(Self {
            per_second: self.per_second.clamp(MIN_PER_SECOND, MAX_PER_SECOND),
            burst: self.burst.clamp(1, MAX_BURST),
        })
    }

    /// The GCRA quota of the clamped rate.
    fn quota(self) -> Result<(Quota, u32), InvalidRate> {
        let rate = self.checked()?;
        let invalid = || InvalidRate(self.per_second);
        let period = Duration::try_from_secs_f64(1.0 / rate.per_second).map_err(|_| invalid())?;
        let burst = NonZeroU32::new(rate.burst).ok_or_else(invalid)?;
        let quota = Quota::with_period(period).ok_or_else(invalid)?;
        Ok((quota.allow_burst(burst), rate.burst))
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

    /// A pacer at `rate` (clamped, see the module docs); `InvalidRate` when it is not a
    /// finite positive number.
    pub fn new(rate: Rate) -> Result<Self, InvalidRate> {
        let pacer = Self::default();
        pacer.set_rate(Some(rate))?;
        Ok(pacer)
    }

    /// Replaces the rate (a full bucket); `None` removes the limit. An invalid rate is refused
    /// and the pacer keeps its current one.
    pub fn set_rate(&self, rate: Option<Rate>) -> Result<(), InvalidRate> {
        let (limiter, burst) = match rate {
            Some(rate) => {
                let (quota, burst) = rate.quota()?;
                (Some(Arc::new(RateLimiter::direct(quota))), burst)
            }
            None => (None, 0),
        };
        let mut state = self.lock();
        state.burst = burst;
        state.limiter = limiter;
        Ok(())
    }

    /// Mirrors the platform's own bucket: size `maximum`, refilling at `restore_per_second`,
    /// currently holding `available`. Called after each answer that reports it, so the local
    /// model never drifts far from the platform's.
    ///
    /// The numbers are the platform's and untrusted: a `restore_per_second` that is not a
    /// finite positive number is refused with [`InvalidRate`] and the pacer keeps its current
    /// model (the connector logs it and carries on; a THROTTLED answer still pauses the
    /// connection). Other values are clamped: the rate into
    /// [`MIN_PER_SECOND`]..=[`MAX_PER_SECOND`], `maximum` into `1..=`[`MAX_BURST`],
    /// `available` into `0..=maximum` (NaN as 0).
    pub fn set_budget(&self, budget: Budget) -> Result<(), InvalidRate> {
        let maximum = clamp_to_u32(budget.maximum).clamp(1, MAX_BURST);
        let rate = Rate::per_second(budget.restore_per_second).with_burst(maximum);
        let (quota, burst) = rate.quota()?;
        let limiter = RateLimiter::direct(quota);
        // A fresh bucket is full; spend what the platform says is already used.
        let used = burst.saturating_sub(clamp_to_u32(budget.available));
        if let Some(used) = NonZeroU32::new(used) {
            let _ = limiter.check_n(used);
        }
        let mut state = self.lock();
        state.burst = burst;
        state.limiter = Some(Arc::new(limiter));
        Ok(())
    }

    /// Holds every request of the connection until `until` (a 429's `Retry-After`, a
    /// THROTTLED answer). An earlier instant than a pause already set does not shorten it.
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.lock();
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }

    /// Holds every request of the connection for `duration` from now. A duration too long for
    /// the clock holds them for 30 years (never panics).
    pub fn pause_for(&self, duration: Duration) {
        self.pause_until(instant_after(Instant::now(), duration));
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

/// `now + duration`, or 30 years from now when that does not fit the clock.
fn instant_after(now: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    now.checked_add(duration.min(FAR))
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
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
        pacer
            .set_budget(Budget {
                maximum: 1000.0,
                available: 100.0,
                restore_per_second: 1000.0,
            })
            .unwrap();
        let start = StdInstant::now();
        pacer.acquire(300).await;
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(150), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    }

    /// Whether `acquire(cost)` returns within 50 ms (it waits when the bucket is empty).
    async fn goes_at_once(pacer: &Pacer, cost: u32) -> bool {
        tokio::time::timeout(Duration::from_millis(50), pacer.acquire(cost))
            .await
            .is_ok()
    }

    const NOT_RATES: [f64; 6] = [0.0, -0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

    #[test]
    fn rates_are_checked_and_clamped() {
        for bad in NOT_RATES {
            assert!(Rate::per_second(bad).checked().is_err(), "{bad}");
            assert!(Pacer::new(Rate::per_second(bad)).is_err(), "{bad}");
        }
        let slow = Rate::per_second(1e-300).checked().unwrap();
        assert_eq!(slow.per_second, MIN_PER_SECOND);
        let tiniest = Rate::per_second(f64::from_bits(1)).checked().unwrap();
        assert_eq!(tiniest.per_second, MIN_PER_SECOND);
        let fast = Rate::per_second(1e300)
            .with_burst(u32::MAX)
            .checked()
            .unwrap();
        assert_eq!((fast.per_second, fast.burst), (MAX_PER_SECOND, MAX_BURST));
        assert_eq!(
            Rate::per_second(5.0).with_burst(0).checked().unwrap().burst,
            1
        );
        // The extremes build limiters without panicking.
        for rate in [
            Rate::per_second(1e-300).with_burst(u32::MAX),
            Rate::per_second(f64::MIN_POSITIVE),
            Rate::per_second(f64::MAX).with_burst(u32::MAX),
        ] {
            Pacer::new(rate).unwrap();
        }
    }

    #[test]
    fn cost_units_never_panic() {
        assert_eq!(cost_units(f64::NAN), 0);
        assert_eq!(cost_units(-5.0), 0);
        assert_eq!(cost_units(f64::NEG_INFINITY), 0);
        assert_eq!(cost_units(f64::INFINITY), u32::MAX);
        assert_eq!(cost_units(1e300), u32::MAX);
        assert_eq!(cost_units(101.7), 101);
    }

    #[tokio::test]
    async fn invalid_restore_rates_are_refused_and_change_nothing() {
        let drained = Budget {
            maximum: 1000.0,
            available: 0.0,
            restore_per_second: 1.0,
        };
        let pacer = Pacer::unlimited();
        for bad in NOT_RATES {
            let err = pacer
                .set_budget(Budget {
                    restore_per_second: bad,
                    ..drained
                })
                .unwrap_err();
            assert!(err.to_string().contains("not a finite positive"), "{err}");
            assert!(
                goes_at_once(&pacer, 1).await,
                "{bad}: unlimited stays unlimited"
            );
        }
        // A drained model stays drained.
        pacer.set_budget(drained).unwrap();
        assert!(!goes_at_once(&pacer, 1).await);
        for bad in NOT_RATES {
            pacer
                .set_budget(Budget {
                    restore_per_second: bad,
                    available: 1000.0,
                    ..drained
                })
                .unwrap_err();
            assert!(!goes_at_once(&pacer, 1).await, "{bad}");
        }
        assert!(pacer.set_rate(Some(Rate::per_second(f64::NAN))).is_err());
        assert!(!goes_at_once(&pacer, 1).await);
        pacer.set_rate(None).unwrap();
        assert!(goes_at_once(&pacer, 1).await);
    }

    #[tokio::test]
    async fn tiny_restore_rates_and_huge_buckets_are_clamped_not_panicking() {
        let pacer = Pacer::unlimited();
        // 1e-300 units a second would be a period of 1e300 s: clamped to one unit an hour.
        pacer
            .set_budget(Budget {
                maximum: 10.0,
                available: 10.0,
                restore_per_second: 1e-300,
            })
            .unwrap();
        for _ in 0..10 {
            assert!(goes_at_once(&pacer, 1).await);
        }
        assert!(
            !goes_at_once(&pacer, 1).await,
            "the bucket is empty for an hour"
        );

        // The largest bucket at the slowest rate, drained, with absurd costs.
        for maximum in [1e30, f64::INFINITY, f64::NAN, -3.0] {
            pacer
                .set_budget(Budget {
                    maximum,
                    available: f64::NAN,
                    restore_per_second: f64::MIN_POSITIVE,
                })
                .unwrap();
            assert!(!goes_at_once(&pacer, u32::MAX).await, "{maximum}");
        }
        // A full bucket with more available than its size, at a rate beyond the model.
        pacer
            .set_budget(Budget {
                maximum: 50.0,
                available: 1e300,
                restore_per_second: 1e300,
            })
            .unwrap();
        assert!(goes_at_once(&pacer, 50).await);
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_too_long_for_the_clock_do_not_panic() {
        let pacer = Pacer::unlimited();
        pacer.pause_for(Duration::MAX);
        let held = tokio::time::timeout(Duration::from_secs(365 * 86_400), pacer.acquire(1)).await;
        assert!(held.is_err(), "still paused a year later");
    }

    #[tokio::test]
    async fn oversized_cost_is_clamped_not_stuck() {
        let pacer = Pacer::new(Rate::per_second(1000.0).with_burst(10)).unwrap();
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
