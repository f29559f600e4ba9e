//! The connector error taxonomy of DESIGN §5.
//!
//! Every platform failure becomes one of these, so the engine decides what to do by kind:
//! retry later (`Transient`, `RateLimited`), raise an issue on the record (`Rejected`), stop the
//! connection and tell the merchant (`Unauthorized`, `Fatal`), treat the record as gone
//! (`NotFound`), or restart a scan from the beginning (`CursorExpired`).

use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq)]
pub enum ConnectorError {
    /// A failure that may go away by itself: timeout, connection reset, 5xx, a THROTTLED answer
    /// that outlived the client's retries.
    #[error("{message}{}{}",
        if *.maybe_applied { " (the request may have been applied: look the record up before repeating it)" } else { "" },
        match .retry_after { Some(d) => format!(" (retry after {:.1} s)", d.as_secs_f64()), None => String::new() })]
    Transient {
        message: String,
        /// The request reached the platform and failed in a way that does not say whether it
        /// took effect (a create that timed out, a 5xx to a non-idempotent POST), or it took
        /// effect and its answer could not be read (a 2xx too large or cut off, or not the
        /// expected JSON). The caller must look the record up (by SKU) before repeating it, or
        /// it may create a duplicate.
        maybe_applied: bool,
        /// How long the platform asked to wait (`Retry-After` on a 503 or 408), when it said.
        retry_after: Option<Duration>,
    },

    /// The platform (or the client's own pacing) refused the request for now.
    #[error("{message}{}", match .retry_after { Some(d) => format!(" (retry after {:.1} s)", d.as_secs_f64()), None => String::new() })]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },

    /// The platform understood the request and refused it: validation error, duplicate SKU,
    /// batch too large. Becomes an issue on the record; repeating it unchanged fails again.
    #[error("{}rejected [{code}] {message}{}",
        if .context.is_empty() { String::new() } else { format!("{}: ", .context) },
        match .field { Some(f) => format!(" (field {f})"), None => String::new() })]
    Rejected {
        /// The platform's own code (`product_invalid_sku`, `TAKEN`, `item.price.invalid`), or
        /// `http_<status>` when the answer had none.
        code: String,
        /// The platform's own words, kept verbatim so troubleshoot can group by them.
        message: String,
        /// A path into the record (`variants.0.price`, `item.attributes`), when the platform names one.
        field: Option<String>,
        /// The platform's answer (or the relevant part of it), secrets scrubbed. Boxed to keep
        /// every `Result<_, ConnectorError>` small.
        payload: Box<serde_json::Value>,
        /// What tidemark was doing ("woocommerce answered 413 for POST /products/batch (a batch
        /// of 101 items)"); empty for per-item errors inside a batch answer.
        context: String,
    },

    /// Credentials missing, wrong, expired or lacking a scope (401/403), or a webhook whose
    /// signature does not verify.
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },

    /// The record (or endpoint) does not exist.
    #[error("not found: {message}")]
    NotFound { message: String },

    /// A stored scan cursor the platform no longer accepts (MercadoLibre scroll ids expire after
    /// minutes; Shopify cursors die with their query). The caller restarts the scan without it.
    #[error("scan cursor expired: {message}")]
    CursorExpired { message: String },

    /// Anything retrying cannot fix: a bug, an unexpected answer, a misconfiguration.
    #[error("{message}")]
    Fatal { message: String },
}

impl ConnectorError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            maybe_applied: false,
            retry_after: None,
        }
    }

    /// A failure after a non-idempotent request reached the platform, whose effect is unknown
    /// (or known to have happened, with an answer that could not be read).
    pub fn maybe_applied(message: impl Into<String>) -> Self {
        Self::Transient {
            message: message.into(),
            maybe_applied: true,
            retry_after: None,
        }
    }

    /// Sets the wait hint of a `Transient` or `RateLimited`; other kinds are returned unchanged.
    pub fn with_retry_after(mut self, hint: Option<Duration>) -> Self {
        if let Self::Transient { retry_after, .. } | Self::RateLimited { retry_after, .. } =
            &mut self
        {
            *retry_after = hint;
        }
        self
    }

    /// Whether the request may have taken effect on the platform (see `Transient`).
    pub fn is_maybe_applied(&self) -> bool {
        matches!(
            self,
            Self::Transient {
                maybe_applied: true,
                ..
            }
        )
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        Self::Fatal {
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized {
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    pub fn rate_limited(retry_after: Option<Duration>, message: impl Into<String>) -> Self {
        Self::RateLimited {
            retry_after,
            message: message.into(),
        }
    }

    /// A per-item rejection (batch answers, GraphQL `userErrors`); add a field with
    /// [`ConnectorError::with_field`] and the answer with [`ConnectorError::with_payload`].
    pub fn rejected(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Rejected {
            code: code.into(),
            message: message.into(),
            field: None,
            payload: Box::new(serde_json::Value::Null),
            context: String::new(),
        }
    }

    /// Sets the field of a `Rejected`; other kinds are returned unchanged.
    pub fn with_field(mut self, path: impl Into<String>) -> Self {
        if let Self::Rejected { field, .. } = &mut self {
            *field = Some(path.into());
        }
        self
    }

    /// Sets the payload of a `Rejected`; other kinds are returned unchanged.
    pub fn with_payload(mut self, value: serde_json::Value) -> Self {
        if let Self::Rejected { payload, .. } = &mut self {
            **payload = value;
        }
        self
    }

    /// Prefixes what tidemark was doing, so the message reads on its own in a log or issue.
    pub fn context(mut self, what: impl AsRef<str>) -> Self {
        let what = what.as_ref();
        if what.is_empty() {
            return self;
        }
        match &mut self {
            Self::Rejected { context, .. } => {
                *context = if context.is_empty() {
                    what.to_owned()
                } else {
                    format!("{what}: {context}")
                };
            }
            Self::Transient { message, .. }
            | Self::RateLimited { message, .. }
            | Self::Unauthorized { message }
            | Self::NotFound { message }
            | Self::CursorExpired { message }
            | Self::Fatal { message } => *message = format!("{what}: {message}"),
        }
        self
    }

    /// Whether repeating the same request later can succeed. A `Transient` with
    /// `maybe_applied` is retryable only after the caller looked the record up.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::RateLimited { .. })
    }

    /// How long the platform asked to wait, when it said (`Retry-After` on a 429, 503 or 408).
    pub fn retry_hint(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Transient { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short, stable name for metrics and the issue panel.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transient { .. } => "transient",
            Self::RateLimited { .. } => "rate_limited",
            Self::Rejected { .. } => "rejected",
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::CursorExpired { .. } => "cursor_expired",
            Self::Fatal { .. } => "fatal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_reads_with_its_context() {
        let e = ConnectorError::rejected(
            "woocommerce_rest_request_entity_too_large",
            "Unable to accept more than 100 items for this request.",
        )
        .context("woocommerce answered 413 for POST /products/batch (a batch of 101 items)");
        assert_eq!(
            e.to_string(),
            "woocommerce answered 413 for POST /products/batch (a batch of 101 items): rejected \
             [woocommerce_rest_request_entity_too_large] Unable to accept more than 100 items for \
             this request."
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn retry_hints() {
        let e = ConnectorError::rate_limited(Some(Duration::from_secs(2)), "429");
        assert!(e.is_retryable());
        assert_eq!(e.retry_hint(), Some(Duration::from_secs(2)));
        assert!(ConnectorError::transient("reset").is_retryable());
        assert!(!ConnectorError::fatal("bug").is_retryable());
        assert_eq!(ConnectorError::unauthorized("x").retry_hint(), None);
    }

    #[test]
    fn maybe_applied_is_spelled_out() {
        let e = ConnectorError::maybe_applied("timed out");
        assert!(e.is_maybe_applied());
        assert!(e.to_string().contains("may have been applied"));
        assert!(!ConnectorError::transient("reset").is_maybe_applied());
        assert!(!ConnectorError::fatal("bug").is_maybe_applied());
    }

    #[test]
    fn transient_carries_the_platforms_wait_hint() {
        let e = ConnectorError::transient("503").with_retry_after(Some(Duration::from_secs(120)));
        assert_eq!(e.retry_hint(), Some(Duration::from_secs(120)));
        assert!(e.is_retryable());
        assert!(e.to_string().contains("retry after 120.0 s"), "{e}");
        assert_eq!(ConnectorError::transient("reset").retry_hint(), None);
        // Kinds without a hint ignore it.
        let e = ConnectorError::fatal("bug").with_retry_after(Some(Duration::from_secs(1)));
        assert_eq!(e.retry_hint(), None);
    }
}
