//! The analysis API beside the receiver, for scripts and for `serve` to mount: the same data
//! as `mtasts report list|show|summary|readiness`, as JSON. Reports are private data, so every
//! request needs the bearer token the operator set (`Authorization: Bearer TOKEN`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /api/v1/reports?domain=D&limit=N` | stored reports, newest first |
//! | `GET /api/v1/reports/{id}` | one report: metadata, warnings, the report |
//! | `GET /api/v1/domains/{domain}/days?days=N` | sessions per UTC day |
//! | `GET /api/v1/domains/{domain}/readiness?days=N` | may it move to `mode: enforce`? |

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mtasts_store::reports::ReportStore;

use crate::readiness::{Criteria, Evidence, judge};

#[derive(Clone)]
struct ApiState {
    store: ReportStore,
    token: Arc<str>,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    domain: Option<String>,
    limit: Option<i64>,
}

#[derive(serde::Deserialize)]
struct DaysQuery {
    days: Option<i64>,
}

/// The API routes; every request must carry `token`.
pub fn router(store: ReportStore, token: &str) -> Router {
    Router::new()
        .route("/api/v1/reports", get(list))
        .route("/api/v1/reports/{id}", get(show))
        .route("/api/v1/domains/{domain}/days", get(days))
        .route("/api/v1/domains/{domain}/readiness", get(readiness))
        .with_state(ApiState { store, token: Arc::from(token) })
}

/// `None` when the request carries the token, else the 401 to send.
fn unauthorised(state: &ApiState, headers: &HeaderMap) -> Option<Response> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Constant-time enough for a token compare: length first, then every byte.
    let ok = given.is_some_and(|g| {
        g.len() == state.token.len()
            && g.bytes().zip(state.token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    (!ok).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required (Authorization: Bearer TOKEN)\n",
        )
            .into_response()
    })
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "report API query failed");
    (StatusCode::SERVICE_UNAVAILABLE, "the report store is unavailable; try again later\n")
        .into_response()
}

fn since(days: Option<i64>) -> (i64, i64) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let today = now - now.rem_euclid(86_400);
    (today, today - days.unwrap_or(30).clamp(1, 3660) * 86_400)
}

async fn list(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = unauthorised(&s, &headers) {
        return r;
    }
    match s.store.list(q.domain.as_deref(), q.limit.unwrap_or(100).clamp(1, 10_000)).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

async fn show(State(s): State<ApiState>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    if let Some(r) = unauthorised(&s, &headers) {
        return r;
    }
    match s.store.get(id).await {
        Ok(Some(d)) => axum::Json(serde_json::json!({
            "report": crate::record::parsed_document(&d.raw_json),
            "warnings": serde_json::from_str::<serde_json::Value>(&d.warnings_json).unwrap_or_default(),
            "meta": d.row,
            "submitter": d.submitter,
            "report_domain": d.report_domain,
        }))
        .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no report {id}\n")).into_response(),
        Err(e) => failed(e),
    }
}

async fn days(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    Query(q): Query<DaysQuery>,
) -> Response {
    if let Some(r) = unauthorised(&s, &headers) {
        return r;
    }
    let (_, since) = since(q.days);
    match s.store.days(Some(&domain), since).await {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => failed(e),
    }
}

async fn readiness(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    Query(q): Query<DaysQuery>,
) -> Response {
    if let Some(r) = unauthorised(&s, &headers) {
        return r;
    }
    let (today, since) = since(q.days.or(Some(60)));
    let evidence = Evidence::gather(&s.store, &domain, since, None).await;
    match evidence {
        Ok(e) => axum::Json(judge(&e, &Criteria::default(), today)).into_response(),
        Err(e) => failed(e),
    }
}
