//! The REST API of `mtasts serve` (`--api-listen`): the `mtasts domain` operations for
//! programs, each request acting for the tenant of its bearer token ([`crate::tenants`]).
//!
//! | method and path | does |
//! |---|---|
//! | `GET /api/v1/openapi.json` | this API's OpenAPI 3.1 description (no token needed) |
//! | `GET /api/v1/domains` | the caller's domains |
//! | `POST /api/v1/domains` | `add`: `{"domain", "mx"?, "tenant"? (operator tokens only)}` → 201 |
//! | `GET /api/v1/domains/{domain}` | `show`, `?live=true` compares with the DNS |
//! | `PATCH /api/v1/domains/{domain}` | `set`: `{"mx"?, "mode"?, "max_age"?, "policy_text"?, "reason"?, "force"?, "wait"?}` |
//! | `POST /api/v1/domains/{domain}/promote` | `promote`: `{"force"?}` |
//! | `POST /api/v1/domains/{domain}/retire` | `retire`: `{"reason"?}` |
//!
//! Answers are JSON. Errors are `{"error": "…"}` in an administrator's words; a refused
//! promotion is 409 `{"error", "refused": [reasons]}`. 401 without a valid token; another
//! tenant's domain is 404, exactly as a domain not hosted at all. Bodies are capped at
//! [`MAX_BODY`] (413 beyond), unknown fields are refused (400, naming the field), so a typo
//! is not silently ignored. Each token may make [`ApiLimits::per_token_per_minute`] requests
//! a minute (429 with `Retry-After` beyond). A database that goes away is 503.

// The handlers' helpers return the finished error `Response` to send; it is sent at once, not
// carried around, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mtasts_proto::Mode;
use mtasts_store::hosting::HostingError;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::domains::{Change, DomainError, Manager};
use crate::lifecycle::hosted_name;
use crate::tenants::{AuthError, Caller, Scope, authenticate};

/// The largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// The most `mx` entries a request may give.
const MAX_MX: usize = 100;

/// The OpenAPI description, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The API's request limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Requests a minute per token (a burst of as many, refilled evenly); more get 429 with
    /// `Retry-After`.
    pub per_token_per_minute: u32,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self { per_token_per_minute: 600 }
    }
}

struct ApiState {
    manager: Manager,
    limits: ApiLimits,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl ApiState {
    /// Token bucket per token id: true when `id` may make a request now.
    fn admit(&self, id: &str) -> bool {
        let rate = f64::from(self.limits.per_token_per_minute.max(1));
        let now = std::time::Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else { return true };
        let (tokens, at) = buckets.entry(id.to_owned()).or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate / 60.0).min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The API routes over `manager` (its hosting store holds the tokens), default limits.
pub fn router(manager: Manager) -> Router {
    router_with(manager, ApiLimits::default())
}

/// The API routes with `limits`.
pub fn router_with(manager: Manager, limits: ApiLimits) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/domains", get(list).post(add))
        .route("/api/v1/domains/{domain}", get(show).patch(set))
        .route("/api/v1/domains/{domain}/promote", post(promote))
        .route("/api/v1/domains/{domain}/retire", post(retire))
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "no such API path; see /api/v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(ApiState { manager, limits, buckets: Default::default() }))
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn caller(state: &ApiState, headers: &HeaderMap) -> Result<Caller, Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let result = match bearer {
        Some(b) => authenticate(state.manager.hosting(), b).await,
        None => Err(AuthError::Missing),
    };
    if let Ok(c) = &result
        && !state.admit(&c.token_id)
    {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {} requests a minute with this token; slow down",
                state.limits.per_token_per_minute
            ),
        );
        r.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        return Err(r);
    }
    result.map_err(|e| match e {
        AuthError::Store(e) => {
            tracing::warn!(error = %e, "API: the database is unavailable");
            error(StatusCode::SERVICE_UNAVAILABLE, "the hosting database is unavailable")
        }
        e => {
            let mut r = error(StatusCode::UNAUTHORIZED, &e);
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            r
        }
    })
}

/// 404 unless the caller's scope owns `domain` (another tenant's domain looks absent).
async fn owned(state: &ApiState, caller: &Caller, domain: &str) -> Result<(), Response> {
    let name = hosted_name(domain).map_err(|e| error(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let found = state.manager.hosting().get(name.as_str()).await.map_err(store_error)?;
    match found {
        Some(d) if caller.scope.allows(&d.tenant) => Ok(()),
        _ => Err(error(StatusCode::NOT_FOUND, format!("{name} is not hosted here"))),
    }
}

fn store_error(e: HostingError) -> Response {
    match e {
        HostingError::NotHosted { .. } => error(StatusCode::NOT_FOUND, e),
        HostingError::AlreadyHosted { domain, .. } => {
            // Not the owning tenant's name: a tenant must not learn another's.
            error(StatusCode::CONFLICT, format!("{domain} is hosted already"))
        }
        HostingError::Stale { .. } => error(StatusCode::CONFLICT, e),
        e => {
            tracing::warn!(error = %e, "API: the database failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "the hosting database is unavailable")
        }
    }
}

fn domain_error(e: DomainError) -> Response {
    match e {
        DomainError::Store(e) => store_error(e),
        DomainError::Refused { domain, reasons } => (
            StatusCode::CONFLICT,
            axum::Json(json!({
                "error": format!("{domain}: refused (\"force\": true overrides)"),
                "refused": reasons,
            })),
        )
            .into_response(),
        e @ DomainError::NoChange { .. } => error(StatusCode::CONFLICT, e),
        e @ (DomainError::DnsDown(_) | DomainError::Reports(_)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e)
        }
        e => error(StatusCode::UNPROCESSABLE_ENTITY, e),
    }
}

fn body<T>(parsed: Result<axum::Json<T>, JsonRejection>) -> Result<T, Response> {
    parsed.map(|axum::Json(v)| v).map_err(|r| error(r.status(), r.body_text()))
}

/// A body that may be left out altogether (no `Content-Type`): its defaults then.
fn optional_body<T: Default>(parsed: Result<axum::Json<T>, JsonRejection>) -> Result<T, Response> {
    match parsed {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        other => body(other),
    }
}

/// The caller, if its token is valid and its scope owns `domain` (else the 401 or 404).
async fn owner(state: &ApiState, headers: &HeaderMap, domain: &str) -> Result<Caller, Response> {
    let caller = caller(state, headers).await?;
    owned(state, &caller, domain).await?;
    Ok(caller)
}

fn json_ok(status: StatusCode, value: &impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

fn check_mx(mx: Option<&Vec<String>>) -> Result<(), Response> {
    match mx {
        Some(m) if m.len() > MAX_MX => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("\"mx\": at most {MAX_MX} hosts, got {}", m.len()),
        )),
        _ => Ok(()),
    }
}

/// What a handler answers: the success, or the finished error response (`?` returns it).
type Answer = Result<Response, Response>;

async fn list(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Answer {
    let caller = caller(&state, &headers).await?;
    let tenant = match &caller.scope {
        Scope::Operator => None,
        Scope::Tenant(t) => Some(t.as_str()),
    };
    let domains = state.manager.hosting().list(tenant).await.map_err(store_error)?;
    Ok(json_ok(StatusCode::OK, &json!({ "domains": domains })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    domain: String,
    #[serde(default)]
    mx: Option<Vec<String>>,
    #[serde(default)]
    tenant: Option<String>,
}

async fn add(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    parsed: Result<axum::Json<AddBody>, JsonRejection>,
) -> Answer {
    let caller = caller(&state, &headers).await?;
    let b = body(parsed)?;
    check_mx(b.mx.as_ref())?;
    let tenant = match (&caller.scope, b.tenant) {
        (Scope::Tenant(t), None) => t.clone(),
        (Scope::Tenant(t), Some(asked)) if &asked == t => asked,
        (Scope::Tenant(_), Some(_)) => {
            return Err(error(
                StatusCode::FORBIDDEN,
                "\"tenant\": this token acts for its own tenant only",
            ));
        }
        (Scope::Operator, Some(t)) if !t.trim().is_empty() && t.len() <= 64 => t,
        (Scope::Operator, _) => {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "\"tenant\": an operator token must say which tenant (1 to 64 characters)",
            ));
        }
    };
    let p = state
        .manager
        .add(&b.domain, &tenant, &caller.author(), b.mx, now())
        .await
        .map_err(domain_error)?;
    Ok(json_ok(StatusCode::CREATED, &p))
}

#[derive(Debug, Deserialize)]
struct ShowQuery {
    #[serde(default)]
    live: bool,
}

async fn show(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    owner(&state, &headers, &domain).await?;
    let Query(q) = query.map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
    let s = state.manager.status(&domain, q.live, now()).await.map_err(domain_error)?;
    Ok(json_ok(StatusCode::OK, &s))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    #[serde(default)]
    mx: Option<Vec<String>>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    max_age: Option<u32>,
    #[serde(default)]
    policy_text: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    force: bool,
    /// Seconds to wait until the new policy is served, fetched as a sender fetches it, before
    /// answering (RFC 8461 §8.1: publish the TXT record only then). At most 120.
    #[serde(default)]
    wait: Option<u64>,
}

async fn set(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    parsed: Result<axum::Json<SetBody>, JsonRejection>,
) -> Answer {
    let caller = owner(&state, &headers, &domain).await?;
    let b = body(parsed)?;
    check_mx(b.mx.as_ref())?;
    let mode = match b.mode.as_deref().map(str::trim) {
        None => None,
        Some(m) => Some(m.parse::<Mode>().map_err(|_| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("\"mode\": {m:?} is not testing, enforce or none"),
            )
        })?),
    };
    if b.wait.is_some_and(|w| w > 120) {
        return Err(error(StatusCode::UNPROCESSABLE_ENTITY, "\"wait\": at most 120 seconds"));
    }
    let change =
        Change { mx: b.mx, mode, max_age: b.max_age, policy_text: b.policy_text, reason: b.reason };
    let published = state
        .manager
        .set(&domain, &change, &caller.author(), b.force, now())
        .await
        .map_err(domain_error)?;
    let Some(wait) = b.wait else { return Ok(json_ok(StatusCode::OK, &published)) };
    let served = state
        .manager
        .wait_served(
            &published.domain.domain,
            &published.domain.policy_text,
            std::time::Duration::from_secs(wait),
        )
        .await;
    let mut body = serde_json::to_value(&published).unwrap_or_default();
    body["served"] = json!(served.is_ok());
    if let Err(why) = served {
        body["not_served"] =
            json!(format!("not served within {wait} s: {why}; publish the TXT record once it is"));
    }
    Ok(json_ok(StatusCode::OK, &body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    #[serde(default)]
    force: bool,
}

async fn promote(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    parsed: Result<axum::Json<PromoteBody>, JsonRejection>,
) -> Answer {
    let caller = owner(&state, &headers, &domain).await?;
    let b = optional_body(parsed)?;
    let p = state
        .manager
        .promote(&domain, &caller.author(), b.force, now())
        .await
        .map_err(domain_error)?;
    Ok(json_ok(StatusCode::OK, &p))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetireBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn retire(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(domain): Path<String>,
    parsed: Result<axum::Json<RetireBody>, JsonRejection>,
) -> Answer {
    let caller = owner(&state, &headers, &domain).await?;
    let b = optional_body(parsed)?;
    let p = state
        .manager
        .retire(&domain, &caller.author(), b.reason.as_deref(), now())
        .await
        .map_err(domain_error)?;
    Ok(json_ok(StatusCode::OK, &p))
}
