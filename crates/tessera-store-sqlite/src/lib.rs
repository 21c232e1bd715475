//! SQLite storage: Tessera's embedded default.
//!
//! Owns [`SqliteStore`], the implementation of every storage trait of `tessera-core` over one
//! SQLite file in WAL mode with `synchronous = FULL` (a row is on disk before a write returns).
//! Opaque tokens are written through a group-commit writer: concurrent inserts are gathered
//! into one transaction, so one fsync covers many tokens while each caller still waits for its
//! own row to be durable. Several processes (the server and the management CLI) may open the
//! same file; they meet through SQLite's locking and a busy timeout.

mod rows;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use tessera_core::model::{Change, ChangeKind, ClientRecord, KeyRecord, PurgeReport, TokenRecord};
use tessera_core::opaque;
use tessera_core::secret::SecretHash;
use tessera_core::store::{
    ChangeFeed, ClientStore, KeyStore, Maintenance, ReplayStore, StoreError, TokenStore,
};

/// Most rows a purge deletes per statement, so that no lock is held long.
const PURGE_BATCH: i64 = 1000;
/// Most tokens one group commit writes.
const MAX_GROUP: usize = 512;
/// How long change-feed entries are kept: far longer than any node's poll interval.
const CHANGE_RETENTION_SECS: i64 = 3600;

fn backend(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return StoreError::Conflict;
        }
    }
    StoreError::Backend(Box::new(e))
}

struct InsertJob {
    token: TokenRecord,
    done: oneshot::Sender<Result<(), String>>,
}

/// Storage over one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: mpsc::Sender<InsertJob>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://PATH` URL and applies the
    /// migrations. Must be called inside a Tokio runtime (it starts the group-commit writer).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = opts_for_writer(url)?;
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        // The writer holds a connection of its own, so a batch costs one round trip to the
        // SQLite thread and no pool checkout.
        let writer_conn = opts_for_writer(url)?.connect().await.map_err(backend)?;
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(group_commit(writer_conn, rx));
        Ok(Self { pool, writer: tx })
    }

    /// Closes the pool, waiting for in-flight statements.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn opts_for_writer(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(backend)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // Reads from the OS page cache without a copy; grows only as the file does.
        .pragma("mmap_size", "268435456"))
}

/// Gathers concurrent token inserts into one statement each: a multi-row INSERT in autocommit
/// mode is one atomic, durable transaction.
async fn group_commit(mut conn: SqliteConnection, mut rx: mpsc::Receiver<InsertJob>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let result = insert_tokens(&mut conn, &batch)
            .await
            .map_err(|e| e.to_string());
        for job in batch {
            let _ = job.done.send(result.clone());
        }
    }
}

async fn insert_tokens(
    conn: &mut SqliteConnection,
    batch: &[InsertJob],
) -> Result<(), sqlx::Error> {
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO access_tokens (token_id, token_hash, jti, client_id, subject, scope, audience, \
         issued_at, expires_at, token_epoch, revoked_at) ",
    );
    qb.push_values(batch, |mut b, job| {
        let t = &job.token;
        b.push_bind(&t.token_id)
            .push_bind(t.token_hash.as_str())
            .push_bind(&t.jti)
            .push_bind(&t.client_id)
            .push_bind(&t.subject)
            .push_bind(&t.scope)
            .push_bind(t.audience.to_stored())
            .push_bind(t.issued_at)
            .push_bind(t.expires_at)
            .push_bind(t.token_epoch)
            .push_bind(t.revoked_at);
    });
    qb.build().execute(&mut *conn).await.map(|_| ())
}

async fn log_change(
    tx: &mut Transaction<'_, Sqlite>,
    kind: ChangeKind,
    key: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (kind, key, created_at) VALUES (?, ?, ?)")
        .bind(kind.as_str())
        .bind(key)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let insert = sqlx::query(
            "INSERT INTO clients (client_id, name, secret_hash, old_secret_hash, \
             old_secret_expires_at, grant_types, redirect_uris, scopes, audiences, public, \
             jwks, access_token_format, access_token_ttl, token_epoch, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.client_id)
        .bind(&c.name)
        .bind(c.secret_hash.as_ref().map(SecretHash::as_str))
        .bind(c.old_secret_hash.as_ref().map(SecretHash::as_str))
        .bind(c.old_secret_expires_at)
        .bind(c.grant_types.join(" "))
        .bind(c.redirect_uris.join(" "))
        .bind(c.scopes.to_string())
        .bind(c.audiences.join(" "))
        .bind(c.public)
        .bind(c.jwks.as_deref())
        .bind(c.access_token_format.as_str())
        .bind(c.access_token_ttl)
        .bind(c.token_epoch)
        .bind(c.created_at)
        .bind(c.created_at);
        self.logged(insert, ChangeKind::Client, &c.client_id, c.created_at)
            .await
            .map(|_| ())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM clients WHERE client_id = ?")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| rows::client(&r)).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM clients ORDER BY created_at, client_id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::client).collect()
    }

    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let delete = sqlx::query("DELETE FROM clients WHERE client_id = ?").bind(client_id);
        Ok(self
            .logged(delete, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn update_client(&self, c: &ClientRecord, now: i64) -> Result<bool, StoreError> {
        let update = sqlx::query(
            "UPDATE clients SET name = ?, grant_types = ?, redirect_uris = ?, scopes = ?, \
             audiences = ?, access_token_format = ?, access_token_ttl = ?, updated_at = ? \
             WHERE client_id = ?",
        )
        .bind(&c.name)
        .bind(c.grant_types.join(" "))
        .bind(c.redirect_uris.join(" "))
        .bind(c.scopes.to_string())
        .bind(c.audiences.join(" "))
        .bind(c.access_token_format.as_str())
        .bind(c.access_token_ttl)
        .bind(now)
        .bind(&c.client_id);
        Ok(self
            .logged(update, ChangeKind::Client, &c.client_id, now)
            .await?
            > 0)
    }

    async fn revoke_client_tokens(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let update = sqlx::query(
            "UPDATE clients SET token_epoch = token_epoch + 1, updated_at = ? WHERE client_id = ?",
        )
        .bind(now)
        .bind(client_id);
        Ok(self
            .logged(update, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn set_client_keys(
        &self,
        client_id: &str,
        jwks: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = sqlx::query("UPDATE clients SET jwks = ?, updated_at = ? WHERE client_id = ?")
            .bind(jwks)
            .bind(now)
            .bind(client_id);
        Ok(self
            .logged(update, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }

    async fn rotate_client_secret(
        &self,
        client_id: &str,
        new_hash: &SecretHash,
        keep_old_until: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let update = match keep_old_until {
            Some(until) => sqlx::query(
                "UPDATE clients SET old_secret_hash = secret_hash, old_secret_expires_at = ?, \
                 secret_hash = ?, updated_at = ? WHERE client_id = ?",
            )
            .bind(until),
            None => sqlx::query(
                "UPDATE clients SET old_secret_hash = NULL, old_secret_expires_at = NULL, \
                 secret_hash = ?, token_epoch = token_epoch + 1, updated_at = ? \
                 WHERE client_id = ?",
            ),
        }
        .bind(new_hash.as_str())
        .bind(now)
        .bind(client_id);
        Ok(self
            .logged(update, ChangeKind::Client, client_id, now)
            .await?
            > 0)
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(InsertJob {
                token: token.clone(),
                done,
            })
            .await
            .map_err(|_| StoreError::Backend("token writer stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Backend(e.into())),
            Err(_) => Err(StoreError::Backend("token writer stopped".into())),
        }
    }

    async fn get_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM access_tokens WHERE token_id = ?")
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|r| rows::token(&r)).transpose()
    }

    async fn revoke_token(
        &self,
        token_id: &str,
        client_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let n = sqlx::query(
            "UPDATE access_tokens SET revoked_at = ? \
             WHERE token_id = ? AND client_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_id)
        .bind(client_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if n > 0 {
            log_change(&mut tx, ChangeKind::Token, token_id, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(n > 0)
    }

    async fn revoke_jti(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let insert = sqlx::query(
            "INSERT INTO revoked_jtis (jti, client_id, expires_at, revoked_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .bind(now);
        self.logged(insert, ChangeKind::Jti, jti, now)
            .await
            .map(|_| ())
    }

    async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM revoked_jtis WHERE jti = ?")
            .bind(jti)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn revoked_jtis(&self, now: i64) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT jti FROM revoked_jtis WHERE expires_at > ?")
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }
}

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn use_once(&self, key: &str, expires_at: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO used_jtis (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n == 1)
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, k: &KeyRecord) -> Result<(), StoreError> {
        let insert = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at, \
             activates_at, retires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_sealed)
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .bind(k.activates_at)
        .bind(k.retires_at);
        self.logged(insert, ChangeKind::Keys, "", k.created_at)
            .await
            .map(|_| ())
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY activates_at, created_at")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(rows::key).collect()
    }

    async fn retire_key(&self, kid: &str, retires_at: i64) -> Result<(), StoreError> {
        let update = sqlx::query("UPDATE signing_keys SET retires_at = ? WHERE kid = ?")
            .bind(retires_at)
            .bind(kid);
        self.logged(update, ChangeKind::Keys, "", retires_at)
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn latest_change(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM changes")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn changes_since(&self, seq: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, kind, key FROM changes WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind").map_err(backend)?;
                Ok(Change {
                    seq: r.try_get("seq").map_err(backend)?,
                    kind: ChangeKind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("change kind {kind}")))?,
                    key: r.try_get("key").map_err(backend)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Maintenance for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn purge_expired(&self, now: i64) -> Result<PurgeReport, StoreError> {
        let int = |col: &'static str, v: i64| (col, Cutoff::Int(v));
        Ok(PurgeReport {
            // Token ids start with their expiry second: the expired ones are a key range.
            tokens: self
                .purge(
                    "access_tokens",
                    "token_id",
                    ("token_id <", Cutoff::Text(opaque::expiry_cutoff(now))),
                )
                .await?,
            revoked_jtis: self
                .purge("revoked_jtis", "jti", int("expires_at <=", now))
                .await?,
            used_jtis: self
                .purge("used_jtis", "key", int("expires_at <=", now))
                .await?,
            changes: self
                .purge(
                    "changes",
                    "seq",
                    int("created_at <=", now - CHANGE_RETENTION_SECS),
                )
                .await?,
            // A retired key's `retires_at` is set; a NULL never compares <= cutoff.
            keys: self
                .purge("signing_keys", "kid", int("retires_at <=", now))
                .await?,
        })
    }
}

/// The value a purge compares with.
enum Cutoff {
    Int(i64),
    Text(String),
}

/// A query with its arguments bound.
type BoundQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl SqliteStore {
    /// Runs one write and its change-feed entry in one transaction; returns how many rows the
    /// write changed. Every write other nodes may have cached goes through here.
    async fn logged(
        &self,
        query: BoundQuery<'_>,
        kind: ChangeKind,
        key: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let n = query
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        log_change(&mut tx, kind, key, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(n)
    }

    /// Deletes the rows of `table` for which `condition ?` holds with the cutoff, a batch at
    /// a time (so no lock is held long), until a batch comes back short. The names are this
    /// module's constants, never input.
    async fn purge(
        &self,
        table: &str,
        key_col: &str,
        (condition, cutoff): (&str, Cutoff),
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM {table} WHERE {key_col} IN \
             (SELECT {key_col} FROM {table} WHERE {condition} ? LIMIT ?)"
        );
        let mut total = 0;
        loop {
            let query = sqlx::query(&sql);
            let query = match &cutoff {
                Cutoff::Int(v) => query.bind(*v),
                Cutoff::Text(v) => query.bind(v.as_str()),
            };
            let n = query
                .bind(PURGE_BATCH)
                .execute(&self.pool)
                .await
                .map_err(backend)?
                .rows_affected();
            total += n;
            if n < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }
}
