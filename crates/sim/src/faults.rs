//! Fault injection shared by every simulator: each kind of fault is a fraction of requests,
//! drawn from a seeded generator so that a test run is reproducible.
//!
//! A fault is drawn once per platform request (admin calls under `/_sim` never fail). Faults
//! that answer instead of the platform (rate limit, server error) happen before the request is
//! handled, so nothing is applied. `TimeoutAfterApply` and `Truncated` happen after: the write
//! is applied and the answer is lost or cut, which is exactly the case where a careless client
//! creates a duplicate on retry.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Fractions (0.0–1.0) of platform requests that get each fault, plus their parameters.
/// Fractions are probabilities, not money: plain floats are right here.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Answered with the platform's own rate-limit answer (Shopify: THROTTLED in a 200;
    /// WooCommerce and MercadoLibre: 429 with Retry-After).
    pub rate_limit: f64,
    /// Answered 500/502/503 before handling.
    pub server_error: f64,
    /// Handled (writes applied), then the answer never comes: the connection is held for
    /// `timeout_hold_ms` and closed.
    pub timeout: f64,
    /// Handled, then the body is cut in half.
    pub truncated: f64,
    /// Handled after an extra `slow_ms`.
    pub slow: f64,
    pub slow_ms: u64,
    pub timeout_hold_ms: u64,
    /// Search and listing endpoints see writes this many milliseconds late; reads by id stay
    /// immediate (Shopify's search index, WooCommerce's object cache).
    pub index_lag_ms: u64,
    /// Seed of the fault generator.
    pub seed: u64,
}

impl FaultConfig {
    pub fn none() -> Self {
        Self::default()
    }

    /// The same fraction for every kind of fault, with short delays fit for tests.
    pub fn uniform(fraction: f64, seed: u64) -> Self {
        Self {
            rate_limit: fraction,
            server_error: fraction,
            timeout: fraction,
            truncated: fraction,
            slow: fraction,
            slow_ms: 200,
            timeout_hold_ms: 2_000,
            index_lag_ms: 0,
            seed,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let fractions = [
            ("rate_limit", self.rate_limit),
            ("server_error", self.server_error),
            ("timeout", self.timeout),
            ("truncated", self.truncated),
            ("slow", self.slow),
        ];
        for (name, value) in fractions {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "fault fraction {name} = {value} is not between 0 and 1"
                ));
            }
        }
        let total: f64 = fractions.iter().map(|(_, v)| v).sum();
        if total > 1.0 {
            return Err(format!("fault fractions add up to {total}, more than 1"));
        }
        Ok(())
    }
}

/// One drawn fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    RateLimit,
    ServerError { status: u16 },
    TimeoutAfterApply { hold: Duration },
    Truncated,
    Slow { delay: Duration },
}

impl Fault {
    /// Faults that answer in place of the platform, before anything is applied.
    pub fn is_before_handling(self) -> bool {
        matches!(self, Fault::RateLimit | Fault::ServerError { .. })
    }

    pub fn name(self) -> &'static str {
        match self {
            Fault::RateLimit => "rate_limit",
            Fault::ServerError { .. } => "server_error",
            Fault::TimeoutAfterApply { .. } => "timeout",
            Fault::Truncated => "truncated",
            Fault::Slow { .. } => "slow",
        }
    }
}

/// The configured faults and their generator.
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<(FaultConfig, SplitMix)>,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let rng = SplitMix(config.seed);
        Self {
            inner: Mutex::new((config, rng)),
        }
    }

    pub fn config(&self) -> FaultConfig {
        self.lock().0.clone()
    }

    /// Replaces the configuration (and reseeds), e.g. from the admin API.
    pub fn set(&self, config: FaultConfig) {
        let mut guard = self.lock();
        guard.1 = SplitMix(config.seed);
        guard.0 = config;
    }

    pub fn index_lag(&self) -> Duration {
        Duration::from_millis(self.lock().0.index_lag_ms)
    }

    /// Draws the fault for one platform request, if any.
    pub fn draw(&self) -> Option<Fault> {
        let mut guard = self.lock();
        let (config, rng) = &mut *guard;
        let roll = rng.next_f64();
        let mut edge = 0.0;
        let mut hit = |fraction: f64| {
            edge += fraction;
            roll < edge
        };
        if hit(config.rate_limit) {
            return Some(Fault::RateLimit);
        }
        if hit(config.server_error) {
            let status = [500, 502, 503][(rng.next_u64() % 3) as usize];
            return Some(Fault::ServerError { status });
        }
        if hit(config.timeout) {
            return Some(Fault::TimeoutAfterApply {
                hold: Duration::from_millis(config.timeout_hold_ms),
            });
        }
        if hit(config.truncated) {
            return Some(Fault::Truncated);
        }
        if hit(config.slow) {
            return Some(Fault::Slow {
                delay: Duration::from_millis(config.slow_ms),
            });
        }
        None
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (FaultConfig, SplitMix)> {
        // A panic while holding this lock leaves plain data behind; keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(FaultConfig::none())
    }
}

/// SplitMix64: tiny, seedable and good enough to pick faults.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_honoured_and_reproducible() {
        let faults = Faults::new(FaultConfig::uniform(0.1, 7));
        let draws: Vec<_> = (0..10_000).map(|_| faults.draw()).collect();
        let count = |name: &str| draws.iter().flatten().filter(|f| f.name() == name).count();
        for name in ["rate_limit", "server_error", "timeout", "truncated", "slow"] {
            let n = count(name);
            assert!((800..1200).contains(&n), "{name}: {n} of 10000");
        }
        let again = Faults::new(FaultConfig::uniform(0.1, 7));
        let replay: Vec<_> = (0..10_000).map(|_| again.draw()).collect();
        assert_eq!(draws, replay);
    }

    #[test]
    fn no_faults_by_default_and_bad_fractions_rejected() {
        let faults = Faults::default();
        assert!((0..1000).all(|_| faults.draw().is_none()));
        assert!(FaultConfig::uniform(0.3, 1).validate().is_err());
        let negative = FaultConfig {
            slow: -0.1,
            ..FaultConfig::default()
        };
        assert!(negative.validate().is_err());
    }
}
