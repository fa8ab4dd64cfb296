//! The history store against a real PostgreSQL of the test's own: schedulers starting at once
//! migrate it once; retention drops whole days past it and keeps the rest; the searches the
//! API runs are served by the indexes (by recipient, by source, by time).

use std::time::Duration;

use chrono::Utc;
use sluice_scheduler::history::{
    History, partitions,
    search::{self, Filter},
};
use sluice_shared::config::{Config, Role};
use sluice_testkit::PostgresServer;

fn history(pg: &PostgresServer, extra: &str) -> History {
    let text = format!(
        "[redis]\nurl = \"redis://127.0.0.1:1\"\n[api]\ntokens = [\"long-enough\"]\n[history]\nurl = \"{}\"\n{extra}",
        pg.url()
    );
    History::from_config(&Config::from_toml(&text, Role::Scheduler).unwrap()).unwrap().unwrap()
}

async fn ready(pg: &PostgresServer) -> History {
    let h = history(pg, "");
    let (_trigger, shutdown) = sluice_shared::shutdown::channel();
    assert!(h.prepare(&shutdown).await);
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedulers_starting_at_once_migrate_once() {
    let pg = PostgresServer::start();
    let (_trigger, shutdown) = sluice_shared::shutdown::channel();
    let handles: Vec<History> = (0..4).map(|_| history(&pg, "")).collect();
    let done = futures::future::join_all(handles.iter().map(|h| h.prepare(&shutdown))).await;
    assert_eq!(done, [true; 4]);
    assert_eq!(pg.sql("SELECT count(*) FROM sluice_migrations"), "1\n");
    assert_eq!(pg.sql("SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relname IN ('events', 'sources', 'templates')"), "events,sources,templates\n");
    // A restart finds nothing to do.
    assert!(ready(&pg).await.client().await.is_ok());
    assert_eq!(pg.sql("SELECT count(*) FROM sluice_migrations"), "1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_postgres_answers_the_store_is_not_ready_and_then_it_is() {
    let mut pg = PostgresServer::start();
    pg.stop();
    let h = history(&pg, "");
    assert!(matches!(h.client().await, Err(sluice_scheduler::history::HistoryError::NotReady)));
    let (_trigger, shutdown) = sluice_shared::shutdown::channel();
    let mut waiting = tokio::spawn({
        let h = h.clone();
        async move { h.prepare(&shutdown).await }
    });
    let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
    assert!(early.is_err(), "prepare waits for PostgreSQL");
    pg.restart();
    assert!(tokio::time::timeout(Duration::from_secs(20), waiting).await.unwrap().unwrap());
    assert!(h.client().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_whole_days_past_it() {
    let pg = PostgresServer::start();
    let h = ready(&pg).await;
    let mut client = h.client().await.unwrap();
    let today = partitions::day_of(Utc::now());
    let mut known = partitions::Known::default();
    known.ensure(&mut client, [today - 10, today - 3, today - 2, today]).await.unwrap();
    // Ensuring again (another writer, another process) is harmless.
    partitions::Known::default().ensure(&mut client, [today]).await.unwrap();
    for day in [today - 10, today - 2, today] {
        let at = chrono::DateTime::from_timestamp(day * 86_400 + 3600, 0).unwrap();
        client
            .execute(
                "INSERT INTO events (at, source, seq, type, recipient) VALUES ($1, 'news', 0, 'sent', 'a@b.example')",
                &[&at],
            )
            .await
            .unwrap();
    }
    let dropped = partitions::drop_expired(&mut client, Duration::from_secs(3 * 86_400)).await.unwrap();
    assert_eq!(dropped, [partitions::name(today - 10)], "only days that ended more than 3 d ago");
    assert_eq!(pg.sql("SELECT count(*) FROM events"), "2\n");
    assert!(!partitions::kept(Utc::now() - chrono::Duration::days(5), Duration::from_secs(3 * 86_400)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_are_served_by_the_indexes() {
    let pg = PostgresServer::start();
    let h = ready(&pg).await;
    let mut client = h.client().await.unwrap();
    partitions::Known::default().ensure(&mut client, [partitions::day_of(Utc::now())]).await.unwrap();
    client.batch_execute("SET enable_seqscan = off").await.unwrap();
    let plan = |filter: Filter| {
        let client = &client;
        async move {
            let (conditions, params) = search::conditions(&filter);
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
            let sql = format!(
                "EXPLAIN SELECT {} FROM events e LEFT JOIN sources s ON s.name = e.source WHERE {conditions} ORDER BY e.at DESC LIMIT 10",
                search::COLUMNS
            );
            let rows = client.query(&sql, &refs).await.unwrap();
            rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
        }
    };
    let by_recipient = plan(Filter { recipient: Some("a@b.example".into()), limit: 10, ..Filter::default() }).await;
    assert!(by_recipient.contains("hashtextextended(recipient"), "{by_recipient}");
    assert!(!by_recipient.contains("Seq Scan on events"), "{by_recipient}");
    let by_source = plan(Filter { source: Some("news".into()), limit: 10, ..Filter::default() }).await;
    assert!(by_source.contains("hashtextextended(source"), "{by_source}");
    assert!(!by_source.contains("Seq Scan on events"), "{by_source}");
    let recent = plan(Filter { from: Some(Utc::now()), limit: 10, ..Filter::default() }).await;
    assert!(recent.contains("Index") && !recent.contains("Seq Scan on events"), "{recent}");
}
