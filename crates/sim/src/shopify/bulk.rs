//! Bulk query operations (`reference/platforms.md` §1.6): `bulkOperationRunQuery` snapshots
//! the products its inner query selects into JSONL (children on their own lines with
//! `__parentId`), the job is RUNNING for `bulk_delay_ms` and then COMPLETED (or FAILED with a
//! `partialDataUrl`), one job at a time; the file is served by the simulator itself.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use graphql_parser::query::Selection;
use serde_json::{Map, Value, json};

use super::graphql::{self, Ctx, Fld, Sel};
use super::shop::{gid, iso, parse_gid, parse_query, product_matches};
use super::{ShopifySim, lock};

/// Every job the shop has run, and where the simulator is served.
#[derive(Debug, Default)]
pub(crate) struct BulkState {
    jobs: Vec<Job>,
    next_id: u64,
    pub(crate) base_url: Option<String>,
}

#[derive(Debug)]
struct Job {
    id: u64,
    query: String,
    started: Instant,
    created_at: i64,
    delay: Duration,
    lines: Vec<String>,
    roots: usize,
    fail: bool,
    expired: bool,
}

impl Job {
    fn status(&self) -> &'static str {
        if self.expired {
            "EXPIRED"
        } else if self.started.elapsed() < self.delay {
            "RUNNING"
        } else if self.fail {
            "FAILED"
        } else {
            "COMPLETED"
        }
    }

    fn node(&self, base: &str) -> Value {
        let status = self.status();
        let done = matches!(status, "COMPLETED" | "FAILED");
        let (url, partial) = match status {
            "COMPLETED" => (
                json!(format!("{base}/_sim/shopify/bulk/{}.jsonl", self.id)),
                Value::Null,
            ),
            "FAILED" => (
                Value::Null,
                json!(format!(
                    "{base}/_sim/shopify/bulk/{}-partial.jsonl",
                    self.id
                )),
            ),
            _ => (Value::Null, Value::Null),
        };
        let count = match status {
            "COMPLETED" => self.lines.len(),
            "FAILED" => self.lines.len() / 2,
            _ => 0,
        };
        let size: usize = self.lines.iter().map(|l| l.len() + 1).sum();
        json!({
            "__typename": "BulkOperation",
            "id": gid("BulkOperation", self.id),
            "status": status,
            "type": "QUERY",
            "query": self.query,
            "errorCode": if status == "FAILED" { json!("INTERNAL_SERVER_ERROR") } else { Value::Null },
            "objectCount": count.to_string(),
            "rootObjectCount": if status == "COMPLETED" { self.roots.to_string() } else { "0".to_owned() },
            "fileSize": if status == "COMPLETED" { json!(size.to_string()) } else { Value::Null },
            "url": url,
            "partialDataUrl": partial,
            "createdAt": iso(self.created_at),
            "completedAt": if done { json!(iso(self.created_at)) } else { Value::Null },
        })
    }
}

fn user_error(message: &str, code: &str) -> Value {
    json!({ "bulkOperation": null,
        "userErrors": [{ "field": ["query"], "message": message, "code": code }] })
}

/// `bulkOperationRunQuery(query:)`.
pub(super) fn run(sim: &ShopifySim, args: &Map<String, Value>) -> Value {
    let Some(query) = args.get("query").and_then(Value::as_str) else {
        return user_error("Query is required", "INVALID");
    };
    let mut state = lock(&sim.bulk);
    if let Some(running) = state
        .jobs
        .iter()
        .find(|j| matches!(j.status(), "CREATED" | "RUNNING"))
    {
        let message = format!(
            "A bulk query operation for this app and shop is already in progress: {}.",
            gid("BulkOperation", running.id)
        );
        return user_error(&message, "OPERATION_IN_PROGRESS");
    }
    let (lines, roots) = match snapshot(sim, query) {
        Ok(r) => r,
        Err(e) => return user_error(&e, "INVALID"),
    };
    state.next_id += 1;
    let job = Job {
        id: state.next_id,
        query: query.to_owned(),
        started: Instant::now(),
        created_at: super::admin::now(),
        delay: Duration::from_millis(sim.bulk_delay_ms.load(Ordering::Relaxed)),
        lines,
        roots,
        fail: sim.bulk_fail.load(Ordering::Relaxed),
        expired: false,
    };
    let base = state.base_url.clone().unwrap_or_default();
    let node = job.node(&base);
    state.jobs.push(job);
    json!({ "bulkOperation": node, "userErrors": [] })
}

/// `currentBulkOperation(type: QUERY)`: the latest job, or null.
pub(super) fn current(sim: &ShopifySim) -> Value {
    let state = lock(&sim.bulk);
    let base = state.base_url.clone().unwrap_or_default();
    state.jobs.last().map_or(Value::Null, |j| j.node(&base))
}

/// `node(id:)` for a `gid://shopify/BulkOperation/…`.
pub(super) fn node(sim: &ShopifySim, id: &str) -> Value {
    let Some(id) = parse_gid("BulkOperation", id) else {
        return Value::Null;
    };
    let state = lock(&sim.bulk);
    let base = state.base_url.clone().unwrap_or_default();
    state
        .jobs
        .iter()
        .find(|j| j.id == id)
        .map_or(Value::Null, |j| j.node(&base))
}

/// Marks every job EXPIRED (its files are gone).
pub(super) fn expire_all(sim: &ShopifySim) {
    for j in &mut lock(&sim.bulk).jobs {
        j.expired = true;
    }
}

/// The selection of one node of a connection field (`nodes { … }` or `edges { node { … } }`).
fn node_selection<'s, 'a>(f: &'s Fld<'a>) -> Option<&'s Sel<'a>> {
    for item in &f.selection_set.items {
        if let Selection::Field(sub) = item {
            match sub.name.as_str() {
                "nodes" => return Some(&sub.selection_set),
                "edges" => {
                    for e in &sub.selection_set.items {
                        if let Selection::Field(n) = e
                            && n.name == "node"
                        {
                            return Some(&n.selection_set);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// Runs the inner query over the shop: the JSONL lines and the number of root objects.
fn snapshot(sim: &ShopifySim, query: &str) -> Result<(Vec<String>, usize), String> {
    let doc = graphql_parser::query::parse_query::<String>(query)
        .map_err(|e| format!("Invalid bulk query: {e}"))?;
    let op = graphql::operation(&doc, None, Map::new())?;
    if op.is_mutation {
        return Err("Bulk queries cannot contain mutations".to_owned());
    }
    let mut ctx: Ctx<'_> = op.ctx;
    let roots: Vec<&Fld<'_>> = op
        .selection
        .items
        .iter()
        .filter_map(|i| match i {
            Selection::Field(f) => Some(f),
            _ => None,
        })
        .collect();
    let [root] = roots[..] else {
        return Err("Bulk queries must have exactly one top-level field".to_owned());
    };
    if root.name != "products" {
        return Err(format!(
            "Bulk queries over '{}' are not supported by the simulator (only products)",
            root.name
        ));
    }
    let sel = node_selection(root)
        .ok_or_else(|| "Bulk queries must contain at least one connection.".to_owned())?;
    let args = ctx.args(root);
    let terms = parse_query(args.get("query").and_then(Value::as_str).unwrap_or(""));
    // The product's own fields, and its child connections.
    let mut own = sel.clone();
    let mut children: Vec<&Fld<'_>> = Vec::new();
    own.items
        .retain(|i| !matches!(i, Selection::Field(f) if node_selection(f).is_some()));
    for i in &sel.items {
        if let Selection::Field(f) = i
            && node_selection(f).is_some()
        {
            children.push(f);
        }
    }
    if children.len() > 4 {
        return Err("Bulk queries cannot contain more than 5 connections.".to_owned());
    }
    let shop = sim.lock();
    let mut products: Vec<_> = shop
        .searchable()
        .into_iter()
        .filter(|p| product_matches(p, &terms))
        .collect();
    products.sort_by_key(|p| p.id);
    let mut lines = Vec::new();
    for p in &products {
        let node = p.node(&shop.base_url);
        let parent = gid("Product", p.id);
        lines.push(ctx.project(&node, &own)?.to_string());
        for c in &children {
            let Some(child_sel) = node_selection(c) else {
                continue;
            };
            let items = node[c.name.as_str()]["__connection"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for item in &items {
                let mut line = ctx.project(item, child_sel)?;
                if let Value::Object(m) = &mut line {
                    m.insert("__parentId".to_owned(), Value::String(parent.clone()));
                }
                lines.push(line.to_string());
            }
        }
    }
    Ok((lines, products.len()))
}

pub(super) fn routes(sim: ShopifySim) -> Router {
    Router::new()
        .route("/_sim/shopify/bulk/{file}", get(download))
        .with_state(sim)
}

/// `GET /_sim/shopify/bulk/{id}.jsonl` (or `{id}-partial.jsonl` of a FAILED job).
async fn download(State(sim): State<ShopifySim>, Path(file): Path<String>) -> Response {
    let Some(stem) = file.strip_suffix(".jsonl") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (id, partial) = match stem.strip_suffix("-partial") {
        Some(id) => (id, true),
        None => (stem, false),
    };
    let Ok(id) = id.parse::<u64>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let state = lock(&sim.bulk);
    let Some(job) = state.jobs.iter().find(|j| j.id == id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let lines = match (job.status(), partial) {
        ("COMPLETED", false) => &job.lines[..],
        ("FAILED", true) => &job.lines[..job.lines.len() / 2],
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let mut body = String::new();
    for l in lines {
        body.push_str(l);
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/jsonl")], body).into_response()
}
