//! The schema's migrations: SQL files embedded in the binary, applied in order at startup and
//! recorded in `sluice_migrations`. Several schedulers starting at once take turns on a
//! session advisory lock, so each migration runs exactly once. A database migrated by a newer
//! Sluice is used as it is, with a warning (migrations only add).

use tokio_postgres::Client;

/// Every migration: version, name, SQL. Append only; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str, &str)] = &[(1, "history", include_str!("migrations/0001_history.sql"))];

/// The advisory lock key the migrations hold ("sluice" in ASCII).
const LOCK: i64 = 0x736c_7569_6365;

/// Applies the migrations this database has not had yet.
pub async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK]).await?;
    let applied = apply(client).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]).await;
    applied?;
    unlocked?;
    Ok(())
}

async fn apply(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS sluice_migrations (version integer PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let newest: Option<i32> = client.query_one("SELECT max(version) FROM sluice_migrations", &[]).await?.get(0);
    let newest = newest.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if newest > known {
        tracing::warn!(
            database = newest,
            binary = known,
            "the history schema is newer than this scheduler knows; reading and writing it as it is"
        );
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > newest) {
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO sluice_migrations (version, name) VALUES ($1, $2)", &[version, name]).await?;
        tx.commit().await?;
        tracing::info!(version, name, "history schema migrated");
    }
    Ok(())
}
