//! The resolver over HTTP, for MTAs other than Postfix (Exim's `${readsocket}`, Haraka, a
//! PowerMTA hook) and for operators: the same decisions as JSON, and Prometheus metrics.
//!
//! - `GET /v1/policy/{domain}?zone=NAME`: the answer for `domain` (any key Postfix would send
//!   works: `[relay.example]:587` too) with the mode, the `mx:` patterns, the names a
//!   certificate must match and why. `200` always, the decision is in the body.
//! - `GET /metrics`: Prometheus text format, when a recorder was installed.
//! - `GET /healthz`: `ok`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::engine::Resolver;
use crate::server::Shutdown;

/// Renders the metrics in Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

#[derive(Clone)]
struct AppState {
    resolver: Arc<Resolver>,
    metrics: Option<MetricsRender>,
}

#[derive(serde::Deserialize)]
struct ZoneQuery {
    zone: Option<String>,
}

/// The HTTP routes.
pub fn router(resolver: Arc<Resolver>, metrics: Option<MetricsRender>) -> Router {
    Router::new()
        .route("/v1/policy/{key}", get(policy))
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(AppState { resolver, metrics })
}

async fn policy(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<ZoneQuery>,
) -> Response {
    let zone = q.zone.unwrap_or_else(|| "postfix".to_owned());
    let explanation = state.resolver.explain(&zone, &key).await;
    axum::Json(explanation).into_response()
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(render) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.fired().await })
        .await
}
