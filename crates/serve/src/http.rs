//! The policy server's routes.
//!
//! HTTPS (RFC 8461 §3.3): `GET /.well-known/mta-sts.txt` on `mta-sts.<domain>` answers 200,
//! `Content-Type: text/plain`, the policy exactly as stored; never a redirect (§3.3: senders
//! must not follow one). The policy is chosen by the `Host` header; a request whose `Host`
//! is not the name the client asked for by SNI is refused with 421 (its certificate was for
//! another name). Unknown hosts and every other path: 404.
//!
//! Plain HTTP (port 80): only ACME HTTP-01 challenges (RFC 8555 §8.3) and a short page; the
//! policy path is 404 there, never a redirect to HTTPS (a sender must fetch it by HTTPS).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::extract::{Extension, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mtasts_reports::http::TlsServerName;
use mtasts_store::hosting::HostingStore;
use rustls::sign::CertifiedKey;

use crate::catalog::Catalog;

/// The well-known path of the policy (RFC 8461 §3.2).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

fn text(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The `Host` of a request, lower case, without port or trailing dot.
fn host_of(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())?;
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(']') => h,
        _ => raw,
    };
    Some(host.trim_end_matches('.').to_ascii_lowercase())
}

/// The HTTPS routes serving `catalog`'s policies.
pub fn policy_router(catalog: Arc<Catalog>) -> Router {
    Router::new().route(POLICY_PATH, get(policy)).fallback(not_here).with_state(catalog)
}

async fn policy(
    State(catalog): State<Arc<Catalog>>,
    sni: Option<Extension<TlsServerName>>,
    req: Request,
) -> Response {
    let Some(host) = host_of(&req) else {
        metrics::counter!("mtasts_serve_policy_requests_total", "result" => "no_host").increment(1);
        return text(StatusCode::BAD_REQUEST, "the request has no Host header\n".into());
    };
    if let Some(Extension(TlsServerName(Some(sni)))) = &sni
        && **sni != *host
    {
        metrics::counter!("mtasts_serve_policy_requests_total", "result" => "misdirected")
            .increment(1);
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this connection is for {sni} (TLS SNI), not {host}\n"),
        );
    }
    let Some(served) = catalog.policy(&host) else {
        metrics::counter!("mtasts_serve_policy_requests_total", "result" => "unknown_host")
            .increment(1);
        return text(
            StatusCode::NOT_FOUND,
            format!("no MTA-STS policy is hosted here for {host}\n"),
        );
    };
    metrics::counter!("mtasts_serve_policy_requests_total", "result" => "served").increment(1);
    let body = if req.method() == Method::HEAD { axum::body::Bytes::new() } else { served.body };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    // §3.2: the media type is text/plain; the policy is ASCII (§3.2 ABNF), no charset needed.
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    // Senders cache by max_age (§3.3), not by HTTP caching; intermediaries must not serve an
    // old version after a change.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_here(req: Request) -> Response {
    let host = host_of(&req).unwrap_or_default();
    text(
        StatusCode::NOT_FOUND,
        format!("nothing here: {host} serves only {POLICY_PATH} for hosted domains\n"),
    )
}

/// Pending ACME challenges, shared by the ACME client, the port 80 router and the TLS
/// certificate resolver: HTTP-01 token → key authorization (RFC 8555 §8.3), and TLS-ALPN-01
/// policy host → its challenge certificate (RFC 8737 §3).
#[derive(Default)]
pub struct Challenges {
    tokens: RwLock<HashMap<String, String>>,
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges")
            .field("http01", &self.tokens.read().unwrap_or_else(PoisonError::into_inner).len())
            .field("tls_alpn01", &self.alpn.read().unwrap_or_else(PoisonError::into_inner).len())
            .finish()
    }
}

impl Challenges {
    /// Serves `key_authorization` at `/.well-known/acme-challenge/<token>` until removed.
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.tokens
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Stops serving `token`.
    pub fn remove(&self, token: &str) {
        self.tokens.write().unwrap_or_else(PoisonError::into_inner).remove(token);
    }

    fn get(&self, token: &str) -> Option<String> {
        self.tokens.read().unwrap_or_else(PoisonError::into_inner).get(token).cloned()
    }

    /// Presents `key` to TLS clients asking for `host` with ALPN `acme-tls/1` until removed.
    pub fn insert_alpn(&self, host: &str, key: Arc<CertifiedKey>) {
        self.alpn.write().unwrap_or_else(PoisonError::into_inner).insert(host.to_owned(), key);
    }

    /// Stops presenting the TLS-ALPN-01 certificate of `host`.
    pub fn remove_alpn(&self, host: &str) {
        self.alpn.write().unwrap_or_else(PoisonError::into_inner).remove(host);
    }

    /// The TLS-ALPN-01 certificate for `host`, while its challenge is pending.
    pub fn alpn(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        self.alpn.read().unwrap_or_else(PoisonError::into_inner).get(host).cloned()
    }
}

/// Where `serve --receive-reports` takes TLS-RPT reports (RFC 8460 §5.4) on every policy host:
/// `https://mta-sts.<domain>/v1/tlsrpt`, under the certificate the host has anyway.
pub const REPORTS_PATH: &str = "/v1/tlsrpt";

/// The TLS-RPT receiver (`reports::http`, committed before the 2xx, body and gzip caps,
/// per-client limit) at [`REPORTS_PATH`] of every hosted policy host; other hosts get 404.
pub fn reports_routes(
    catalog: Arc<Catalog>,
    ingestor: mtasts_reports::Ingestor,
    limits: mtasts_reports::http::HttpLimits,
) -> Router {
    Router::new()
        .nest(REPORTS_PATH, mtasts_reports::http::router(ingestor, limits))
        .layer(axum::middleware::from_fn_with_state(catalog, only_hosted))
}

async fn only_hosted(
    State(catalog): State<Arc<Catalog>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    match host_of(&req) {
        Some(host) if catalog.policy(&host).is_some() => next.run(req).await,
        host => text(
            StatusCode::NOT_FOUND,
            format!("{} is not a policy host served here\n", host.unwrap_or_default()),
        ),
    }
}

/// What the port 80 router answers challenges from: this instance's pending ones, then those
/// another instance on the same database published (behind one load balancer, the CA's
/// validation may reach any instance).
#[derive(Clone, Debug)]
struct ChallengeState {
    local: Arc<Challenges>,
    store: Option<HostingStore>,
}

/// The plain-HTTP routes (port 80): ACME HTTP-01 challenges (from `challenges`, then from
/// `store`'s `acme_challenges`) and a short page.
pub fn http_router(challenges: Arc<Challenges>, store: Option<HostingStore>) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .route("/", get(about))
        .fallback(plain_not_found)
        .with_state(ChallengeState { local: challenges, store })
}

async fn challenge(State(state): State<ChallengeState>, Path(token): Path<String>) -> Response {
    let mut answer = state.local.get(&token);
    if answer.is_none()
        && let Some(store) = &state.store
    {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match store.challenge(&token, now).await {
            Ok(found) => answer = found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read ACME challenges from the database");
                return text(StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n".into());
            }
        }
    }
    match answer {
        Some(answer) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], answer)
                .into_response()
        }
        None => text(StatusCode::NOT_FOUND, "no such ACME challenge\n".into()),
    }
}

async fn about() -> Response {
    text(
        StatusCode::OK,
        format!(
            "mtasts serve: MTA-STS policies are served only over HTTPS at \
             https://mta-sts.<domain>{POLICY_PATH} (RFC 8461 §3.3)\n"
        ),
    )
}

async fn plain_not_found(req: Request) -> Response {
    let what = if req.uri().path() == POLICY_PATH {
        // Never a redirect (RFC 8461 §3.3): say where the policy is instead.
        format!(
            "the MTA-STS policy is served only over HTTPS (RFC 8461 §3.3): https://{}{POLICY_PATH}\n",
            host_of(&req).unwrap_or_else(|| "mta-sts.<domain>".into())
        )
    } else {
        "not found\n".to_owned()
    };
    text(StatusCode::NOT_FOUND, what)
}
