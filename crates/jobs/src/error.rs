//! What the jobs layer reports to its callers (the CLI, the API).

use std::time::Duration;

use tidemark_core::{ConnectionId, Timestamp};
use tidemark_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("queue ({backend}): {message}")]
    Queue {
        backend: &'static str,
        message: String,
    },
    #[error("invalid queue URL {url:?}: {reason}")]
    QueueUrl { url: String, reason: String },
    #[error("connection {0} does not exist")]
    UnknownConnection(ConnectionId),
    /// A manual resync asked for inside its cooldown.
    #[error("{what} was done recently; try again in {}", human(*.left))]
    Cooldown {
        what: &'static str,
        until: Timestamp,
        left: Duration,
    },
    #[error("invalid schedule: {0}")]
    Schedule(String),
    #[error("invalid job: {0}")]
    Invalid(String),
}

impl JobsError {
    pub(crate) fn queue(backend: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Queue {
            backend,
            message: error.to_string(),
        }
    }
}

/// `1 h 2 min`, `4 min 10 s`, `12 s`: how long is left, as a person reads it.
pub fn human(left: Duration) -> String {
    let secs = left.as_secs() + u64::from(left.subsec_millis() > 0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) if s == 0 => format!("{m} min"),
        (0, _) => format!("{m} min {s} s"),
        _ if m == 0 => format!("{h} h"),
        _ => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::human;
    use std::time::Duration;

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(human(Duration::from_millis(11_200)), "12 s");
        assert_eq!(human(Duration::from_secs(250)), "4 min 10 s");
        assert_eq!(human(Duration::from_secs(300)), "5 min");
        assert_eq!(human(Duration::from_secs(3_720)), "1 h 2 min");
        assert_eq!(human(Duration::from_secs(7_200)), "2 h");
    }
}
