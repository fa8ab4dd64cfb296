//! The operations listener every process serves on `metrics.listen`:
//! `GET /metrics` (Prometheus text), `GET /healthz` (alive), `GET /readyz` (Redis answers and
//! the process is not draining; 503 otherwise).

use std::time::Duration;

use axum::{Router, extract::State, http::StatusCode, routing::get};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::{redis::Pool, shutdown::Shutdown};

#[derive(Clone)]
struct Ops {
    pool: Pool,
    shutdown: Shutdown,
    metrics: PrometheusHandle,
}

/// Binds `listen` and serves until shutdown; the bind error names the config key.
pub async fn serve(listen: &str, pool: Pool, shutdown: Shutdown, metrics: PrometheusHandle) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("config key `metrics.listen` = {listen:?}: {e}"))?;
    let ops = Ops { pool, shutdown: shutdown.clone(), metrics };
    let app = Router::new()
        .route("/metrics", get(|State(ops): State<Ops>| async move { ops.metrics.render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(ops);
    tokio::spawn(async move {
        // Keep answering while draining, so /readyz can say 503; stop when the process ends.
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

async fn ready(State(ops): State<Ops>) -> (StatusCode, &'static str) {
    if ops.shutdown.is_triggered() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    if redis_answers(&ops.pool).await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable")
    }
}

/// PING through the pool within one second.
pub async fn redis_answers(pool: &Pool) -> bool {
    let ping = async {
        let mut conn = pool.get().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut *conn).await.ok()
    };
    matches!(tokio::time::timeout(Duration::from_secs(1), ping).await, Ok(Some(_)))
}
