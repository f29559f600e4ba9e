//! Accounts and their API tokens (only the SHA-256 of a token is stored).

use rand::RngCore;
use sha2::{Digest, Sha256};
use tidemark_core::{AccountId, Timestamp};

use super::{opt_ts, ts};
use crate::error::db_err;
use crate::{Account, ApiToken, Db, NewApiToken, StoreError, repository, with_db};

/// How precisely a token's last use is kept.
const LAST_USE_RESOLUTION_MS: i64 = 60_000;

/// The prefix of every token tidemark issues, so that a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "tmk_";

fn token_hash(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    name: String,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    account_id: i64,
    name: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(row: TokenRow) -> Self {
        ApiToken {
            id: row.id,
            account: AccountId(row.account_id),
            name: row.name,
            created_at: ts(row.created_at),
            last_used_at: opt_ts(row.last_used_at),
        }
    }
}

impl Db<'_> {
    pub(crate) async fn create_account(
        &mut self,
        name: &str,
        now: Timestamp,
    ) -> Result<Account, StoreError> {
        let id: i64 = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO accounts (name, created_at) VALUES ($1, $2) RETURNING id"
        )
        .bind(name)
        .bind(now.0)
        .fetch_one(&mut *c)
        .await)
        .map_err(db_err("accounts", "create"))?;
        Ok(Account {
            id: AccountId(id),
            name: name.to_owned(),
            created_at: now,
        })
    }

    pub(crate) async fn get_account(
        &mut self,
        id: AccountId,
    ) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT id, name, created_at FROM accounts WHERE id = $1"
        )
        .bind(id.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("accounts", "get"))?;
        Ok(row.map(|row| Account {
            id: AccountId(row.id),
            name: row.name,
            created_at: ts(row.created_at),
        }))
    }

    /// The oldest account with this name (names are what an operator types at the command
    /// line; they are not unique).
    pub(crate) async fn account_named(
        &mut self,
        name: &str,
    ) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT id, name, created_at FROM accounts WHERE name = $1 ORDER BY id LIMIT 1"
        )
        .bind(name)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("accounts", "get by name"))?;
        Ok(row.map(|row| Account {
            id: AccountId(row.id),
            name: row.name,
            created_at: ts(row.created_at),
        }))
    }

    pub(crate) async fn create_api_token(
        &mut self,
        account: AccountId,
        name: &str,
        now: Timestamp,
    ) -> Result<NewApiToken, StoreError> {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let plaintext = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let hash = token_hash(&plaintext);
        // 256 random bits do not collide; should they, the answer is a Conflict without a
        // database error (a caller's PostgreSQL transaction stays usable).
        let id: Option<i64> = with_db!(self, |c| sqlx::query_scalar(
            "INSERT INTO api_tokens (account_id, name, token_hash, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (token_hash) DO NOTHING RETURNING id"
        )
        .bind(account.0)
        .bind(name)
        .bind(&hash)
        .bind(now.0)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("api_tokens", "create"))?;
        let id = id.ok_or_else(|| StoreError::Conflict {
            table: "api_tokens",
            kind: crate::ConflictKind::Unique {
                detail: "token collision; issue another".to_owned(),
            },
        })?;
        Ok(NewApiToken {
            token: ApiToken {
                id,
                account,
                name: name.to_owned(),
                created_at: now,
                last_used_at: None,
            },
            plaintext,
        })
    }

    /// Looks a presented token up by its hash and records its use.
    pub(crate) async fn authenticate_api_token(
        &mut self,
        plaintext: &str,
        now: Timestamp,
    ) -> Result<Option<ApiToken>, StoreError> {
        let hash = token_hash(plaintext);
        let row: Option<TokenRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT id, account_id, name, created_at, last_used_at FROM api_tokens \
             WHERE token_hash = $1"
        )
        .bind(&hash)
        .fetch_optional(&mut *c)
        .await)
        .map_err(db_err("api_tokens", "authenticate"))?;
        let Some(mut token) = row.map(ApiToken::from) else {
            return Ok(None);
        };
        // Every API request authenticates: the last use is written at most once a minute, so
        // a busy console does not turn each read into a write.
        if token
            .last_used_at
            .is_none_or(|last| now.0.saturating_sub(last.0) >= LAST_USE_RESOLUTION_MS)
        {
            with_db!(self, |c| sqlx::query(
                "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1"
            )
            .bind(token.id)
            .bind(now.0)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
            .map_err(db_err("api_tokens", "record use"))?;
            token.last_used_at = Some(now);
        }
        Ok(Some(token))
    }

    pub(crate) async fn list_api_tokens(
        &mut self,
        account: AccountId,
    ) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = with_db!(self, |c| sqlx::query_as(
            "SELECT id, account_id, name, created_at, last_used_at FROM api_tokens \
             WHERE account_id = $1 ORDER BY id"
        )
        .bind(account.0)
        .fetch_all(&mut *c)
        .await)
        .map_err(db_err("api_tokens", "list"))?;
        Ok(rows.into_iter().map(ApiToken::from).collect())
    }

    pub(crate) async fn revoke_api_token(
        &mut self,
        account: AccountId,
        id: i64,
    ) -> Result<bool, StoreError> {
        let done = with_db!(self, |c| sqlx::query(
            "DELETE FROM api_tokens WHERE id = $1 AND account_id = $2"
        )
        .bind(id)
        .bind(account.0)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(db_err("api_tokens", "revoke"))?;
        Ok(done > 0)
    }
}

repository! {
    /// Creates an account.
    write fn create_account(name: &str, now: Timestamp) -> Account;
    read fn get_account(id: AccountId) -> Option<Account>;
    /// The oldest account with this name, if any.
    read fn account_named(name: &str) -> Option<Account>;
    /// Creates an API token: the plaintext is returned once; only its SHA-256 is stored.
    write fn create_api_token(account: AccountId, name: &str, now: Timestamp) -> NewApiToken;
    /// The token presented as a bearer secret, if it exists; records `now` as its last use
    /// when the recorded one is a minute old or more.
    read fn authenticate_api_token(plaintext: &str, now: Timestamp) -> Option<ApiToken>;
    read fn list_api_tokens(account: AccountId) -> Vec<ApiToken>;
    write fn revoke_api_token(account: AccountId, id: i64) -> bool;
}
