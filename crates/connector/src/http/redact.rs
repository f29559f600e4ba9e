//! Keeping credentials out of logs and error messages: secret query parameters are masked in
//! URLs, and known secret values are scrubbed from any text that leaves the client (platforms
//! sometimes echo a token or key back in an error body).

use url::Url;

pub const REDACTED: &str = "[REDACTED]";

/// Query parameters whose values are always masked (WooCommerce query-string auth, OAuth).
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "client_secret",
    "code",
    "consumer_key",
    "consumer_secret",
    "oauth_signature",
    "password",
    "refresh_token",
    "token",
];

/// Values shorter than this are not scrubbed from text: masking every "a" would destroy
/// messages, and real credentials are long.
const MIN_SECRET_LEN: usize = 6;

/// Masks secret query parameters and scrubs known secret values. It holds those values, so its
/// `Debug` shows only how many it knows, never the values.
#[derive(Clone, Default)]
pub struct Redactor {
    extra_params: Vec<String>,
    values: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("extra_params", &self.extra_params)
            .field("secrets", &self.values.len())
            .finish()
    }
}

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also masks this query parameter's value.
    pub fn param(mut self, name: &str) -> Self {
        self.extra_params.push(name.to_ascii_lowercase());
        self
    }

    /// Scrubs this value wherever it appears (a token, a consumer secret, a Basic credential).
    pub fn secret(mut self, value: &str) -> Self {
        self.add_secret(value);
        self
    }

    pub fn add_secret(&mut self, value: &str) {
        if value.len() >= MIN_SECRET_LEN && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_owned());
            // Longest first, so a secret containing another is replaced whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    fn is_secret_param(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        SECRET_PARAMS.contains(&name.as_str()) || self.extra_params.contains(&name)
    }

    /// The URL with secret query values and any password masked.
    pub fn url(&self, url: &Url) -> String {
        let mut url = url.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some(REDACTED));
        }
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if self.is_secret_param(&k) {
                        REDACTED.to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        self.text(url.as_str())
    }

    /// `text` with every known secret value replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), REDACTED);
            }
        }
        out
    }

    /// A JSON value with every string scrubbed.
    pub fn json(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.values.is_empty() {
            return value;
        }
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.json(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_query_values() {
        let r = Redactor::new();
        let url = Url::parse(
            "https://shop.example/wp-json/wc/v3/products?consumer_key=ck_1&consumer_secret=cs_2&page=3",
        )
        .unwrap();
        let text = r.url(&url);
        assert!(!text.contains("ck_1") && !text.contains("cs_2"), "{text}");
        assert!(text.contains("page=3"), "{text}");
    }

    #[test]
    fn scrubs_known_values_everywhere() {
        let r = Redactor::new().secret("shpat_abcdef123").secret("x");
        assert_eq!(
            r.text("invalid token shpat_abcdef123 for x"),
            "invalid token [REDACTED] for x"
        );
        let v = r.json(serde_json::json!({"errors": ["token shpat_abcdef123 expired"]}));
        assert_eq!(v["errors"][0], "token [REDACTED] expired");
    }

    #[test]
    fn debug_counts_secrets_without_showing_them() {
        let r = Redactor::new()
            .param("sig")
            .secret("shpat_abcdef123")
            .secret("cs_0123456789");
        let text = format!("{r:?} {r:#?}");
        assert!(!text.contains("shpat_abcdef123"), "{text}");
        assert!(!text.contains("cs_0123456789"), "{text}");
        assert!(text.contains("secrets: 2"), "{text}");
    }

    #[test]
    fn masks_passwords_in_urls() {
        let r = Redactor::new();
        let url = Url::parse("https://ck_user:cs_pass@shop.example/x").unwrap();
        assert!(!r.url(&url).contains("cs_pass"));
    }
}
