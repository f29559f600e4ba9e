//! The daemon's tunables. The binary fills them from `config/tidemark.toml` and `TIDEMARK_*`.

use std::time::Duration;

/// How the workers, leases, scheduler and reconciler behave. Every default is what a merchant's
/// daemon runs with; tests shorten the intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobsConfig {
    /// Job runs one worker process runs at once.
    pub concurrency: usize,
    /// How often an idle worker asks the queue for work (apalis otherwise waits for its
    /// heartbeat, 30 s by default). A run waits up to this long to start: a button's click
    /// should feel immediate.
    pub poll_interval: Duration,
    /// How long a connection's lease lasts without renewal: a dead worker's runs are taken
    /// over this long after its last heartbeat.
    pub lease_ttl: Duration,
    /// How often a running job renews its leases and its run's heartbeat.
    pub heartbeat: Duration,
    /// How often the scheduler looks for due scans.
    pub scheduler_tick: Duration,
    /// How often the reconciler looks for work the queue forgot.
    pub reconcile_interval: Duration,
    /// A queued, due run the queue has not started within this long is pushed again when the
    /// queue holds fewer messages than such runs (the queue lost them).
    pub requeue_grace: Duration,
    pub max_attempts: u32,
    /// The first retry's delay; it doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// When a run's connection lease is held by another run, the message comes back after
    /// this long.
    pub busy_delay: Duration,
    /// Finished queue entries older than this are deleted.
    pub prune_after: Duration,
    /// Finished job runs (the history the console shows) older than this are deleted.
    pub history: Duration,
    /// The apalis queue name (Redis key prefix, SQLite `job_type`).
    pub queue_name: String,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            concurrency: 4,
            poll_interval: Duration::from_millis(25),
            lease_ttl: Duration::from_secs(20),
            heartbeat: Duration::from_secs(5),
            scheduler_tick: Duration::from_secs(2),
            reconcile_interval: Duration::from_secs(5),
            requeue_grace: Duration::from_secs(30),
            max_attempts: 5,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            busy_delay: Duration::from_secs(2),
            prune_after: Duration::from_secs(24 * 3600),
            history: Duration::from_secs(30 * 24 * 3600),
            queue_name: "tidemark-runs".to_owned(),
        }
    }
}

impl JobsConfig {
    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: base × 2^(n-1),
    /// capped.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(20);
        self.retry_base
            .saturating_mul(1u32 << doublings)
            .min(self.retry_max)
    }

    /// A run whose heartbeat is older than this is taken to have lost its worker.
    pub fn stale_after(&self) -> Duration {
        self.lease_ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let config = JobsConfig::default();
        let delays: Vec<u64> = (1..=8).map(|n| config.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(config.retry_delay(u32::MAX), config.retry_max);
    }
}
