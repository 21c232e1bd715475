//! Owns the bench's PostgreSQL database: created fresh on the server the
//! user names, so that each run starts from empty tables, and dropped at the
//! end.

use std::str::FromStr;

use anyhow::{Context, Result};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// A database made for one bench run.
pub struct BenchDatabase {
    /// Its URL, for `TESSERA_DATABASE_URL`.
    pub url: String,
    server: String,
    name: String,
}

impl BenchDatabase {
    /// Creates `tessera_bench_<pid>` on the server at `server` (any database
    /// of it the role may connect to).
    pub async fn create(server: &str) -> Result<Self> {
        let name = format!("tessera_bench_{}", std::process::id());
        let mut admin = connect(server).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .context("dropping an old bench database")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .context("creating the bench database (the role needs CREATEDB)")?;
        let _ = admin.close().await;
        Ok(Self {
            url: with_database(server, &name),
            server: server.to_owned(),
            name,
        })
    }

    /// Drops the database (and any connection left to it).
    pub async fn drop_database(self) {
        let result = async {
            let mut admin = connect(&self.server).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await?;
            let _ = admin.close().await;
            anyhow::Ok(())
        }
        .await;
        if let Err(err) = result {
            eprintln!("warning: dropping database {}: {err:#}", self.name);
        }
    }
}

async fn connect(url: &str) -> Result<sqlx::PgConnection> {
    PgConnectOptions::from_str(url)
        .context("--postgres is not a PostgreSQL URL")?
        .connect()
        .await
        .context("connecting to the --postgres server")
}

/// `postgres://u:p@h:5432/old?x=y` with database `name` instead of `old`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
