//! A small GraphQL executor over JSON nodes: static (requested) cost, selection of requested
//! fields (aliases, fragments, inline fragments on `__typename`), connections with
//! `first`/`after`, and the actual cost of what was returned.
//!
//! Nodes are `serde_json` objects carrying `__typename`; a connection is an object
//! `{"__connection": [node, …]}` paged here with offset cursors, or a ready-made page built by
//! the root resolver ([`Page`]) with its own keyset cursors.

use std::collections::HashMap;

use base64::Engine as _;
use graphql_parser::query::{
    Definition, Document, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
    TypeCondition, Value as GqlValue,
};
use serde_json::{Map, Value, json};

pub type Doc<'a> = Document<'a, String>;
pub type Sel<'a> = SelectionSet<'a, String>;
pub type Fld<'a> = Field<'a, String>;

/// The largest `first` of any connection.
pub const MAX_FIRST: u64 = 250;
/// The largest requested cost of one query.
pub const MAX_COST: u64 = 1000;
/// Requested cost of one mutation root field.
pub const MUTATION_COST: u64 = 10;

/// One operation of a document, ready to run.
pub struct Operation<'a> {
    pub is_mutation: bool,
    pub selection: &'a Sel<'a>,
    pub ctx: Ctx<'a>,
}

/// Variables, fragments and the running actual cost.
pub struct Ctx<'a> {
    pub vars: Map<String, Value>,
    fragments: HashMap<&'a str, &'a FragmentDefinition<'a, String>>,
    pub actual: u64,
}

/// Picks the (only or named) operation of `doc`.
pub fn operation<'a>(
    doc: &'a Doc<'a>,
    name: Option<&str>,
    vars: Map<String, Value>,
) -> Result<Operation<'a>, String> {
    let mut fragments = HashMap::new();
    let mut ops = Vec::new();
    for def in &doc.definitions {
        match def {
            Definition::Fragment(f) => {
                fragments.insert(f.name.as_str(), f);
            }
            Definition::Operation(op) => ops.push(op),
        }
    }
    let pick = |op: &&OperationDefinition<'a, String>| -> bool {
        let op_name = match op {
            OperationDefinition::Query(q) => q.name.as_deref(),
            OperationDefinition::Mutation(m) => m.name.as_deref(),
            _ => None,
        };
        name.is_none() || op_name == name
    };
    let op = ops
        .into_iter()
        .find(pick)
        .ok_or_else(|| "No operation named in the document".to_owned())?;
    let ctx = Ctx {
        vars,
        fragments,
        actual: 0,
    };
    let (is_mutation, selection) = match op {
        OperationDefinition::SelectionSet(s) => (false, s),
        OperationDefinition::Query(q) => (false, &q.selection_set),
        OperationDefinition::Mutation(m) => (true, &m.selection_set),
        OperationDefinition::Subscription(_) => {
            return Err("Subscriptions are not supported".to_owned());
        }
    };
    Ok(Operation {
        is_mutation,
        selection,
        ctx,
    })
}

impl<'a> Ctx<'a> {
    /// The arguments of `field` as JSON, variables substituted.
    pub fn args(&self, field: &Fld<'_>) -> Map<String, Value> {
        field
            .arguments
            .iter()
            .map(|(k, v)| (k.clone(), self.value(v)))
            .collect()
    }

    fn value(&self, v: &GqlValue<'_, String>) -> Value {
        match v {
            GqlValue::Variable(name) => self.vars.get(name).cloned().unwrap_or(Value::Null),
            GqlValue::Int(n) => n.as_i64().map_or(Value::Null, Value::from),
            GqlValue::Float(f) => json!(f),
            GqlValue::String(s) | GqlValue::Enum(s) => Value::String(s.clone()),
            GqlValue::Boolean(b) => Value::Bool(*b),
            GqlValue::Null => Value::Null,
            GqlValue::List(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            GqlValue::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.value(v)))
                    .collect(),
            ),
        }
    }

    /// The fields of a selection, fragments flattened (type conditions ignored: used for
    /// costs, where every possible branch is counted).
    fn fields<'s>(&self, sel: &'s Sel<'a>, out: &mut Vec<&'s Fld<'a>>)
    where
        'a: 's,
    {
        for item in &sel.items {
            match item {
                Selection::Field(f) => out.push(f),
                Selection::InlineFragment(i) => self.fields(&i.selection_set, out),
                Selection::FragmentSpread(s) => {
                    if let Some(&f) = self.fragments.get(s.fragment_name.as_str()) {
                        let f: &'a FragmentDefinition<'a, String> = f;
                        self.fields(&f.selection_set, out);
                    }
                }
            }
        }
    }

    /// The requested (static, worst-case) cost of a selection: objects 1, connections
    /// `2 + first × per-node cost`, scalars and `pageInfo` 0. Errors on `first` above 250.
    pub fn requested_cost(&self, sel: &Sel<'a>) -> Result<u64, String> {
        let mut fields = Vec::new();
        self.fields(sel, &mut fields);
        let mut total = 0u64;
        for f in fields {
            if f.selection_set.items.is_empty() || f.name == "pageInfo" {
                continue;
            }
            let args = self.args(f);
            let first = args
                .get("first")
                .or_else(|| args.get("last"))
                .and_then(Value::as_u64);
            if let Some(first) = first {
                if first > MAX_FIRST {
                    return Err(format!(
                        "The `first` argument of `{}` must be between 0 and 250 (was {first})",
                        f.name
                    ));
                }
                let per_node = self.node_cost(&f.selection_set)?;
                total = total.saturating_add(2 + first.saturating_mul(per_node));
            } else {
                total = total.saturating_add(1 + self.requested_cost(&f.selection_set)?);
            }
        }
        Ok(total)
    }

    /// Per-node cost inside a connection: `nodes { … }` or `edges { node { … } }`.
    fn node_cost(&self, sel: &Sel<'a>) -> Result<u64, String> {
        let mut fields = Vec::new();
        self.fields(sel, &mut fields);
        let mut cost = 0;
        for f in fields {
            match f.name.as_str() {
                "nodes" | "node" => cost = cost.max(1 + self.requested_cost(&f.selection_set)?),
                "edges" => cost = cost.max(self.node_cost(&f.selection_set)?),
                _ => {}
            }
        }
        Ok(cost)
    }

    /// Projects `value` (a node) onto `sel`, counting actual cost.
    pub fn project(&mut self, value: &Value, sel: &Sel<'a>) -> Result<Value, String> {
        let mut out = Map::new();
        self.project_into(value, sel, &mut out)?;
        Ok(Value::Object(out))
    }

    fn project_into(
        &mut self,
        value: &Value,
        sel: &Sel<'a>,
        out: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let typename = value.get("__typename").and_then(Value::as_str);
        for item in &sel.items {
            match item {
                Selection::Field(f) => {
                    let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
                    let v = self.resolve(value, f)?;
                    out.insert(key, v);
                }
                Selection::InlineFragment(i) => {
                    let applies = match &i.type_condition {
                        None => true,
                        Some(TypeCondition::On(t)) => typename == Some(t.as_str()),
                    };
                    if applies {
                        self.project_into(value, &i.selection_set, out)?;
                    }
                }
                Selection::FragmentSpread(s) => {
                    let fragment = *self
                        .fragments
                        .get(s.fragment_name.as_str())
                        .ok_or_else(|| format!("Fragment {} is not defined", s.fragment_name))?;
                    let TypeCondition::On(t) = &fragment.type_condition;
                    if typename.is_none() || typename == Some(t.as_str()) {
                        self.project_into(value, &fragment.selection_set, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn resolve(&mut self, parent: &Value, f: &Fld<'a>) -> Result<Value, String> {
        let raw = parent.get(f.name.as_str()).unwrap_or(&Value::Null);
        if let Some(items) = raw.get("__connection").and_then(Value::as_array) {
            let args = self.args(f);
            let after = args
                .get("after")
                .and_then(Value::as_str)
                .and_then(decode_offset);
            let start = after.map_or(0, |o| o + 1);
            let page: Vec<(String, &Value)> = items
                .iter()
                .enumerate()
                .skip(start)
                .map(|(i, v)| (offset_cursor(i), v))
                .collect();
            return self.connection(page, f);
        }
        if let Some(page) = raw.get("__page") {
            // A root resolver's page: ready-made cursors, already past `after`.
            let items = page["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| (p["cursor"].as_str().unwrap_or("").to_owned(), &p["node"]))
                        .collect()
                })
                .unwrap_or_default();
            return self.connection(items, f);
        }
        match raw {
            Value::Array(items) if !f.selection_set.items.is_empty() => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if item.is_null() {
                        out.push(Value::Null);
                    } else {
                        self.actual += 1;
                        out.push(self.project(item, &f.selection_set)?);
                    }
                }
                Ok(Value::Array(out))
            }
            Value::Object(_) if !f.selection_set.items.is_empty() => {
                if f.name != "pageInfo" {
                    self.actual += 1;
                }
                self.project(raw, &f.selection_set)
            }
            other => Ok(other.clone()),
        }
    }

    /// Pages `items` (all past `after`) by `first`.
    fn connection(&mut self, items: Vec<(String, &Value)>, f: &Fld<'a>) -> Result<Value, String> {
        let args = self.args(f);
        let first = args
            .get("first")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("`{}` needs a `first` argument", f.name))?;
        let first = usize::try_from(first.min(MAX_FIRST)).unwrap_or(250);
        let has_next = items.len() > first;
        let page: Vec<(String, &Value)> = items.into_iter().take(first).collect();
        self.actual += 2;
        let page_info = json!({
            "hasNextPage": has_next,
            "hasPreviousPage": false,
            "endCursor": page.last().map(|(c, _)| c.clone()),
            "startCursor": page.first().map(|(c, _)| c.clone()),
        });
        let mut out = Map::new();
        let mut fields = Vec::new();
        self.fields(&f.selection_set, &mut fields);
        for sub in fields {
            let key = sub.alias.clone().unwrap_or_else(|| sub.name.clone());
            let v = match sub.name.as_str() {
                "pageInfo" => self.project(&page_info, &sub.selection_set)?,
                "nodes" => {
                    let mut nodes = Vec::with_capacity(page.len());
                    for (_, node) in &page {
                        self.actual += 1;
                        nodes.push(self.project(node, &sub.selection_set)?);
                    }
                    Value::Array(nodes)
                }
                "edges" => {
                    let mut edges = Vec::with_capacity(page.len());
                    for (cursor, node) in &page {
                        self.actual += 1;
                        let edge = obj([("cursor", json!(cursor)), ("node", (*node).clone())]);
                        edges.push(self.project(&edge, &sub.selection_set)?);
                    }
                    Value::Array(edges)
                }
                _ => Value::Null,
            };
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// The cursor of position `i` of a nested connection.
pub fn offset_cursor(i: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\":{i}}}"))
}

fn decode_offset(cursor: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["offset"].as_u64().and_then(|o| usize::try_from(o).ok())
}

/// A ready-made page for a root connection (see [`Ctx::resolve`]).
pub fn page(items: Vec<(String, Value)>) -> Value {
    let items: Vec<Value> = items
        .into_iter()
        .map(|(cursor, node)| obj([("cursor", Value::String(cursor)), ("node", node)]))
        .collect();
    obj([("__page", obj([("items", Value::Array(items))]))])
}

/// A JSON object from owned values (`json!` would copy embedded `Value`s by serialising them).
pub fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}
