//! Retry policy: how many attempts, how long between them, and reading `Retry-After`.

use std::time::{Duration, SystemTime};

use rand::Rng as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// The longest `Retry-After` the client waits out itself. A longer hint is returned to the
    /// caller on the error (`RateLimited` for a 429, `Transient` for a 503 or 408, read with
    /// `retry_hint()`), so a job can be rescheduled instead of holding a worker (Shopify's
    /// variant-creation throttle lasts a day).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Exponential backoff with "equal jitter": half the delay fixed, half random, so
    /// concurrent clients spread out but nobody retries immediately.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        let delay = exp.min(self.max_delay);
        let half = delay / 2;
        let jitter_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if jitter_nanos == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_nanos)
        };
        half + Duration::from_nanos(jitter)
    }
}

/// The longest wait a `Retry-After` is read as; longer hints are lowered to it, so a caller
/// can add any hint to a clock without overflow. Thirty days is far beyond any real platform
/// throttle (Shopify's longest lasts a day).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30 * 86_400);

/// Reads a `Retry-After` value: delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past means "now"; a
/// wait beyond [`MAX_RETRY_AFTER`] is lowered to it; anything else (negative, NaN, garbage) is
/// `None`. Never panics.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    // Some gateways send fractional seconds. `+inf`, `NaN` and negatives are not waits; a
    // finite value too large for a `Duration` is simply long.
    if let Ok(secs) = value.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        let wait = Duration::try_from_secs_f64(secs).unwrap_or(MAX_RETRY_AFTER);
        return Some(wait.min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn absurd_retry_after_values_neither_panic_nor_overflow() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        for huge in [
            "18446744073709551615",
            "99999999999999999999999999",
            "1e300",
            "1.7976931348623157e308",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(
                parse_retry_after(huge, now),
                Some(MAX_RETRY_AFTER),
                "{huge}"
            );
        }
        for junk in ["NaN", "inf", "-inf", "-0.5", "1e400", "-1e-300", ""] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk}");
        }
        assert_eq!(parse_retry_after("1e-300", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-0", now), Some(Duration::ZERO));
        // Whatever was read, adding it to a clock cannot overflow.
        let far = parse_retry_after("18446744073709551615", now).unwrap();
        assert!(now.checked_add(far).is_some());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = p.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = p.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = p.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }
}
