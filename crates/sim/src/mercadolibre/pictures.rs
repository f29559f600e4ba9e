//! Pictures as MercadoLibre keeps them: an image given by `source` URL or uploaded is taken in
//! (JPEG or PNG, at most 10 MB) and **re-encoded**, so the bytes its CDN serves are never the
//! bytes that were sent. Here a PNG gains an ancillary `tEXt` chunk and a JPEG a comment
//! segment: both stay valid images of the same pixels, and neither hashes like the original (a
//! sync tool comparing picture bytes across platforms would upload the same image forever).
//! Also the multipart reading of `POST /pictures/items/upload`.

use std::sync::Arc;

/// Largest picture MercadoLibre takes (platforms.md §3.4).
pub const MAX_PICTURE_BYTES: usize = 10 * 1024 * 1024;

/// Side of the seeded PNGs (`images::png(seed, SEEDED_SIDE)`).
pub const SEEDED_SIDE: u32 = 16;

/// What re-encoding adds to a PNG, as a `tEXt` chunk (keyword, NUL, text).
const PNG_TEXT: &[u8] = b"Software\0MercadoLibre picture processing";
/// What re-encoding adds to a JPEG, as a `COM` segment.
const JPEG_COMMENT: &[u8] = b"MercadoLibre picture processing";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
        }
    }
}

/// An image after MercadoLibre's processing: the bytes its CDN serves.
#[derive(Debug, Clone)]
pub struct Processed {
    pub bytes: Arc<[u8]>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

/// Why an image was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PictureError {
    #[error("the file is not a JPEG or PNG image")]
    Format,
    #[error("the {format} image is malformed: {reason}")]
    Malformed {
        format: &'static str,
        reason: &'static str,
    },
    #[error("the image is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// Takes an image in as MercadoLibre does: JPEG or PNG only, re-encoded.
pub fn process(bytes: &[u8]) -> Result<Processed, PictureError> {
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(PictureError::TooLarge {
            limit: MAX_PICTURE_BYTES,
        });
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        process_png(bytes)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        process_jpeg(bytes)
    } else {
        Err(PictureError::Format)
    }
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// The PNG with a `tEXt` chunk right after `IHDR` (ancillary chunks may go anywhere between
/// `IHDR` and `IEND`; decoders that do not know one skip it).
fn process_png(bytes: &[u8]) -> Result<Processed, PictureError> {
    let malformed = |reason| PictureError::Malformed {
        format: "PNG",
        reason,
    };
    // Signature (8), then IHDR: length (4) = 13, type (4), data (13), CRC (4).
    if be32(bytes, 8) != Some(13) || bytes.get(12..16) != Some(b"IHDR".as_slice()) {
        return Err(malformed("the first chunk is not IHDR"));
    }
    let (Some(width), Some(height)) = (be32(bytes, 16), be32(bytes, 20)) else {
        return Err(malformed("IHDR is cut short"));
    };
    let after_ihdr = 8 + 4 + 4 + 13 + 4;
    if bytes.len() < after_ihdr + 12 || !bytes.ends_with(b"IEND\xae\x42\x60\x82") {
        return Err(malformed("it does not end with IEND"));
    }
    let mut out = Vec::with_capacity(bytes.len() + PNG_TEXT.len() + 12);
    out.extend_from_slice(&bytes[..after_ihdr]);
    out.extend_from_slice(&(PNG_TEXT.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(b"tEXt");
    out.extend_from_slice(PNG_TEXT);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&bytes[after_ihdr..]);
    Ok(Processed {
        bytes: out.into(),
        format: Format::Png,
        width,
        height,
    })
}

/// The JPEG with a `COM` segment right after `SOI`; its size from the first `SOFn` frame.
fn process_jpeg(bytes: &[u8]) -> Result<Processed, PictureError> {
    let malformed = |reason| PictureError::Malformed {
        format: "JPEG",
        reason,
    };
    let mut at = 2;
    let (width, height) = loop {
        if bytes.get(at) != Some(&0xff) {
            return Err(malformed("no frame header before the image data"));
        }
        let Some(&marker) = bytes.get(at + 1) else {
            return Err(malformed("cut short"));
        };
        // SOF0–SOF15, except DHT (C4), JPG (C8) and DAC (CC), carry the frame's size.
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            match (be16(bytes, at + 5), be16(bytes, at + 7)) {
                (Some(h), Some(w)) => break (u32::from(w), u32::from(h)),
                _ => return Err(malformed("the frame header is cut short")),
            }
        }
        if marker == 0xda || marker == 0xd9 {
            return Err(malformed("no frame header before the image data"));
        }
        let Some(length) = be16(bytes, at + 2) else {
            return Err(malformed("cut short"));
        };
        at += 2 + usize::from(length);
    };
    let mut out = Vec::with_capacity(bytes.len() + JPEG_COMMENT.len() + 4);
    out.extend_from_slice(&bytes[..2]);
    out.extend_from_slice(&[0xff, 0xfe]);
    out.extend_from_slice(&((JPEG_COMMENT.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(JPEG_COMMENT);
    out.extend_from_slice(&bytes[2..]);
    Ok(Processed {
        bytes: out.into(),
        format: Format::Jpeg,
        width,
        height,
    })
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

/// Why a multipart body had no usable file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the content type is not multipart/form-data with a boundary")]
    NotMultipart,
    #[error("the body has no part named {0:?}")]
    Missing(String),
}

/// The contents of the part named `field` of a `multipart/form-data` body.
pub fn multipart_part<'a>(
    content_type: &str,
    body: &'a [u8],
    field: &str,
) -> Result<&'a [u8], MultipartError> {
    let (kind, params) = content_type
        .split_once(';')
        .ok_or(MultipartError::NotMultipart)?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(MultipartError::NotMultipart);
    }
    let boundary = params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or(MultipartError::NotMultipart)?;
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = body;
    // Each part sits between two delimiters: headers, a blank line, then its bytes, which end
    // with the CRLF that precedes the next delimiter.
    while let Some(start) = find(rest, delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(end) = find(rest, delimiter) else {
            break;
        };
        let part = &rest[..end];
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&part[..split]);
        let contents = &part[split + 4..];
        let contents = contents.strip_suffix(b"\r\n").unwrap_or(contents);
        if part_name(&headers).as_deref() == Some(field) {
            return Ok(contents);
        }
    }
    Err(MultipartError::Missing(field.to_owned()))
}

/// `name` of a part's `Content-Disposition: form-data; name="…"`.
fn part_name(headers: &str) -> Option<String> {
    let disposition = headers.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(v)
    })?;
    disposition
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim() == "name")
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_png_is_re_encoded_with_an_extra_chunk_and_stays_valid() {
        let original = crate::images::png(5, 8);
        let p = process(&original).unwrap();
        assert_eq!((p.format, p.width, p.height), (Format::Png, 8, 8));
        assert_ne!(&p.bytes[..], &original[..]);
        assert_eq!(p.bytes.len(), original.len() + 12 + PNG_TEXT.len());
        // Walk the chunks: every CRC holds, IHDR first, tEXt second, IEND last.
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < p.bytes.len() {
            let len = be32(&p.bytes, at).unwrap() as usize;
            let kind = &p.bytes[at + 4..at + 8];
            let crc = be32(&p.bytes, at + 8 + len).unwrap();
            assert_eq!(crc32(&p.bytes[at + 4..at + 8 + len]), crc);
            kinds.push(String::from_utf8_lossy(kind).into_owned());
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "tEXt", "IDAT", "IEND"]);
    }

    #[test]
    fn a_jpeg_gains_a_comment_and_keeps_its_size() {
        // SOI, APP0 (length 16), SOF0 (length 17: 8 bits, 20 high, 30 wide), EOI.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10];
        jpeg.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        jpeg.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 8, 0, 20, 0, 30, 3]);
        jpeg.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        jpeg.extend_from_slice(&[0xff, 0xd9]);
        let p = process(&jpeg).unwrap();
        assert_eq!((p.format, p.width, p.height), (Format::Jpeg, 30, 20));
        assert_eq!(&p.bytes[..4], &[0xff, 0xd8, 0xff, 0xfe]);
        assert_eq!(&p.bytes[p.bytes.len() - jpeg.len() + 2..], &jpeg[2..]);
    }

    #[test]
    fn other_files_are_refused() {
        assert_eq!(process(b"GIF89a....").unwrap_err(), PictureError::Format);
        assert!(matches!(
            process(b"\x89PNG\r\n\x1a\nshort").unwrap_err(),
            PictureError::Malformed { .. }
        ));
    }

    #[test]
    fn multipart_finds_the_named_part() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nnope\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
            Content-Type: image/png\r\n\r\n\x89PNG\r\n\r\nbytes\r\n--XyZ--\r\n";
        let ct = "multipart/form-data; boundary=XyZ";
        assert_eq!(
            multipart_part(ct, body, "file").unwrap(),
            b"\x89PNG\r\n\r\nbytes"
        );
        assert_eq!(
            multipart_part(ct, body, "missing").unwrap_err(),
            MultipartError::Missing("missing".into())
        );
        assert_eq!(
            multipart_part("application/json", body, "file").unwrap_err(),
            MultipartError::NotMultipart
        );
    }
}
