//! Issues: problems on one record of one connection, in the platform's own words. An open
//! issue for the same (connection, record, code) is bumped (count, last seen), not duplicated.

use std::collections::BTreeMap;

use tidemark_core::{
    AccountId, ConnectionId, ExternalId, Issue, IssueId, PlatformKind, RecordRef, Severity,
    Timestamp,
};

use super::{from_json, opt_ts, to_json, to_u32, ts};
use crate::error::db_err;
use crate::repo::pending::{record_from_parts, record_parts};
use crate::sql::{Sql, query_builder};
use crate::{Db, IssueFilter, NewIssue, StoreError, repository, with_db};

const COLUMNS: &str = "i.id, i.connection_id, i.record_kind, i.record_id, i.external_id, \
                       i.severity, i.code, i.message, i.field, i.payload, i.first_seen, \
                       i.last_seen, i.count, i.resolved_at";

#[derive(sqlx::FromRow)]
struct IssueRow {
    id: i64,
    connection_id: i64,
    record_kind: String,
    record_id: i64,
    external_id: Option<String>,
    severity: String,
    code: String,
    message: String,
    field: Option<String>,
    payload: String,
    first_seen: i64,
    last_seen: i64,
    count: i64,
    resolved_at: Option<i64>,
}

impl IssueRow {
    fn into_issue(self) -> Result<Issue, StoreError> {
        let row = format!("id {}", self.id);
        let record = if self.record_kind.is_empty() {
            None
        } else {
            Some(
                record_from_parts(&self.record_kind, self.record_id).ok_or_else(|| {
                    StoreError::corrupt(
                        "issues",
                        &row,
                        format!("unknown record kind {:?}", self.record_kind),
                    )
                })?,
            )
        };
        let severity = Severity::parse(&self.severity).ok_or_else(|| {
            StoreError::corrupt(
                "issues",
                &row,
                format!("unknown severity {:?}", self.severity),
            )
        })?;
        Ok(Issue {
            id: IssueId(self.id),
            connection: ConnectionId(self.connection_id),
            record,
            external_id: self.external_id.map(ExternalId),
            severity,
            code: self.code,
            message: self.message,
            field: self.field,
            payload: from_json("issues", &row, "payload", &self.payload)?,
            first_seen: ts(self.first_seen),
            last_seen: ts(self.last_seen),
            count: to_u32("issues", &row, self.count)?,
            resolved_at: opt_ts(self.resolved_at),
        })
    }
}

impl Db<'_> {
    async fn issues_where(&mut self, sql: Sql) -> Result<Vec<Issue>, StoreError> {
        let rows: Vec<IssueRow> = with_db!(self, |c| {
            let mut qb = query_builder!(sql);
            qb.build_query_as().fetch_all(&mut *c).await
        })
        .map_err(db_err("issues", "get"))?;
        rows.into_iter().map(IssueRow::into_issue).collect()
    }

    /// Raises an issue, or bumps the open one with the same (connection, record, code):
    /// count + 1, last seen, and the latest severity, message, field and payload. Issues
    /// about no canonical record are told apart by their external id.
    pub(crate) async fn raise_issue(
        &mut self,
        issue: &NewIssue,
        now: Timestamp,
    ) -> Result<Issue, StoreError> {
        let (kind, record_id) = issue.record.map_or(("", 0), record_parts);
        let subject = match (&issue.record, &issue.external_id) {
            (None, Some(external_id)) => external_id.as_str(),
            _ => "",
        };
        let payload = to_json("raise issue", &issue.payload)?;
        let id: i64 = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO issues (connection_id, record_kind, record_id, external_id, severity, \
             code, message, field, payload, first_seen, last_seen, count, subject) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 1, $11) \
             ON CONFLICT (connection_id, record_kind, record_id, subject, code) \
             WHERE resolved_at IS NULL \
             DO UPDATE SET count = issues.count + 1, last_seen = excluded.last_seen, \
             severity = excluded.severity, message = excluded.message, field = excluded.field, \
             payload = excluded.payload, \
             external_id = COALESCE(excluded.external_id, issues.external_id) \
             RETURNING id"
        )
        .bind(issue.connection.0)
        .bind(kind)
        .bind(record_id)
        .bind(issue.external_id.as_ref().map(ExternalId::as_str))
        .bind(issue.severity.as_str())
        .bind(&issue.code)
        .bind(&issue.message)
        .bind(issue.field.as_deref())
        .bind(&payload)
        .bind(now.0)
        .bind(subject)
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("issues", "raise"))?;
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM issues i WHERE i.id = ")
            .bind_i64(id);
        self.issues_where(sql)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::not_found("issue", id))
    }

    pub(crate) async fn get_issue(
        &mut self,
        account: AccountId,
        id: IssueId,
    ) -> Result<Option<Issue>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(" FROM issues i JOIN connections c ON c.id = i.connection_id WHERE i.id = ")
            .bind_i64(id.0)
            .push(" AND c.account_id = ")
            .bind_i64(account.0);
        Ok(self.issues_where(sql).await?.into_iter().next())
    }

    /// Resolves one open issue of the account.
    pub(crate) async fn resolve_issue(
        &mut self,
        account: AccountId,
        id: IssueId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "UPDATE issues SET resolved_at = $3 WHERE id = $1 AND resolved_at IS NULL \
             AND connection_id IN (SELECT id FROM connections WHERE account_id = $2)"
        )
        .bind(id.0)
        .bind(account.0)
        .bind(now.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("issues", "resolve"))?;
        Ok(done > 0)
    }

    /// Resolves the open issues of a record on a connection (e.g. after it was sent), all of
    /// them or only those with `code`; returns how many.
    pub(crate) async fn resolve_record_issues(
        &mut self,
        connection: ConnectionId,
        record: RecordRef,
        code: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let (kind, id) = record_parts(record);
        with_db!(self, |c| sqlx::query(
            "UPDATE issues SET resolved_at = $4 WHERE connection_id = $1 AND record_kind = $2 \
             AND record_id = $3 AND resolved_at IS NULL AND ($5 IS NULL OR code = $5)"
        )
        .bind(connection.0)
        .bind(kind)
        .bind(id)
        .bind(now.0)
        .bind(code)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("issues", "resolve record"))
    }

    /// Issues of the account, newest first.
    pub(crate) async fn list_issues(
        &mut self,
        account: AccountId,
        filter: &IssueFilter,
    ) -> Result<Vec<Issue>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(COLUMNS)
            .push(
                " FROM issues i JOIN connections c ON c.id = i.connection_id WHERE c.account_id = ",
            )
            .bind_i64(account.0);
        if let Some(connection) = filter.connection {
            sql.push(" AND i.connection_id = ").bind_i64(connection.0);
        }
        if let Some(record) = filter.record {
            let (kind, id) = record_parts(record);
            sql.push(" AND i.record_kind = ")
                .bind_text(kind)
                .push(" AND i.record_id = ")
                .bind_i64(id);
        }
        if filter.open_only {
            sql.push(" AND i.resolved_at IS NULL");
        }
        if let Some(before) = filter.before {
            sql.push(" AND i.id < ").bind_i64(before.0);
        }
        let limit = if filter.limit <= 0 { 100 } else { filter.limit };
        sql.push(" ORDER BY i.id DESC LIMIT ")
            .bind_i64(super::clamp_limit(limit));
        self.issues_where(sql).await
    }

    /// Open issues per connection of the account (connections without any are absent).
    pub(crate) async fn open_issue_counts(
        &mut self,
        account: AccountId,
    ) -> Result<BTreeMap<ConnectionId, i64>, StoreError> {
        let rows: Vec<(i64, i64)> = with_db!(self, |c| sqlx::query_as(
            "SELECT i.connection_id, COUNT(*) FROM issues i JOIN connections c \
             ON c.id = i.connection_id WHERE c.account_id = $1 AND i.resolved_at IS NULL \
             GROUP BY i.connection_id"
        )
        .bind(account.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("issues", "open counts"))?;
        Ok(rows
            .into_iter()
            .map(|(connection, n)| (ConnectionId(connection), n))
            .collect())
    }

    /// Open issues of every account by platform and severity (the operator's metrics).
    pub(crate) async fn open_issue_counts_by_platform(
        &mut self,
    ) -> Result<Vec<(PlatformKind, Severity, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_db!(self, |c| sqlx::query_as(
            "SELECT c.platform, i.severity, COUNT(*) FROM issues i JOIN connections c \
             ON c.id = i.connection_id WHERE i.resolved_at IS NULL \
             GROUP BY c.platform, i.severity ORDER BY c.platform, i.severity"
        )
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("issues", "counts by platform"))?;
        rows.into_iter()
            .map(|(platform, severity, n)| {
                let row = format!("{platform}/{severity}");
                let platform = PlatformKind::parse(&platform)
                    .ok_or_else(|| StoreError::corrupt("issues", &row, "unknown platform"))?;
                let severity = Severity::parse(&severity)
                    .ok_or_else(|| StoreError::corrupt("issues", &row, "unknown severity"))?;
                Ok((platform, severity, n))
            })
            .collect()
    }
}

repository! {
    /// Raises an issue or bumps the open one with the same (connection, record, code).
    write fn raise_issue(issue: &NewIssue, now: Timestamp) -> Issue;
    read fn get_issue(account: AccountId, id: IssueId) -> Option<Issue>;
    write fn resolve_issue(account: AccountId, id: IssueId, now: Timestamp) -> bool;
    write fn resolve_record_issues(connection: ConnectionId, record: RecordRef, code: Option<&str>, now: Timestamp) -> u64;
    read fn list_issues(account: AccountId, filter: &IssueFilter) -> Vec<Issue>;
    read fn open_issue_counts(account: AccountId) -> BTreeMap<ConnectionId, i64>;
    /// Operator-only (metrics): open issues of every account by platform and severity.
    read fn open_issue_counts_by_platform() -> Vec<(PlatformKind, Severity, i64)>;
}
