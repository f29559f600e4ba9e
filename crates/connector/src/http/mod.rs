//! The HTTP client every connector shares: pacing before each request, timeouts, bounded
//! bodies, retries with backoff that honour `Retry-After`, the mapping of HTTP answers onto
//! [`ConnectorError`], and redaction of credentials in everything it logs or returns.
//!
//! Retry rules (how tidemark avoids duplicate products):
//! - 429 is retried for every request: the platform refused it before doing anything.
//! - Connection failures before anything was sent are retried for every request.
//! - Timeouts, broken bodies and 5xx are retried only for requests declared idempotent. For the
//!   others the outcome is unknown, so they surface at once as
//!   `Transient { maybe_applied: true }` and the caller looks the record up before repeating.
//! - A 2xx answer to a non-idempotent request that cannot be read (over the body cap, cut off,
//!   not the expected JSON) is also `Transient { maybe_applied: true }`: the write took effect,
//!   and repeating it blindly would duplicate it. For idempotent requests an oversized or
//!   undecodable answer is `Fatal` (asking again gets the same answer).
//! - Other 4xx are never retried.
//! - A `Retry-After` hint on a 429, 503 or 408 is kept on the error (`retry_hint()`) whenever
//!   the client gives up, so the caller can reschedule by it.

mod error_body;
mod pacer;
mod redact;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Method, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use tidemark_core::PlatformKind;
use tracing::{Instrument as _, debug, field, warn};
use url::Url;

use crate::error::ConnectorError;

pub use error_body::{PlatformError, field_path, parse_error_body};
pub use pacer::{
    Budget, InvalidRate, MAX_BURST, MAX_PER_SECOND, MIN_PER_SECOND, Pacer, Rate, cost_units,
};
pub use redact::{REDACTED, Redactor};
pub use retry::{MAX_RETRY_AFTER, RetryPolicy, parse_retry_after};

/// A `reqwest` client builder on rustls with the *ring* provider, installed here once for the
/// process (reqwest is built without a provider of its own: see the workspace `Cargo.toml`).
pub fn client_builder() -> reqwest::ClientBuilder {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // An error means a provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// Error bodies are read only this far: they are for messages, not data.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How one connection's client behaves.
///
/// Its `Debug` leaves out header values and secrets (see [`Redactor`]).
#[derive(Clone)]
pub struct HttpClientConfig {
    pub platform: PlatformKind,
    /// Relative request targets are joined to this.
    pub base_url: Url,
    pub connect_timeout: Duration,
    /// The longest silence while reading an answer.
    pub read_timeout: Duration,
    /// The longest a whole attempt (connect, send, read the body) may take.
    pub total_timeout: Duration,
    /// Answers larger than this are an error, never an out-of-memory.
    pub max_body_bytes: usize,
    pub retry: RetryPolicy,
    /// Client-side pacing; `None` for no limit. Ignored when a shared pacer is given.
    pub rate: Option<Rate>,
    pub user_agent: String,
    /// Sent with every request to `base_url`'s origin only (auth headers must not follow an
    /// absolute URL to a CDN or storage host). Their values are scrubbed from messages.
    pub default_headers: HeaderMap,
    pub redactor: Redactor,
}

impl HttpClientConfig {
    pub fn new(platform: PlatformKind, base_url: Url) -> Self {
        Self {
            platform,
            base_url,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(90),
            max_body_bytes: 32 * 1024 * 1024,
            retry: RetryPolicy::default(),
            rate: None,
            user_agent: concat!("tidemark/", env!("CARGO_PKG_VERSION")).to_owned(),
            default_headers: HeaderMap::new(),
            redactor: Redactor::new(),
        }
    }

    /// Adds a header sent with every request to the base origin, marked sensitive and scrubbed
    /// from messages (`X-Shopify-Access-Token`, `Authorization`).
    pub fn secret_header(mut self, name: HeaderName, value: &str) -> Result<Self, ConnectorError> {
        let mut header = HeaderValue::from_str(value).map_err(|_| {
            ConnectorError::fatal(format!(
                "credential for header `{name}` is not valid header text"
            ))
        })?;
        header.set_sensitive(true);
        self.redactor.add_secret(value);
        self.default_headers.insert(name, header);
        Ok(self)
    }
}

impl fmt::Debug for HttpClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Default headers carry credentials: only their names are shown.
        let header_names: Vec<&str> = self
            .default_headers
            .keys()
            .map(HeaderName::as_str)
            .collect();
        f.debug_struct("HttpClientConfig")
            .field("platform", &self.platform)
            .field("base_url", &self.redactor.url(&self.base_url))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("retry", &self.retry)
            .field("rate", &self.rate)
            .field("user_agent", &self.user_agent)
            .field("default_headers", &header_names)
            .field("redactor", &self.redactor)
            .finish()
    }
}

/// Checks an answer the platform gave with a 2xx status. Shopify answers THROTTLED with HTTP
/// 200, so its connector returns `RateLimited` from here to have the client retry it like a 429
/// (and may feed `throttleStatus` into the pacer on the way). A `Transient` it returns for a
/// non-idempotent request is reported with `maybe_applied`: the platform answered 2xx, so the
/// write may have taken effect.
pub type Inspector = Arc<dyn Fn(&ApiResponse) -> Result<(), ConnectorError> + Send + Sync>;

/// One logical request; the client may send it several times.
#[derive(Clone)]
pub struct ApiRequest {
    method: Method,
    target: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    idempotent: bool,
    cost: u32,
    context: Option<String>,
    max_body_bytes: Option<usize>,
    inspector: Option<Inspector>,
    secrets: Vec<String>,
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers and body may hold credentials: never printed.
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("target", &self.scrubbed_target())
            .field("idempotent", &self.idempotent)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

/// Whether sending a request twice has the same effect as sending it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Reads, PUTs of a full state, GraphQL queries: safe to repeat after any failure.
    Idempotent,
    /// Creates, batch writes with creates, stock adjustments: repeated only when the platform
    /// certainly did not act on it.
    NonIdempotent,
}

impl ApiRequest {
    /// `target` is a path relative to the base URL (`products`, `/admin/api/2025-01/graphql.json`)
    /// or an absolute URL (a `Link: rel=next`, a bulk result file).
    pub fn new(method: Method, target: impl Into<String>, idempotency: Idempotency) -> Self {
        Self {
            method,
            target: target.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            idempotent: idempotency == Idempotency::Idempotent,
            cost: 1,
            context: None,
            max_body_bytes: None,
            inspector: None,
            secrets: Vec::new(),
        }
    }

    pub fn get(target: impl Into<String>) -> Self {
        Self::new(Method::GET, target, Idempotency::Idempotent)
    }

    /// A POST must say whether it is idempotent: a GraphQL query is, a create is not.
    pub fn post(target: impl Into<String>, idempotency: Idempotency) -> Self {
        Self::new(Method::POST, target, idempotency)
    }

    pub fn put(target: impl Into<String>) -> Self {
        Self::new(Method::PUT, target, Idempotency::Idempotent)
    }

    pub fn delete(target: impl Into<String>) -> Self {
        Self::new(Method::DELETE, target, Idempotency::Idempotent)
    }

    pub fn query(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A header holding a credential: marked sensitive and scrubbed from every message.
    pub fn secret_header(mut self, name: HeaderName, value: &str) -> Result<Self, ConnectorError> {
        let mut header = HeaderValue::from_str(value).map_err(|_| {
            ConnectorError::fatal(format!(
                "credential for header `{name}` is not valid header text"
            ))
        })?;
        header.set_sensitive(true);
        self.secrets.push(value.to_owned());
        self.headers.insert(name, header);
        Ok(self)
    }

    pub fn bearer_auth(self, token: &str) -> Result<Self, ConnectorError> {
        let with_token =
            self.secret_header(http::header::AUTHORIZATION, &format!("Bearer {token}"))?;
        Ok(with_token.scrub(token))
    }

    /// Scrubs this value from messages about this request (a secret sent in the body).
    pub fn scrub(mut self, secret: &str) -> Self {
        self.secrets.push(secret.to_owned());
        self
    }

    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, ConnectorError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| ConnectorError::fatal(format!("cannot encode the request body: {e}")))?;
        self.body = Some(Bytes::from(bytes));
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(self)
    }

    /// A form-encoded body (OAuth token requests).
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.body = Some(Bytes::from(body));
        self.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self
    }

    pub fn body(mut self, content_type: HeaderValue, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self.headers.insert(CONTENT_TYPE, content_type);
        self
    }

    /// Units this request spends from the pacer (Shopify's estimated query cost); 1 by default.
    pub fn cost(mut self, cost: u32) -> Self {
        self.cost = cost;
        self
    }

    /// What the request is for, added to every error ("a batch of 101 items").
    pub fn context(mut self, what: impl Into<String>) -> Self {
        self.context = Some(what.into());
        self
    }

    /// Overrides the client's body cap for this request (a bulk result file).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = Some(limit);
        self
    }

    pub fn inspect(
        mut self,
        inspector: impl Fn(&ApiResponse) -> Result<(), ConnectorError> + Send + Sync + 'static,
    ) -> Self {
        self.inspector = Some(Arc::new(inspector));
        self
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The target with this request's own secrets scrubbed and, for an absolute URL, secret
    /// query values and any password masked.
    fn scrubbed_target(&self) -> String {
        let mut redactor = Redactor::new();
        for secret in &self.secrets {
            redactor.add_secret(secret);
        }
        match Url::parse(&self.target) {
            Ok(url) => redactor.url(&url),
            Err(_) => redactor.text(&self.target),
        }
    }

    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }
}

/// A successful (2xx) answer, body read in full.
///
/// Its `Debug` shows the status, the description, header names and the body's length only: an
/// answer may carry credentials (an OAuth token response, a `Set-Cookie`).
#[derive(Clone)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// "shopify POST /admin/api/2025-01/graphql.json", for messages.
    pub description: String,
    /// Whether the request was declared idempotent. Decides how an answer that does not decode
    /// is reported: `Fatal` for an idempotent request, `Transient { maybe_applied: true }` for
    /// a write, which took effect even though its answer is unreadable.
    pub idempotent: bool,
}

impl fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("description", &self.description)
            .field("headers", &header_names)
            .field("body_bytes", &self.body.len())
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

impl ApiResponse {
    /// The body as JSON. When it is not: `Fatal` (with what was expected) for an idempotent
    /// request; `Transient { maybe_applied: true }` for a non-idempotent one, whose effect
    /// happened and must be looked up before the write is repeated.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let message = format!(
                "{} answered {} with a body that is not the expected JSON: {e}",
                self.description,
                self.status.as_u16()
            );
            if self.idempotent {
                ConnectorError::fatal(message)
            } else {
                ConnectorError::maybe_applied(message)
            }
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A connection's HTTP client. Cheap to clone; clones share the connection pool and the pacer.
/// Its `Debug` is its config's, which leaves credentials out.
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    config: Arc<HttpClientConfig>,
    pacer: Arc<Pacer>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .field("pacer", &self.pacer)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with its own pacer; `Fatal` when the configured rate is not a finite
    /// positive number.
    pub fn new(config: HttpClientConfig) -> Result<Self, ConnectorError> {
        let pacer = Arc::new(match config.rate {
            Some(rate) => Pacer::new(rate).map_err(|e| {
                ConnectorError::fatal(format!("{} client configuration: {e}", config.platform))
            })?,
            None => Pacer::unlimited(),
        });
        Self::with_pacer(config, pacer)
    }

    /// A client spending from an existing pacer (a second client of the same connection, such
    /// as MercadoLibre's OAuth endpoint, counts against the same limit).
    pub fn with_pacer(config: HttpClientConfig, pacer: Arc<Pacer>) -> Result<Self, ConnectorError> {
        let base = config.base_url.clone();
        // Follow redirects only within the base host: a custom auth header such as
        // X-Shopify-Access-Token would otherwise follow the request to any host.
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("too many redirects")
            } else if attempt.url().host_str() == base.host_str() {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let inner = client_builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.total_timeout)
            .user_agent(config.user_agent.clone())
            .redirect(redirect)
            .build()
            .map_err(|e| ConnectorError::fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner,
            config: Arc::new(config),
            pacer,
        })
    }

    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    pub fn config(&self) -> &HttpClientConfig {
        &self.config
    }

    /// Sends `request`, pacing and retrying per the module rules; `Ok` only for 2xx answers
    /// that pass the request's inspector.
    pub async fn send(&self, request: ApiRequest) -> Result<ApiResponse, ConnectorError> {
        let url = self.url(&request)?;
        let mut redactor = self.config.redactor.clone();
        for secret in &request.secrets {
            redactor.add_secret(secret);
        }
        let path = redactor.text(url.path());
        let span = tracing::info_span!(
            "http",
            platform = %self.config.platform,
            method = %request.method,
            path = %path,
            status = field::Empty,
            attempt = field::Empty,
        );
        let call = Call {
            client: self,
            request: &request,
            url: &url,
            redactor: &redactor,
            what: describe(self.config.platform, &request, &path),
        };
        call.run(&span).instrument(span.clone()).await
    }

    /// Sends `request` and decodes its JSON answer.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        request: ApiRequest,
    ) -> Result<T, ConnectorError> {
        self.send(request).await?.json()
    }

    fn url(&self, request: &ApiRequest) -> Result<Url, ConnectorError> {
        let target = request.target.as_str();
        let mut url = if target.starts_with("http://") || target.starts_with("https://") {
            Url::parse(target)
        } else {
            // Join as a relative path under the base, whatever slashes either side has.
            let mut base = self.config.base_url.clone();
            if !base.path().ends_with('/') {
                base.set_path(&format!("{}/", base.path()));
            }
            base.join(target.trim_start_matches('/'))
        }
        .map_err(|e| {
            ConnectorError::fatal(format!(
                "{} request target `{}` is not a valid URL: {e}",
                self.config.platform,
                self.config.redactor.text(target)
            ))
        })?;
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(url)
    }
}

/// "shopify POST /admin/api/2025-01/graphql.json (a batch of 3 items)".
fn describe(platform: PlatformKind, request: &ApiRequest, path: &str) -> String {
    match &request.context {
        Some(context) => format!("{platform} {} {path} ({context})", request.method),
        None => format!("{platform} {} {path}", request.method),
    }
}

/// Why one attempt did not produce an answer to return.
enum Failure {
    /// A non-2xx status.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        body: Bytes,
    },
    /// Nothing was sent: safe to retry any request.
    Connect(String),
    /// The request may have reached the platform: retry only idempotent requests.
    Ambiguous(String),
    /// A 2xx answer exceeded the body cap.
    TooLarge { limit: usize },
    /// The request's inspector refused a 2xx answer.
    Inspected(ConnectorError),
}

struct Call<'a> {
    client: &'a HttpClient,
    request: &'a ApiRequest,
    url: &'a Url,
    redactor: &'a Redactor,
    what: String,
}

impl Call<'_> {
    async fn run(&self, span: &tracing::Span) -> Result<ApiResponse, ConnectorError> {
        let policy = self.client.config.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            span.record("attempt", attempt);
            self.client.pacer.acquire(self.request.cost).await;
            let failure = match self.attempt(span).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let (error, retry, hint) = self.judge(failure);
            if !retry || attempt >= max_attempts {
                if retry {
                    warn!(attempts = attempt, error = %error, "giving up after the last attempt");
                } else {
                    debug!(error = %error, "request failed");
                }
                return Err(error);
            }
            let delay = match hint {
                Some(hint) if hint > policy.max_retry_after => {
                    // Too long to hold a worker: the caller reschedules.
                    return Err(error);
                }
                Some(hint) => {
                    // Every request of the connection waits, not only this one.
                    self.client.pacer.pause_for(hint);
                    hint.saturating_add(small_jitter(hint))
                }
                None => policy.backoff(attempt),
            };
            warn!(
                error = %error,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, span: &tracing::Span) -> Result<ApiResponse, Failure> {
        let mut builder = self
            .client
            .inner
            .request(self.request.method.clone(), self.url.clone());
        if self.url.origin() == self.client.config.base_url.origin() {
            builder = builder.headers(self.client.config.default_headers.clone());
        }
        builder = builder.headers(self.request.headers.clone());
        if let Some(body) = &self.request.body {
            builder = builder.body(body.clone());
        }
        let mut response = builder.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        span.record("status", status.as_u16());

        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            // An unreadable error body still leaves the status to judge by.
            let body = read_body(&mut response, MAX_ERROR_BODY_BYTES, true)
                .await
                .unwrap_or_default();
            return Err(Failure::Status {
                status,
                retry_after,
                body,
            });
        }

        let limit = self
            .request
            .max_body_bytes
            .unwrap_or(self.client.config.max_body_bytes);
        let headers = response.headers().clone();
        // The platform answered 2xx: from here on the request took effect, so no failure
        // is a connect failure (which would be retried whatever the request).
        let body = read_body(&mut response, limit, false)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => Failure::TooLarge { limit },
                BodyError::Read(e) => match self.transport(e) {
                    Failure::Connect(text) => Failure::Ambiguous(text),
                    other => other,
                },
            })?;
        let answer = ApiResponse {
            status,
            headers,
            body,
            description: self.what.clone(),
            idempotent: self.request.idempotent,
        };
        if let Some(inspect) = &self.request.inspector {
            inspect(&answer).map_err(Failure::Inspected)?;
        }
        debug!(
            status = status.as_u16(),
            bytes = answer.body.len(),
            "answered"
        );
        Ok(answer)
    }

    fn transport(&self, error: reqwest::Error) -> Failure {
        // reqwest's Display includes the URL, query credentials and all: drop it.
        let connect = error.is_connect();
        let timeout = error.is_timeout();
        let text = self.redactor.text(&error_chain(&error.without_url()));
        // A connect timeout is still a connect failure: nothing reached the platform.
        if connect {
            Failure::Connect(text)
        } else if timeout {
            Failure::Ambiguous(format!("timed out: {text}"))
        } else {
            Failure::Ambiguous(text)
        }
    }

    /// The error to surface, whether to retry, and the platform's wait hint.
    fn judge(&self, failure: Failure) -> (ConnectorError, bool, Option<Duration>) {
        let idempotent = self.request.idempotent;
        let what = &self.what;
        match failure {
            Failure::Connect(text) => (
                ConnectorError::transient(format!("{what} could not connect: {text}")),
                true,
                None,
            ),
            Failure::Ambiguous(text) => (
                ConnectorError::Transient {
                    message: format!("{what} failed: {text}"),
                    maybe_applied: !idempotent,
                    retry_after: None,
                },
                idempotent,
                None,
            ),
            Failure::TooLarge { limit } => {
                let message = format!("{what} answered with a body over the {limit}-byte limit");
                let error = if idempotent {
                    // Asking again gets the same answer.
                    ConnectorError::fatal(message)
                } else {
                    // The write took effect; only its answer is lost.
                    ConnectorError::maybe_applied(message)
                };
                (error, false, None)
            }
            Failure::Inspected(mut error) => {
                let hint = error.retry_hint();
                let retry = match &mut error {
                    ConnectorError::RateLimited { .. } => true,
                    ConnectorError::Transient { maybe_applied, .. } => {
                        // A 2xx came back: a write may have taken effect.
                        *maybe_applied |= !idempotent;
                        idempotent
                    }
                    _ => false,
                };
                (error.context(what), retry, hint)
            }
            Failure::Status {
                status,
                retry_after,
                body,
            } => self.judge_status(status, retry_after, &body),
        }
    }

    fn judge_status(
        &self,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> (ConnectorError, bool, Option<Duration>) {
        let idempotent = self.request.idempotent;
        let code = status.as_u16();
        let answered = format!("{} answered {code}", self.what);
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let parsed = json.as_ref().and_then(parse_error_body);
        let platform_words = parsed
            .as_ref()
            .and_then(|p| p.message.clone().or_else(|| p.code.clone()))
            .map(|m| self.redactor.text(&m))
            .unwrap_or_else(|| snippet(self.redactor, body));
        let with_words = |prefix: &str| {
            if platform_words.is_empty() {
                prefix.to_owned()
            } else {
                format!("{prefix}: {platform_words}")
            }
        };
        match code {
            429 => (
                ConnectorError::RateLimited {
                    retry_after,
                    message: with_words(&answered),
                },
                true,
                retry_after,
            ),
            // A request timeout is a timeout: ambiguous for writes. The hint stays on the error
            // for when the client gives up (too long to wait, or a write it must not repeat).
            408 | 500..=599 => (
                ConnectorError::Transient {
                    message: with_words(&answered),
                    maybe_applied: !idempotent,
                    retry_after,
                },
                idempotent,
                retry_after,
            ),
            401 | 403 => (
                ConnectorError::unauthorized(with_words(&answered)),
                false,
                None,
            ),
            404 => (
                ConnectorError::not_found(with_words(&answered)),
                false,
                None,
            ),
            400 | 409 | 413 | 422 => match parsed {
                Some(p) => {
                    let payload = json
                        .map(|v| self.redactor.json(v))
                        .unwrap_or(serde_json::Value::Null);
                    let error = ConnectorError::Rejected {
                        code: p
                            .code
                            .map_or_else(|| format!("http_{code}"), |c| self.redactor.text(&c)),
                        message: p
                            .message
                            .map_or_else(String::new, |m| self.redactor.text(&m)),
                        field: p.field.map(|f| self.redactor.text(&f)),
                        payload: Box::new(payload),
                        context: answered,
                    };
                    (error, false, None)
                }
                None => (ConnectorError::fatal(with_words(&answered)), false, None),
            },
            _ => (ConnectorError::fatal(with_words(&answered)), false, None),
        }
    }
}

/// Up to 10 % of a Retry-After hint (at most 250 ms), so clients told the same instant do not
/// all come back at once; never less than the hint.
fn small_jitter(hint: Duration) -> Duration {
    use rand::Rng as _;
    let cap = (hint / 10).min(Duration::from_millis(250));
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(0);
    if nanos == 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// The first bytes of a body that did not parse, for a message.
fn snippet(redactor: &Redactor, body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = redactor.text(&text);
    if body.len() > MAX {
        format!("{text}…")
    } else {
        text
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

enum BodyError {
    TooLarge,
    Read(reqwest::Error),
}

/// Reads the body up to `limit` bytes. With `truncate` the excess is dropped (error bodies);
/// otherwise it is an error, checked against Content-Length before anything is read.
async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
    truncate: bool,
) -> Result<Bytes, BodyError> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !truncate && declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if buf.len() + chunk.len() > limit {
            if truncate {
                let room = limit - buf.len();
                buf.extend_from_slice(&chunk[..room]);
                break;
            }
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
