//! Troubleshoot (DESIGN §4, "Issues and troubleshoot"): open issues grouped by platform, code
//! and normalised message, counted, with what usually fixes each group.
//!
//! The message is normalised so that the same problem on many records falls in one group:
//! quoted values, numbers and long identifiers become placeholders, case and white space are
//! folded. `"SKU 'AB-1' already exists (id 4412)"` and `"sku 'cd-9' already exists (id 17)"`
//! are one pattern, `sku "…" already exists (id #)`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{ConnectionId, Issue, PlatformKind, RecordRef, Severity, Timestamp};

/// How many records a group names as examples.
pub const SAMPLE_RECORDS: usize = 20;

/// Open issues that share a platform, a code and a normalised message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueGroup {
    pub platform: PlatformKind,
    pub code: String,
    /// The normalised message every issue of the group shares.
    pub pattern: String,
    /// One message of the group as the platform wrote it.
    pub example: String,
    /// The most severe of the group.
    pub severity: Severity,
    /// Open issues in the group.
    pub issues: u64,
    /// Times the platform said it, summed over the group's issues.
    pub occurrences: u64,
    pub connections: Vec<ConnectionId>,
    /// Up to [`SAMPLE_RECORDS`] records the group is about.
    pub records: Vec<RecordRef>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// What usually fixes it.
    pub advice: String,
}

/// Groups `issues` (the open ones; resolved issues are skipped) by (platform, code,
/// normalised message), largest group first. `platform_of` names each connection's platform;
/// issues of unknown connections are skipped.
pub fn group_issues(
    issues: &[Issue],
    platform_of: impl Fn(ConnectionId) -> Option<PlatformKind>,
) -> Vec<IssueGroup> {
    let mut groups: BTreeMap<(PlatformKind, String, String), IssueGroup> = BTreeMap::new();
    let mut connections: BTreeMap<(PlatformKind, String, String), BTreeSet<ConnectionId>> =
        BTreeMap::new();
    for issue in issues.iter().filter(|i| i.resolved_at.is_none()) {
        let Some(platform) = platform_of(issue.connection) else {
            continue;
        };
        let pattern = normalize_message(&issue.message);
        let key = (platform, issue.code.clone(), pattern.clone());
        connections
            .entry(key.clone())
            .or_default()
            .insert(issue.connection);
        let group = groups.entry(key).or_insert_with(|| IssueGroup {
            platform,
            code: issue.code.clone(),
            advice: advice(&issue.code, &pattern).to_owned(),
            pattern,
            example: issue.message.clone(),
            severity: issue.severity,
            issues: 0,
            occurrences: 0,
            connections: Vec::new(),
            records: Vec::new(),
            first_seen: issue.first_seen,
            last_seen: issue.last_seen,
        });
        group.issues += 1;
        group.occurrences += u64::from(issue.count.max(1));
        if severity_rank(issue.severity) > severity_rank(group.severity) {
            group.severity = issue.severity;
        }
        group.first_seen = group.first_seen.min(issue.first_seen);
        group.last_seen = group.last_seen.max(issue.last_seen);
        if let Some(record) = issue.record
            && group.records.len() < SAMPLE_RECORDS
            && !group.records.contains(&record)
        {
            group.records.push(record);
        }
    }
    let mut out: Vec<IssueGroup> = groups
        .into_iter()
        .map(|(key, mut group)| {
            group.connections = connections
                .remove(&key)
                .unwrap_or_default()
                .into_iter()
                .collect();
            group
        })
        .collect();
    out.sort_by(|a, b| {
        severity_rank(b.severity)
            .cmp(&severity_rank(a.severity))
            .then(b.issues.cmp(&a.issues))
            .then(b.last_seen.cmp(&a.last_seen))
    });
    out
}

fn severity_rank(severity: Severity) -> u8 {
    match severity {
        Severity::Alert => 2,
        Severity::Warning => 1,
        Severity::Notice => 0,
    }
}

/// The longest pattern kept; platform messages can embed whole payloads.
const MAX_PATTERN_CHARS: usize = 200;

/// The message with quoted values, numbers and identifiers replaced, lower-cased, white
/// space folded (see the module docs).
pub fn normalize_message(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len().min(MAX_PATTERN_CHARS));
    let mut i = 0;
    let push = |out: &mut String, text: &str| out.push_str(text);
    while i < chars.len() {
        if out.chars().count() >= MAX_PATTERN_CHARS {
            out.push('…');
            break;
        }
        let c = chars[i];
        let after_word = i > 0 && chars[i - 1].is_alphanumeric();
        match c {
            // An apostrophe inside a word ("can't") is not a quote.
            '\'' if after_word => {
                push(&mut out, "'");
                i += 1;
            }
            '"' | '\'' | '“' | '‘' | '«' | '`' => {
                let close = match c {
                    '“' => '”',
                    '‘' => '’',
                    '«' => '»',
                    other => other,
                };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    i += 1;
                }
                i += 1;
                push(&mut out, "\"…\"");
            }
            c if c.is_ascii_digit() => {
                // A number or an identifier that starts with one: `12.50`, `1,000`, `4412abc`;
                // punctuation only continues it when more of it follows.
                i += 1;
                while i < chars.len() {
                    let n = chars[i];
                    let continues = n.is_ascii_alphanumeric()
                        || (matches!(n, '.' | ',' | '-' | '_')
                            && chars.get(i + 1).is_some_and(|d| d.is_ascii_alphanumeric()));
                    if !continues {
                        break;
                    }
                    i += 1;
                }
                push(&mut out, "#");
            }
            c if c.is_whitespace() => {
                if !out.is_empty() && !out.ends_with(' ') {
                    push(&mut out, " ");
                }
                i += 1;
            }
            c => {
                let lower: String = c.to_lowercase().collect();
                push(&mut out, &lower);
                i += 1;
            }
        }
    }
    out.trim().to_owned()
}

/// What usually fixes a group, by its code and pattern.
pub fn advice(code: &str, pattern: &str) -> &'static str {
    let code = code.to_ascii_lowercase();
    let has = |needle: &str| code.contains(needle) || pattern.contains(needle);
    if has("unauthorized") || has("invalid_token") || has("access denied") || has("forbidden") {
        "The platform no longer accepts this connection's credentials: re-authenticate it in \
         Settings, then press Send."
    } else if code == "mass_delete_guard" {
        "A full scan would have removed many products, so nothing was deleted. Check the \
         platform (an empty or filtered catalogue, another shop), then run a full fetch again."
    } else if has("sku")
        && (has("duplicate") || has("taken") || has("exist") || has("unique") || has("in use"))
    {
        "Two products share a SKU on the platform. Give each a unique SKU there (or delete the \
         stray copy on the platform), then send again."
    } else if has("currency") || has("conversion") {
        "The shop prices in another currency: set the connection's currency and conversion \
         rate in Settings so prices are converted, then send again."
    } else if code == "cannot_plan" {
        "The record cannot be translated for this platform, most often a price the margin \
         cannot carry or a missing conversion rate: check the connection's price settings."
    } else if has("price") {
        "The platform refuses the price (zero, negative or outside its limits): fix it on the \
         source platform, or adjust the margin and rounding in Settings."
    } else if has("category") {
        "The platform needs a category it knows: set a category mapping or a default category \
         in Settings."
    } else if has("barcode") || has("gtin") || has("ean") || has("upc") {
        "The barcode is not valid (spreadsheets often turn barcodes into numbers like \
         3.65E+11): correct it on the source platform."
    } else if has("image") || has("picture") {
        "The platform cannot fetch or accept an image: check that its URL is public and the \
         file is a JPEG, PNG or WebP of a size the platform takes."
    } else if code == "stock_uncertain" {
        "A stock write's answer was lost; tidemark reads the product back instead of writing \
         twice. Press Fetch to confirm the quantity."
    } else if code == "unreadable_snapshot" {
        "Stored data of this connection is outdated or damaged: run Stats → Maintenance → \
         Integrity fix."
    } else if code == "unreadable_record" || code == "cannot_absorb" {
        "The platform sent a record tidemark cannot read, so it was skipped: check the record \
         on the platform; the next fetch reads it again."
    } else if has("throttl") || has("rate limit") || has("too many") {
        "The platform is limiting requests; tidemark waits and retries by itself. Nothing to do \
         unless this persists."
    } else if code == "write_failed" || has("timeout") || has("unavailable") {
        "Writes to the platform keep failing: check the platform's status page; tidemark \
         retries with backoff, and Send tries again at once."
    } else {
        "Open an affected record to see the platform's full answer; fix the value it names on \
         the source platform, then send again."
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IssueId, ProductId};

    fn issue(id: i64, connection: i64, code: &str, message: &str, record: i64) -> Issue {
        Issue {
            id: IssueId(id),
            connection: ConnectionId(connection),
            record: Some(RecordRef::Product(ProductId(record))),
            external_id: None,
            severity: Severity::Warning,
            code: code.into(),
            message: message.into(),
            field: None,
            payload: serde_json::Value::Null,
            first_seen: Timestamp(id * 10),
            last_seen: Timestamp(id * 10 + 5),
            count: 1,
            resolved_at: None,
        }
    }

    #[test]
    fn messages_differing_only_in_values_share_a_pattern() {
        let a = normalize_message("SKU 'AB-1' already exists (id 4412)");
        let b = normalize_message("sku  \"cd-9\" already   exists (id 17)");
        assert_eq!(a, b);
        assert_eq!(a, "sku \"…\" already exists (id #)");
        assert_eq!(
            normalize_message("Price 12.50 is below the minimum of 1,000."),
            "price # is below the minimum of #."
        );
        assert_eq!(normalize_message("can't read item"), "can't read item");
        assert_ne!(
            normalize_message("price is invalid"),
            normalize_message("title is invalid")
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "word ".repeat(500);
        assert!(normalize_message(&long).chars().count() <= MAX_PATTERN_CHARS + 1);
    }

    #[test]
    fn issues_group_by_platform_code_and_pattern_with_counts_and_advice() {
        let issues = vec![
            issue(1, 1, "product_invalid_sku", "SKU 'A' already exists", 1),
            issue(2, 1, "product_invalid_sku", "SKU 'B' already exists", 2),
            issue(3, 2, "product_invalid_sku", "SKU 'C' already exists", 3),
            issue(4, 3, "product_invalid_sku", "SKU 'D' already exists", 4),
            issue(5, 1, "item.price.invalid", "Price 0 is invalid", 5),
        ];
        let platform = |c: ConnectionId| match c.0 {
            1 | 2 => Some(PlatformKind::Woocommerce),
            3 => Some(PlatformKind::Shopify),
            _ => None,
        };
        let groups = group_issues(&issues, platform);
        assert_eq!(groups.len(), 3);
        let woo = &groups[0];
        assert_eq!(woo.platform, PlatformKind::Woocommerce);
        assert_eq!(woo.issues, 3);
        assert_eq!(woo.connections, vec![ConnectionId(1), ConnectionId(2)]);
        assert_eq!(woo.records.len(), 3);
        assert_eq!(woo.first_seen, Timestamp(10));
        assert_eq!(woo.last_seen, Timestamp(35));
        assert!(woo.advice.contains("unique SKU"), "{}", woo.advice);
        let price = groups.iter().find(|g| g.code == "item.price.invalid");
        assert!(price.is_some_and(|g| g.advice.contains("price")));
    }

    #[test]
    fn resolved_issues_and_unknown_connections_are_left_out() {
        let mut resolved = issue(1, 1, "x", "gone", 1);
        resolved.resolved_at = Some(Timestamp(99));
        let groups = group_issues(
            &[resolved, issue(2, 9, "x", "unknown connection", 2)],
            |c| (c.0 == 1).then_some(PlatformKind::Shopify),
        );
        assert!(groups.is_empty());
    }
}
