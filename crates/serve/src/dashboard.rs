//! The dashboard (`/dashboard` on `--api-listen`): server-rendered pages (askama templates,
//! inline style and SVG, nothing loaded from the network, a Content-Security-Policy that
//! forbids it), read-only.
//!
//! - `/dashboard/login`: a form for an API token; the token is then kept in an `HttpOnly`,
//!   `SameSite=Strict` cookie for `/dashboard` (12 hours). `GET /dashboard/login?token=…`
//!   signs in from a link (for scripts and a browser's command line; the token is in the URL,
//!   so prefer the form). A tenant's token shows only its domains, as in the API.
//! - `/dashboard`: the domains with mode, `max_age`, version, id, certificate and monitoring.
//! - `/dashboard/domains/{domain}`: problems, the records to publish, the policy, the
//!   certificate and ACME state, the TLS-RPT report charts (last 30 days), the history.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use mtasts_store::hosting::{HostingError, VersionRow};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::domains::{Manager, Status};
use crate::lifecycle::{Retirement, hosted_name};
use crate::tenants::{Caller, Scope, authenticate};

const COOKIE: &str = "mtasts_dashboard";
const COOKIE_SECS: u32 = 12 * 3600;

fn css() -> String {
    format!("{}{}", mtasts_reports::page::CSS, include_str!("../templates/layout.css"))
}

fn utc(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
        .unwrap_or_else(|_| secs.to_string())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: String,
    error: Option<String>,
}

struct Row {
    domain: String,
    tenant: String,
    mode: String,
    retired: bool,
    max_age: i64,
    version: i64,
    policy_id: String,
    certificate: String,
    errors: usize,
    warnings: usize,
    checked: bool,
}

#[derive(Template)]
#[template(path = "domains.html")]
struct DomainsPage {
    css: String,
    scope: String,
    show_tenant: bool,
    generated: String,
    problem_domains: usize,
    rows: Vec<Row>,
}

struct HistoryRow {
    version: i64,
    policy_id: String,
    mode: String,
    max_age: i64,
    author: String,
    reason: String,
    when: String,
}

#[derive(Template)]
#[template(path = "domain.html")]
struct DomainPage {
    css: String,
    s: Status,
    changed: String,
    retirement: Option<String>,
    checked: Option<String>,
    records: Vec<String>,
    certificate: String,
    acme_error: Option<String>,
    charts: Option<String>,
    history: Vec<HistoryRow>,
}

struct DashState {
    manager: Manager,
}

/// The dashboard routes over `manager` (tokens from its hosting store, charts from its
/// report store when it has one).
pub fn router(manager: Manager) -> Router {
    Router::new()
        .route("/dashboard", get(domains))
        .route("/dashboard/", get(domains))
        .route("/dashboard/login", get(login_page).post(login_form))
        .route("/dashboard/logout", get(logout))
        .route("/dashboard/domains/{domain}", get(domain))
        .with_state(Arc::new(DashState { manager }))
}

fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "dashboard: a page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render\n").into_response()
        }
    }
}

fn to_login() -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/dashboard/login")]).into_response()
}

fn unavailable(e: &HostingError) -> Response {
    tracing::warn!(error = %e, "dashboard: the database failed");
    (StatusCode::SERVICE_UNAVAILABLE, "the hosting database is unavailable; try again shortly\n")
        .into_response()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';').find_map(|kv| {
            kv.trim().strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')).map(str::to_owned)
        })
    })
}

/// The signed-in caller, or the response that sends the browser to sign in.
async fn signed_in(state: &DashState, headers: &HeaderMap) -> Result<Caller, Response> {
    let Some(token) = cookie_token(headers) else { return Err(to_login()) };
    match authenticate(state.manager.hosting(), &token).await {
        Ok(c) => Ok(c),
        Err(crate::tenants::AuthError::Store(e)) => Err(unavailable(&e)),
        Err(_) => Err(to_login()),
    }
}

async fn sign_in(state: &DashState, token: &str, next: Option<&str>) -> Response {
    match authenticate(state.manager.hosting(), token).await {
        Ok(_) => {
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={COOKIE_SECS}",
                token.trim()
            );
            // Only a dashboard page, never another site.
            let to = next
                .filter(|n| n.starts_with("/dashboard/") && !n.contains("//"))
                .unwrap_or("/dashboard");
            let mut r =
                (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(crate::tenants::AuthError::Store(e)) => unavailable(&e),
        Err(e) => {
            let mut r = page(&LoginPage { css: css(), error: Some(e.to_string()) });
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            r
        }
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    token: Option<String>,
    next: Option<String>,
}

async fn login_page(State(state): State<Arc<DashState>>, Query(q): Query<LoginQuery>) -> Response {
    match q.token {
        Some(t) => sign_in(&state, &t, q.next.as_deref()).await,
        None => page(&LoginPage { css: css(), error: None }),
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login_form(State(state): State<Arc<DashState>>, Form(f): Form<LoginForm>) -> Response {
    sign_in(&state, &f.token, None).await
}

async fn logout() -> Response {
    let mut r = to_login();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "mtasts_dashboard=; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=0",
        ),
    );
    r
}

async fn domains(State(state): State<Arc<DashState>>, headers: HeaderMap) -> Response {
    let caller = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let hosting = state.manager.hosting();
    let tenant = match &caller.scope {
        Scope::Operator => None,
        Scope::Tenant(t) => Some(t.as_str()),
    };
    let loaded = async {
        Ok::<_, HostingError>((
            hosting.list(tenant).await?,
            hosting.certificate_validity().await?,
            hosting.problems(None).await?,
            hosting.check_times().await?,
        ))
    }
    .await;
    let (list, certs, problems, checks) = match loaded {
        Ok(v) => v,
        Err(e) => return unavailable(&e),
    };
    let checked: std::collections::HashSet<&str> = checks.iter().map(|(d, _)| d.as_str()).collect();
    let certs: std::collections::HashMap<&str, _> =
        certs.iter().map(|c| (c.domain.as_str(), c)).collect();
    let mut rows = Vec::with_capacity(list.len());
    for d in list {
        let mine = problems.iter().filter(|p| p.domain == d.domain);
        let errors = mine.clone().filter(|p| p.severity == "error").count();
        let warnings = mine.filter(|p| p.severity == "warning").count();
        let certificate = certs.get(d.domain.as_str()).map_or_else(
            || "none yet".to_owned(),
            |c| format!("{}, until {}", c.source, utc(c.not_after)),
        );
        let checked = checked.contains(d.domain.as_str());
        rows.push(Row {
            retired: d.retired_at.is_some(),
            domain: d.domain,
            tenant: d.tenant,
            mode: d.mode,
            max_age: d.max_age,
            version: d.version,
            policy_id: d.policy_id,
            certificate,
            errors,
            warnings,
            checked,
        });
    }
    let problem_domains = rows.iter().filter(|r| r.errors + r.warnings > 0).count();
    page(&DomainsPage {
        css: css(),
        scope: match &caller.scope {
            Scope::Operator => "operator (every tenant)".to_owned(),
            Scope::Tenant(t) => format!("tenant {t}"),
        },
        show_tenant: caller.scope == Scope::Operator,
        generated: utc(OffsetDateTime::now_utc().unix_timestamp()),
        problem_domains,
        rows,
    })
}

async fn domain(
    State(state): State<Arc<DashState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let caller = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let not_found =
        || (StatusCode::NOT_FOUND, format!("{name} is not hosted here\n")).into_response();
    let Ok(parsed) = hosted_name(&name) else { return not_found() };
    match state.manager.hosting().get(parsed.as_str()).await {
        Ok(Some(d)) if caller.scope.allows(&d.tenant) => {}
        Ok(_) => return not_found(),
        Err(e) => return unavailable(&e),
    }
    let now = OffsetDateTime::now_utc();
    let s = match state.manager.status(parsed.as_str(), false, now).await {
        Ok(s) => s,
        Err(crate::domains::DomainError::Store(e)) => return unavailable(&e),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let charts = match state.manager.reports() {
        Some(reports) => {
            let today = now.unix_timestamp() - now.unix_timestamp().rem_euclid(86_400);
            let since = today - 30 * 86_400;
            match mtasts_reports::page::load(reports, Some(parsed.as_str()), "", "", since).await {
                Ok(p) => p.domains.first().map(|d| d.section_html(1)),
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard: the report store failed");
                    Some("<p class=\"none\">The report store is unavailable.</p>".to_owned())
                }
            }
        }
        None => None,
    };
    let records =
        [s.records.cname.clone(), s.records.tlsrpt_txt.clone(), Some(s.records.sts_txt.clone())]
            .into_iter()
            .flatten()
            .collect();
    let history = s
        .history
        .iter()
        .rev()
        .map(|v: &VersionRow| HistoryRow {
            version: v.version,
            policy_id: v.policy_id.clone(),
            mode: v.mode.clone(),
            max_age: v.max_age,
            author: v.author.clone(),
            reason: v.reason.clone(),
            when: utc(v.created_at),
        })
        .collect();
    let retirement = match s.retirement {
        Retirement::Active => None,
        Retirement::Draining { until } => {
            Some(format!("retired: keep the records and this host until {}", utc(until)))
        }
        Retirement::Removable { since } => Some(format!(
            "retired: the records can be removed (every cached policy expired {})",
            utc(since)
        )),
    };
    let certificate = s.certificate.as_ref().map_or_else(
        || "none yet".to_owned(),
        |c| format!("{}, valid until {}", c.source, utc(c.not_after)),
    );
    let acme_error = s.acme.as_ref().and_then(|a| {
        a.last_error.as_ref().map(|e| {
            format!(
                "{} failed attempt(s); the last: {e}; next after {}",
                a.failures,
                utc(a.next_attempt)
            )
        })
    });
    page(&DomainPage {
        css: css(),
        changed: utc(s.domain.updated_at),
        checked: s.checked_at.map(utc),
        retirement,
        records,
        certificate,
        acme_error,
        charts,
        history,
        s,
    })
}
