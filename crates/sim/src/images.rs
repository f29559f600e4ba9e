//! Real image bytes for simulated catalogues: a small valid PNG per seed, so that tidemark
//! downloads, hashes and de-duplicates images by content as it would on a real platform.

/// A `size`×`size` RGB PNG whose pixels depend on `seed` (different seeds, different bytes).
pub fn png(seed: u64, size: u32) -> Vec<u8> {
    let size = size.clamp(1, 256);
    let [r, g, b, ..] = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
    let mut raw = Vec::with_capacity((size * (size * 3 + 1)) as usize);
    for y in 0..size {
        raw.push(0); // filter: none
        for x in 0..size {
            let shade = ((x ^ y) & 0x1f) as u8;
            raw.extend_from_slice(&[r ^ shade, g.wrapping_add(shade), b ^ (y as u8)]);
        }
    }
    let mut out = Vec::with_capacity(raw.len() + 128);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&size.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib stream of stored (uncompressed) deflate blocks: valid, and no compressor needed.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    if blocks.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// CRC-32 (IEEE) by table: simulators serve thousands of images a second, in debug builds too.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// Why a platform could not take an image from the URL it was given.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: not an http(s) URL")]
    BadUrl { url: String },
    #[error("{url}: the host does not resolve")]
    Unreachable { url: String },
    #[error("{url}: answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url}: larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: not an image")]
    NotAnImage { url: String },
}

/// Largest image a simulated platform downloads.
pub const MAX_SOURCE_BYTES: usize = 10 * 1024 * 1024;

/// What a platform gets when it downloads an image from `url`, as WooCommerce (`src`), Shopify
/// (`originalSource`) and MercadoLibre (`source`) do. Simulators never leave the machine:
/// loopback URLs (another simulator's images) are really fetched, so an image copied between
/// simulators keeps its bytes; any other URL stands for the internet and yields a PNG derived
/// from the URL (the same URL, the same bytes). Hosts under `.invalid` do not resolve, for
/// tests of unreachable sources.
pub async fn fetch_source(url: &str) -> Result<Vec<u8>, SourceError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(SourceError::BadUrl { url: url.into() });
    };
    if !matches!(scheme, "http" | "https") {
        return Err(SourceError::BadUrl { url: url.into() });
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h)
        .trim_start_matches('[');
    let host = match host.rsplit_once(']') {
        Some((h, _)) => h,
        None => host.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() {
        return Err(SourceError::BadUrl { url: url.into() });
    }
    if host.ends_with(".invalid") {
        return Err(SourceError::Unreachable { url: url.into() });
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Ok(png(fnv1a(url.as_bytes()), 24));
    }
    let fail = |reason: String| SourceError::Fetch {
        url: url.into(),
        reason,
    };
    let client = crate::http_client_builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let mut response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(SourceError::Status {
            url: url.into(),
            status: status.as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() + chunk.len() > MAX_SOURCE_BYTES {
            return Err(SourceError::TooLarge {
                url: url.into(),
                limit: MAX_SOURCE_BYTES,
            });
        }
        body.extend_from_slice(&chunk);
    }
    if !is_image(&body) {
        return Err(SourceError::NotAnImage { url: url.into() });
    }
    Ok(body)
}

/// PNG, JPEG, GIF or WebP by their magic bytes.
pub fn is_image(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(&[0xff, 0xd8, 0xff])
        || bytes.starts_with(b"GIF8")
        || (bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP")
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_checksums() {
        // Reference values of the standard algorithms.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn pngs_are_well_formed_and_distinct() {
        let a = png(1, 16);
        let b = png(2, 16);
        assert!(a.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(a.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));
        assert_ne!(a, b);
        assert_eq!(a, png(1, 16));
    }

    #[tokio::test]
    async fn sources_off_the_machine_are_stand_ins_and_invalid_hosts_fail() {
        let a = fetch_source("https://cdn.example.com/a.jpg").await.unwrap();
        assert!(is_image(&a));
        assert_eq!(
            a,
            fetch_source("https://cdn.example.com/a.jpg").await.unwrap()
        );
        assert_ne!(
            a,
            fetch_source("https://cdn.example.com/b.jpg").await.unwrap()
        );
        assert!(matches!(
            fetch_source("https://images.invalid/a.jpg").await,
            Err(SourceError::Unreachable { .. })
        ));
        assert!(matches!(
            fetch_source("ftp://x/a.jpg").await,
            Err(SourceError::BadUrl { .. })
        ));
    }

    #[tokio::test]
    async fn loopback_sources_are_fetched_byte_for_byte() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/i.png", axum::routing::get(|| async { png(9, 8) }))
            .route("/t.txt", axum::routing::get(|| async { "hello" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let got = fetch_source(&format!("http://{addr}/i.png")).await.unwrap();
        assert_eq!(got, png(9, 8));
        assert!(matches!(
            fetch_source(&format!("http://{addr}/t.txt")).await,
            Err(SourceError::NotAnImage { .. })
        ));
        assert!(matches!(
            fetch_source(&format!("http://{addr}/missing.png")).await,
            Err(SourceError::Status { status: 404, .. })
        ));
    }
}
