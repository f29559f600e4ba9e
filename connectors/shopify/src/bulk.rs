//! Bulk query results read as a stream: the JSONL file is downloaded chunk by chunk, split
//! into lines and reassembled into products one at a time, so memory holds one page of
//! products (plus one line) however large the file is.
//!
//! Reassembly: a product's line comes first and its children (variants, media: lines with
//! `__parentId`) follow it, before the next product's line. That is the grouped output of
//! 2025-01 bulk queries (grouping became optional, `groupObjects`, only in later versions). A
//! child met before its parent is held until the parent arrives; a child whose parent never
//! arrives — or came earlier, and was already handed out — is an error at the end of the file
//! (never a silently incomplete product).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tidemark_connector::ConnectorError;

/// The longest line accepted (one product or one child): a guard against a broken file, far
/// above any real product.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Children held while waiting for a parent that has not come yet: a file that is not grouped
/// by parent would otherwise fill memory.
pub const MAX_ORPHAN_LINES: usize = 100_000;
/// Connecting to the file's host.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest silence while reading the file. There is no limit on the whole download: a
/// file of a large catalogue takes as long as it takes.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Turns lines into products, in file order.
#[derive(Debug, Default)]
pub struct Grouper {
    /// The product being assembled: its line was read, its children may still come.
    current: Option<(String, Value)>,
    /// Children read before their parent, by parent id.
    orphans: HashMap<String, Vec<Value>>,
    orphan_lines: usize,
    lines: usize,
}

impl Grouper {
    /// Feeds one line; returns the previous product when this line starts a new one.
    pub fn push(&mut self, line: &[u8]) -> Result<Option<Value>, ConnectorError> {
        self.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let number = self.lines;
        let mut value: Value = serde_json::from_slice(line).map_err(|e| {
            ConnectorError::fatal(format!("line {number} of a bulk result is not JSON: {e}"))
        })?;
        let Some(object) = value.as_object_mut() else {
            return Err(ConnectorError::fatal(format!(
                "line {number} of a bulk result is not an object"
            )));
        };
        match object.remove("__parentId") {
            Some(Value::String(parent)) => {
                match &mut self.current {
                    Some((id, node)) if *id == parent => attach(node, value),
                    _ => {
                        self.orphan_lines += 1;
                        if self.orphan_lines > MAX_ORPHAN_LINES {
                            return Err(ConnectorError::fatal(format!(
                                "a bulk result holds over {MAX_ORPHAN_LINES} lines whose \
                                 parent has not come (line {number}): it is not grouped by \
                                 parent"
                            )));
                        }
                        self.orphans.entry(parent).or_default().push(value);
                    }
                }
                Ok(None)
            }
            Some(_) => Err(ConnectorError::fatal(format!(
                "line {number} of a bulk result has a __parentId that is not text"
            ))),
            None => {
                let id = object
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ConnectorError::fatal(format!("line {number} of a bulk result has no id"))
                    })?;
                object.insert("variants".into(), json!({ "nodes": [] }));
                object.insert("media".into(), json!({ "nodes": [] }));
                if let Some(kids) = self.orphans.remove(&id) {
                    self.orphan_lines -= kids.len();
                    for kid in kids {
                        attach(&mut value, kid);
                    }
                }
                Ok(self.current.replace((id, value)).map(|(_, node)| node))
            }
        }
    }

    /// Whether a product is being assembled (its line was read).
    pub fn has_current(&self) -> bool {
        self.current.is_some()
    }

    /// At the end of the file: the last product. Children left waiting are an error.
    pub fn finish(&mut self) -> Result<Option<Value>, ConnectorError> {
        if let Some(parent) = self.orphans.keys().next() {
            return Err(ConnectorError::fatal(format!(
                "a bulk result has children of {parent} that do not follow it (the parent is \
                 missing or came earlier)"
            )));
        }
        Ok(self.current.take().map(|(_, node)| node))
    }
}

/// Adds a child line to a product node, under `variants` or `media` by its gid.
fn attach(node: &mut Value, kid: Value) {
    let field = if kid["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("gid://shopify/ProductVariant/"))
    {
        "variants"
    } else {
        "media"
    };
    if let Some(nodes) = node[field]["nodes"].as_array_mut() {
        nodes.push(kid);
    }
}

/// Reassembles a whole bulk result held in memory (see [`Grouper`]); for tests and small
/// files.
pub fn parse_bulk_lines(body: &[u8]) -> Result<Vec<Value>, ConnectorError> {
    let mut grouper = Grouper::default();
    let mut out = Vec::new();
    for line in body.split(|b| *b == b'\n') {
        out.extend(grouper.push(line)?);
    }
    out.extend(grouper.finish()?);
    Ok(out)
}

/// A bulk result file being downloaded and read product by product.
#[derive(Debug)]
pub struct BulkReader {
    response: Option<reqwest::Response>,
    /// Bytes read but not yet split into lines, from `start` (one chunk and a partial line).
    pending: Vec<u8>,
    start: usize,
    grouper: Grouper,
    /// Products handed out so far (the scan cursor's offset).
    pub served: usize,
    ended: bool,
}

/// The HTTP client for bulk files: no credentials (the URL is a signed storage URL), an idle
/// read timeout instead of a limit on the whole download.
pub fn client() -> Result<reqwest::Client, ConnectorError> {
    tidemark_connector::http::client_builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|e| ConnectorError::fatal(format!("cannot build the bulk file client: {e}")))
}

fn transport(error: &reqwest::Error) -> ConnectorError {
    // reqwest's Display includes the URL, whose query is a signature: leave it out.
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<bulk file>");
    }
    ConnectorError::transient(format!("reading a bulk operation result failed: {text}"))
}

impl BulkReader {
    /// The reader of an operation that completed without a file (no objects).
    pub fn empty() -> Self {
        Self {
            response: None,
            pending: Vec::new(),
            start: 0,
            grouper: Grouper::default(),
            served: 0,
            ended: true,
        }
    }

    /// Starts downloading `url`. A file that is gone (404/410, or 403 for an expired
    /// signature) is `NotFound`; 429 and 5xx are `Transient`.
    pub async fn open(client: &reqwest::Client, url: &str) -> Result<Self, ConnectorError> {
        let response = client.get(url).send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("the bulk operation result answered HTTP {status}");
            return Err(match status.as_u16() {
                403 | 404 | 410 => ConnectorError::not_found(message),
                429 | 500..=599 => ConnectorError::transient(message),
                _ => ConnectorError::fatal(message),
            });
        }
        Ok(Self {
            response: Some(response),
            pending: Vec::new(),
            start: 0,
            grouper: Grouper::default(),
            served: 0,
            ended: false,
        })
    }

    /// The next product of the file, reassembled; `None` at the end.
    pub async fn next_product(&mut self) -> Result<Option<Value>, ConnectorError> {
        loop {
            if let Some(line) = self.next_line().await? {
                if let Some(product) = self.grouper.push(&line)? {
                    self.served += 1;
                    return Ok(Some(product));
                }
                continue;
            }
            let last = self.grouper.finish()?;
            if last.is_some() {
                self.served += 1;
            }
            return Ok(last);
        }
    }

    /// Skips `count` products (a resumed scan).
    pub async fn skip(&mut self, count: usize) -> Result<(), ConnectorError> {
        while self.served < count {
            if self.next_product().await?.is_none() {
                return Err(ConnectorError::CursorExpired {
                    message: format!(
                        "the bulk operation result has fewer than {count} products; the full \
                         scan restarts"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether every product has been handed out.
    pub fn at_end(&self) -> bool {
        self.ended && self.start == self.pending.len() && !self.grouper.has_current()
    }

    /// The next line (without its newline); `None` at the end of the file.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, ConnectorError> {
        loop {
            let unread = &self.pending[self.start..];
            if let Some(at) = unread.iter().position(|b| *b == b'\n') {
                let line = unread[..at].to_vec();
                self.start += at + 1;
                return Ok(Some(line));
            }
            // Only a partial line is left: keep it, drop what was read.
            self.pending.drain(..self.start);
            self.start = 0;
            if self.ended {
                return Ok((!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending)));
            }
            let Some(response) = self.response.as_mut() else {
                self.ended = true;
                continue;
            };
            match response.chunk().await.map_err(|e| transport(&e))? {
                Some(chunk) => {
                    if self.pending.len() + chunk.len() > MAX_LINE_BYTES && !chunk.contains(&b'\n')
                    {
                        return Err(ConnectorError::fatal(format!(
                            "a line of a bulk result is longer than {MAX_LINE_BYTES} bytes"
                        )));
                    }
                    self.pending.extend_from_slice(&chunk);
                }
                None => {
                    self.ended = true;
                    self.response = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lines(text: &str) -> Vec<Value> {
        parse_bulk_lines(text.as_bytes()).unwrap()
    }

    #[test]
    fn children_follow_their_parent_or_wait_for_it() {
        let out = lines(concat!(
            "{\"id\":\"gid://shopify/ProductVariant/9\",\"__parentId\":\"gid://shopify/Product/2\"}\n",
            "{\"id\":\"gid://shopify/Product/1\"}\n",
            "{\"id\":\"gid://shopify/ProductVariant/11\",\"__parentId\":\"gid://shopify/Product/1\"}\n",
            "{\"id\":\"gid://shopify/MediaImage/21\",\"__parentId\":\"gid://shopify/Product/1\"}\n",
            "\n",
            "{\"id\":\"gid://shopify/Product/2\"}\n",
            "{\"id\":\"gid://shopify/MediaImage/22\",\"__parentId\":\"gid://shopify/Product/2\"}",
        ));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["variants"]["nodes"].as_array().unwrap().len(), 1);
        assert_eq!(out[0]["media"]["nodes"].as_array().unwrap().len(), 1);
        assert_eq!(
            out[1]["variants"]["nodes"][0]["id"],
            "gid://shopify/ProductVariant/9"
        );
        assert_eq!(
            out[1]["media"]["nodes"][0]["id"],
            "gid://shopify/MediaImage/22"
        );
        assert!(out[1]["media"]["nodes"][0].get("__parentId").is_none());
    }

    #[test]
    fn a_child_after_its_parent_was_handed_out_is_an_error() {
        let text = concat!(
            "{\"id\":\"gid://shopify/Product/1\"}\n",
            "{\"id\":\"gid://shopify/Product/2\"}\n",
            "{\"id\":\"gid://shopify/ProductVariant/11\",\"__parentId\":\"gid://shopify/Product/1\"}\n",
        );
        let err = parse_bulk_lines(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("Product/1"), "{err}");
        assert!(parse_bulk_lines(b"{\"id\":1,\"__parentId\":2}\n").is_err());
        assert!(parse_bulk_lines(b"not json\n").is_err());
    }
}
