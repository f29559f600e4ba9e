//! Image downloads (DESIGN §4 "Scan": images are downloaded with bounded size and time, and
//! hashed). Images are matched by the hash of their bytes, so a re-upload that changes the
//! URL is not a change; the URL hash is only a stand-in until the bytes are known.
//!
//! Image URLs come from platforms, that is from anyone who can edit a product there, so the
//! downloader refuses private, loopback and link-local addresses unless the policy allows
//! them (the simulators live on loopback): names are resolved by a resolver that drops such
//! addresses, literal addresses are checked before the request, and redirects are followed
//! only to public literal addresses or names (which go through the same resolver).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tidemark_core::ContentHash;
use tidemark_core::hash::image_hash_bytes;

/// Limits of image downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePolicy {
    pub max_bytes: usize,
    pub timeout: Duration,
    /// Allow loopback and private addresses (tests, the demo with its simulators).
    pub allow_private: bool,
    /// Downloads at once within one scan page.
    pub concurrency: usize,
}

impl Default for ImagePolicy {
    fn default() -> Self {
        Self {
            max_bytes: 20 * 1024 * 1024,
            timeout: Duration::from_secs(20),
            allow_private: false,
            concurrency: 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("{url}: not an http(s) URL")]
    BadUrl { url: String },
    #[error("{url}: points at a private or local address")]
    PrivateAddress { url: String },
    #[error("{url}: answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: not an image (content type {content_type:?})")]
    NotAnImage { url: String, content_type: String },
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
}

/// Downloads and hashes images under an [`ImagePolicy`].
#[derive(Debug, Clone)]
pub struct ImageFetcher {
    client: reqwest::Client,
    policy: ImagePolicy,
}

impl ImageFetcher {
    pub fn new(policy: ImagePolicy) -> Result<Self, crate::EngineError> {
        let allow_private = policy.allow_private;
        let mut builder = tidemark_connector::http::client_builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("more than 5 redirects");
                }
                let literal_private = attempt
                    .url()
                    .host_str()
                    .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok())
                    .is_some_and(|ip| !is_public(ip));
                if literal_private && !allow_private {
                    return attempt.error("redirect to a private address");
                }
                attempt.follow()
            }));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder.build().map_err(|e| {
            crate::EngineError::Internal(format!("cannot build the image downloader: {e}"))
        })?;
        Ok(Self { client, policy })
    }

    pub fn policy(&self) -> &ImagePolicy {
        &self.policy
    }

    /// The content hash of the image at `url`.
    pub async fn hash(&self, url: &str) -> Result<ContentHash, ImageError> {
        let bytes = self.download(url).await?;
        Ok(image_hash_bytes(&bytes))
    }

    /// The bytes of the image at `url`, within the policy's limits.
    pub async fn download(&self, url: &str) -> Result<Vec<u8>, ImageError> {
        let parsed = url::Url::parse(url).map_err(|_| ImageError::BadUrl { url: url.into() })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ImageError::BadUrl { url: url.into() });
        }
        if !self.policy.allow_private {
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            let local_name = parsed
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case("localhost") || h.ends_with(".localhost"));
            if literal.is_some_and(|ip| !is_public(ip)) || local_name {
                return Err(ImageError::PrivateAddress { url: url.into() });
            }
        }
        let fail = |e: reqwest::Error| {
            let reason = if e.is_timeout() {
                format!("no answer within {:?}", self.policy.timeout)
            } else if e.is_redirect() {
                "refused redirect".to_owned()
            } else {
                // The chain names a refused address ("private or local address").
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                text
            };
            ImageError::Fetch {
                url: url.into(),
                reason,
            }
        };
        let mut response = self.client.get(parsed).send().await.map_err(fail)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ImageError::Status {
                url: url.into(),
                status: status.as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        // Servers that do not say are given the benefit of the doubt; the bytes are checked.
        let declared_other = !content_type.is_empty()
            && !content_type.starts_with("image/")
            && !content_type.starts_with("application/octet-stream")
            && !content_type.starts_with("binary/octet-stream");
        if declared_other {
            return Err(ImageError::NotAnImage {
                url: url.into(),
                content_type,
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.policy.max_bytes as u64)
        {
            return Err(ImageError::TooLarge {
                url: url.into(),
                limit: self.policy.max_bytes,
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > self.policy.max_bytes {
                return Err(ImageError::TooLarge {
                    url: url.into(),
                    limit: self.policy.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !looks_like_image(&body) {
            return Err(ImageError::NotAnImage {
                url: url.into(),
                content_type,
            });
        }
        Ok(body)
    }
}

/// PNG, JPEG, GIF, WebP, AVIF/HEIC, BMP, TIFF or SVG by their first bytes.
fn looks_like_image(bytes: &[u8]) -> bool {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    starts(b"\x89PNG\r\n\x1a\n")
        || starts(&[0xff, 0xd8, 0xff])
        || starts(b"GIF8")
        || (bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP")
        || (bytes.len() >= 12 && &bytes[4..8] == b"ftyp")
        || starts(b"BM")
        || starts(b"II*\0")
        || starts(b"MM\0*")
        || {
            let head = &bytes[..bytes.len().min(512)];
            let text = String::from_utf8_lossy(head).to_ascii_lowercase();
            text.trim_start().starts_with("<svg") || text.contains("<svg")
        }
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// unspecified, multicast or documentation space).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// A resolver that answers only public addresses.
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no public address (private or local address)")
                        .into();
                return Err(refused);
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for text in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            let ip: IpAddr = text.parse().unwrap_or(IpAddr::from([1, 1, 1, 1]));
            assert!(!is_public(ip), "{text}");
        }
        for text in ["1.1.1.1", "8.8.8.8", "2606:4700::1111"] {
            let ip: IpAddr = text.parse().unwrap_or(IpAddr::from([10, 0, 0, 1]));
            assert!(is_public(ip), "{text}");
        }
    }

    #[test]
    fn image_magic_bytes() {
        assert!(looks_like_image(b"\x89PNG\r\n\x1a\nrest"));
        assert!(looks_like_image(&[0xff, 0xd8, 0xff, 0xe0]));
        assert!(looks_like_image(b"<?xml version='1.0'?><svg xmlns='x'/>"));
        assert!(!looks_like_image(b"<html>hello</html>"));
        assert!(!looks_like_image(b""));
    }
}
